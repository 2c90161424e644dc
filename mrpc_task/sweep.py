"""A sweep: every point of a grid of config values, for several seeds, and its results table.

Pure functions; `tfm sweep` (mrpc_task/cli/sweep.py) runs the trainings. A grid is written
`KEY=V1,V2;KEY2=V3,V4` with Model Garden's dotted keys; values are read as numbers, true /
false / null, or strings. A point is one combination; its runs differ only in seed.
"""

import copy
import dataclasses
import hashlib
import itertools
import math
import re
import statistics
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

from mrpc_task import errors

# Columns of the scores table; `mean` is (accuracy + F1) / 2, the sweep's one number.
SCORES = ('accuracy', 'f1', 'mean')
DATA = ('selection', 'dev')
_MAX_NAME = 120
_STEP_KEYS = ('validation_interval', 'checkpoint_interval', 'steps_per_loop',
              'summary_interval')


class GridError(errors.InputError):
  """--grid is malformed; the message names the part at fault."""


Point = Tuple[Tuple[str, Any], ...]  # ((key, value), ...) in grid order.


class OverrideError(errors.InputError):
  """--params_override is neither a YAML/JSON mapping nor KEY=VALUE,..."""


def parse_override(text: str) -> Dict[str, Any]:
  """A params override as a nested dict, read exactly as `tfm train --params_override` reads it.

  Model Garden's own reader does the parsing (applied to an empty ParamsDict): its dotted
  `KEY=VALUE,...` form, YAML or JSON (with its float rules: `1e-8` is a number), or a YAML
  file's path; '' is no override.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.modeling.hyperparams import params_dict  # pylint: disable=g-import-not-at-top
  loaded = params_dict.ParamsDict()
  try:
    params_dict.override_params_dict(loaded, text, is_strict=False)
  except yaml.YAMLError as e:
    raise OverrideError(f'--params_override={text!r}: not YAML, JSON or KEY=VALUE,... '
                        f'({" ".join(str(e).split())})') from e
  except tf.errors.NotFoundError as e:  # Neither a mapping nor a file: Model Garden tried both.
    raise OverrideError(f'--params_override={text!r}: must be a mapping of keys, e.g. '
                        f'trainer.train_steps=684 or {{trainer: {{train_steps: 684}}}}, or a '
                        f'YAML file') from e
  return loaded.as_dict()


def parse_value(text: str) -> Any:
  """'2e-4' -> 0.0002, '3' -> 3, 'true' -> True, 'null' -> None, anything else a string."""
  text = text.strip()
  for kind in (int, float):
    try:
      return kind(text)
    except ValueError:
      pass
  value = yaml.safe_load(text) if text else ''
  return value if isinstance(value, (bool, type(None))) else text


def parse_grid(grid: str) -> List[Tuple[str, List[Any]]]:
  """`KEY=V1,V2;KEY2=V3` -> [(KEY, [V1, V2]), (KEY2, [V3])]; '' -> [] (one point).

  Raises:
    GridError: a part without `=`, an empty key or value list, or a key given twice.
  """
  axes = []
  for part in filter(None, (p.strip() for p in grid.split(';'))):
    key, equals, values = part.partition('=')
    key = key.strip()
    if not equals or not key or not re.fullmatch(r'[A-Za-z_][\w.]*', key):
      raise GridError(f'--grid: {part!r} is not KEY=V1,V2 (KEY dotted, e.g. '
                      'task.layer_decay=0.8,1.0)')
    parsed = [parse_value(v) for v in values.split(',')]
    if not values.strip() or any(v == '' for v in parsed):
      raise GridError(f'--grid: {part!r} has an empty value')
    if key in (k for k, _ in axes):
      raise GridError(f'--grid: {key} is given twice')
    axes.append((key, parsed))
  return axes


def points(axes: Sequence[Tuple[str, List[Any]]]) -> List[Point]:
  """Every combination, the first key varying slowest."""
  keys = [key for key, _ in axes]
  return [tuple(zip(keys, values)) for values in itertools.product(*(v for _, v in axes))]


def point_name(point: Point) -> str:
  """A folder name for the point: `key=value__key=value`, or `default` for the empty point."""
  if not point:
    return 'default'
  name = '__'.join(f'{key}={value}' for key, value in point)
  name = re.sub(r'[^\w.=+-]', '_', name)
  if len(name) > _MAX_NAME:
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    name = f'{name[:_MAX_NAME - 12]}__{digest}'
  return name


def nested(key: str, value: Any) -> Dict[str, Any]:
  """'a.b.c', 1 -> {'a': {'b': {'c': 1}}}."""
  for part in reversed(key.split('.')):
    value = {part: value}
  return value


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> Dict[str, Any]:
  """`update` laid over `base`, nested dicts merged key by key (neither is changed)."""
  merged = copy.deepcopy(dict(base))
  for key, value in update.items():
    if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
      merged[key] = merge(merged[key], value)
    else:
      merged[key] = copy.deepcopy(value)
  return merged


SEED_KEYS = ('task.seed', 'task.train_data.seed')


def seed_override(seed: int, keys: Sequence[str] = SEED_KEYS) -> Dict[str, Any]:
  """The keys one seed sets; by default the task's (classifier initialisation, dropout) and
  the training data order's. Runs meant for a weight soup share their initialisation: give
  `task.train_data.seed` alone (and fix task.seed)."""
  override: Dict[str, Any] = {}
  for key in keys:
    override = merge(override, nested(key, seed))
  return override


def get_key(tree: Mapping[str, Any], path: str):
  """The value at a dotted key of a nested override, or None."""
  for part in path.split('.'):
    if not isinstance(tree, Mapping) or part not in tree:
      return None
    tree = tree[part]
  return tree


def follow_train_steps(override: Mapping[str, Any], trainer: Mapping[str, Any]
                      ) -> Dict[str, Any]:
  """When `override` sets trainer.train_steps alone, the keys tied to it follow.

  The linear decay ends at the new step count, the warm-up keeps its share of the steps, and
  evaluation, checkpoint, loop and summary intervals shrink to fit; keys the override sets
  itself are left as it sets them.

  Args:
    override: the nested override of one run.
    trainer: the experiment's trainer config as a dict (before the override).
  """
  steps = get_key(override, 'trainer.train_steps')
  if steps is None or not isinstance(steps, int) or steps < 1:
    return dict(override)
  old_steps = trainer['train_steps']
  follow: Dict[str, Any] = {}
  rate = trainer['optimizer_config']['learning_rate']
  if rate.get('type') == 'polynomial':
    follow = merge(follow, nested('trainer.optimizer_config.learning_rate.polynomial.'
                                  'decay_steps', steps))
  warmup = trainer['optimizer_config']['warmup']
  if warmup.get('type') == 'linear' and old_steps:
    share = warmup['linear']['warmup_steps'] / old_steps
    follow = merge(follow, nested('trainer.optimizer_config.warmup.linear.warmup_steps',
                                  int(share * steps)))
  for name in _STEP_KEYS:
    value = trainer.get(name)
    if value and value > steps:
      follow = merge(follow, nested(f'trainer.{name}', steps))
  return merge(follow, override)


@dataclasses.dataclass
class RunResult:
  """The scores of one finished run: data name -> {accuracy, f1, mean}."""
  point: Point
  seed: int
  scores: Dict[str, Dict[str, float]]
  seconds: Optional[float] = None


def run_scores(evaluation: Mapping[str, Any]) -> Dict[str, Dict[str, float]]:
  """`tfm evaluate`'s JSON -> {data: {accuracy, f1, mean}} in percent."""
  scores = {}
  for name in DATA:
    if name in evaluation:
      accuracy = 100 * float(evaluation[name]['accuracy'])
      f1 = 100 * float(evaluation[name]['f1'])
      scores[name] = {'accuracy': accuracy, 'f1': f1, 'mean': (accuracy + f1) / 2}
  return scores


def _mean_std(values: List[float]) -> Tuple[float, float]:
  if not values:
    return math.nan, math.nan
  return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(results: Iterable[RunResult], order: Sequence[Point]) -> List[Dict[str, Any]]:
  """One row per point (in `order`): its values, seed count, and mean and std of each score."""
  by_point: Dict[Point, List[RunResult]] = {point: [] for point in order}
  for result in results:
    by_point.setdefault(result.point, []).append(result)
  rows = []
  for point, runs in by_point.items():
    row: Dict[str, Any] = {'point': point_name(point), 'seeds': len(runs)}
    row.update({key: value for key, value in point})
    for data in DATA:
      for score in SCORES:
        values = [r.scores[data][score] for r in runs if data in r.scores]
        row[f'{data}_{score}'], row[f'{data}_{score}_std'] = _mean_std(values)
    rows.append(row)
  return rows


def _cell(mean: float, std: float) -> str:
  return '' if math.isnan(mean) else f'{mean:.2f} ± {std:.2f}'


def markdown_table(rows: List[Dict[str, Any]], keys: Sequence[str]) -> str:
  """The table the sweep writes as results.md: grid values, seeds, mean ± std per score."""
  score_columns = [(data, score) for data in DATA for score in SCORES]
  header = list(keys) + ['seeds'] + [f'{data} {score}' for data, score in score_columns]
  lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
  for row in rows:
    cells = [str(row.get(key, '')) for key in keys] + [str(row['seeds'])]
    cells += [_cell(row[f'{d}_{s}'], row[f'{d}_{s}_std']) for d, s in score_columns]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def csv_columns(keys: Sequence[str]) -> List[str]:
  return (['point'] + list(keys) + ['seeds'] +
          [f'{d}_{s}{std}' for d in DATA for s in SCORES for std in ('', '_std')])
