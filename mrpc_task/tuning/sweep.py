"""A sweep: every point of a grid of config values, for several seeds, and its results table.

A grid is written `KEY=V1,V2;KEY2=V3,V4` with Model Garden's dotted keys; values are read as
numbers, true / false / null, or strings. A point is one combination; its runs differ only in
seed. Each run trains on the training split minus its selection split and evaluates on that
split (`registry/templates/selection.yaml`), then its final weights are scored on the
selection split and on each of the task's evaluation splits, with the task's own metrics.
`plan` builds and validates every run's config before the first one trains; `run` trains
what is not done (the caller says how: `tfm sweep` starts one `tfm` process per run) and
rewrites the results table, mean ± std over seeds of each score, after every run.
"""

import copy
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import re
import statistics
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import yaml

from mrpc_task import choices
from mrpc_task import configs
from mrpc_task import errors
from mrpc_task import safe_output

_MAX_NAME = 120
_STEP_KEYS = ('validation_interval', 'checkpoint_interval', 'steps_per_loop',
              'summary_interval')


class GridError(errors.InputError):
  """A grid is malformed; the message names the part at fault."""


Point = Tuple[Tuple[str, Any], ...]  # ((key, value), ...) in grid order.


class OverrideError(errors.InputError):
  """A params override is neither a YAML/JSON mapping nor KEY=VALUE,..."""


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
    raise OverrideError(f'params override {text!r}: not YAML, JSON or KEY=VALUE,... '
                        f'({" ".join(str(e).split())})') from e
  except tf.errors.NotFoundError as e:  # Neither a mapping nor a file: Model Garden tried both.
    raise OverrideError(f'params override {text!r}: must be a mapping of keys, e.g. '
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
      raise GridError(f'grid: {part!r} is not KEY=V1,V2 (KEY dotted, e.g. '
                      'task.layer_decay=0.8,1.0)')
    parsed = [parse_value(v) for v in values.split(',')]
    if not values.strip() or any(v == '' for v in parsed):
      raise GridError(f'grid: {part!r} has an empty value')
    if key in (k for k, _ in axes):
      raise GridError(f'grid: {key} is given twice')
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


SEED_KEYS = choices.SEED_KEYS


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
  """The scores of one finished run: data name -> {score: value in percent}."""
  point: Point
  seed: int
  scores: Dict[str, Dict[str, float]]
  seconds: Optional[float] = None


def score_columns(metrics: Sequence[str]) -> List[str]:
  """The scores a sweep tabulates: the task's metrics and glue_score (their mean)."""
  return list(metrics) + [configs.GLUE_SCORE]


def run_scores(evaluation: Mapping[str, Any], metrics: Sequence[str]
              ) -> Dict[str, Dict[str, float]]:
  """`tfm evaluate`'s JSON -> {data: {metric: value, glue_score: value}} in percent."""
  scores = {}
  for name, values in evaluation.items():
    if isinstance(values, Mapping):
      scores[name] = {score: 100 * float(values[score]) for score in score_columns(metrics)
                      if score in values}
  return scores


def _mean_std(values: List[float]) -> Tuple[float, float]:
  if not values:
    return math.nan, math.nan
  return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(results: Iterable[RunResult], order: Sequence[Point], metrics: Sequence[str],
              data: Sequence[str]) -> List[Dict[str, Any]]:
  """One row per point (in `order`): its values, seed count, and mean and std of each score
  on each data."""
  by_point: Dict[Point, List[RunResult]] = {point: [] for point in order}
  for result in results:
    by_point.setdefault(result.point, []).append(result)
  rows = []
  for point, runs in by_point.items():
    row: Dict[str, Any] = {'point': point_name(point), 'seeds': len(runs)}
    row.update({key: value for key, value in point})
    for name in data:
      for score in score_columns(metrics):
        values = [r.scores[name][score] for r in runs
                  if score in r.scores.get(name, {})]
        row[f'{name}_{score}'], row[f'{name}_{score}_std'] = _mean_std(values)
    rows.append(row)
  return rows


def _cell(mean: float, std: float) -> str:
  return '' if math.isnan(mean) else f'{mean:.2f} ± {std:.2f}'


def markdown_table(rows: List[Dict[str, Any]], keys: Sequence[str], metrics: Sequence[str],
                   data: Sequence[str]) -> str:
  """The table the sweep writes as results.md: grid values, seeds, mean ± std per score."""
  columns = [(name, score) for name in data for score in score_columns(metrics)]
  header = list(keys) + ['seeds'] + [f'{name} {score}' for name, score in columns]
  lines = ['| ' + ' | '.join(header) + ' |', '|' + ' --- |' * len(header)]
  for row in rows:
    cells = [str(row.get(key, '')) for key in keys] + [str(row['seeds'])]
    cells += [_cell(row[f'{n}_{s}'], row[f'{n}_{s}_std']) for n, s in columns]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def csv_columns(keys: Sequence[str], metrics: Sequence[str], data: Sequence[str]) -> List[str]:
  return (['point'] + list(keys) + ['seeds'] +
          [f'{n}_{s}{std}' for n in data for s in score_columns(metrics)
           for std in ('', '_std')])


SWEEP_FILE = 'sweep.json'
SCORES_FILE = 'scores.json'
LOG_FILE = 'train.log'


class SweepError(errors.InputError):
  """The sweep cannot start or go on; the message names the setting, folder or run."""


@dataclasses.dataclass
class Plan:
  """Every run of a sweep, validated: its points, seeds and each run's override."""
  experiment: str
  output_dir: str
  keys: List[str]
  points: List[Point]
  seeds: List[int]
  config_files: List[str]
  overrides: Dict[Tuple[Point, int], Dict[str, Any]]
  metrics: List[str]
  data: List[str]  # What each run is scored on: selection, then the evaluation splits.
  shared: Dict[str, Any]  # What every run shares: recorded in sweep.json.

  def run_dir(self, point: Point, seed: int) -> str:
    return os.path.join(self.output_dir, 'runs', point_name(point), f'seed_{seed}')

  def done(self, point: Point, seed: int) -> bool:
    return os.path.exists(os.path.join(self.run_dir(point, seed), SCORES_FILE))

  def pending(self) -> List[Tuple[Point, int]]:
    return [(p, s) for p in self.points for s in self.seeds if not self.done(p, s)]


def _file_digests(paths: Sequence[str]) -> List[str]:
  """'path sha256' of each file: a sweep resumed after a file changed is refused."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  digests = []
  for path in paths:
    with tf.io.gfile.GFile(path, 'rb') as f:
      digests.append(f'{os.path.abspath(path)} {hashlib.sha256(f.read()).hexdigest()}')
  return digests


def plan(experiment: str, *, grid: str, seeds: Sequence[int], output_dir: str,
         config_files: Sequence[str] = (), params_override: str = '',
         seed_keys: Sequence[str] = SEED_KEYS, selection_template: str = '',
         imports: Sequence[str] = (), known: Sequence[str] = ()) -> Plan:
  """Builds and validates the config of every point before anything runs.

  Args:
    experiment: the registered experiment.
    grid: 'KEY=V1,V2;KEY2=V3' ('' = the experiment as it is).
    seeds: the seeds of every point.
    output_dir: the sweep's folder.
    config_files: YAML files applied to every run (after `selection_template`).
    params_override: applied to every run, under the grid values and seeds.
    seed_keys: the config keys each seed sets.
    selection_template: the YAML file that trains without the selection split and
      evaluates on it ('' keeps the experiment's own data; runs are then scored on its
      evaluation splits only).
    imports: modules of the user's registrations, recorded with the sweep.
    known: registered experiment names, for "did you mean".

  Raises:
    GridError, OverrideError, SweepError, or the config errors of a point.
  """
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  axes = parse_grid(grid)
  points_ = points(axes)
  files = ([selection_template] if selection_template else []) + list(config_files)
  base_override = parse_override(params_override or '')
  defaults = experiment_config.parse_experiment(experiment, config_files=files, known=known)
  try:
    experiment_config.parse_experiment(
        experiment, config_files=files, known=known,
        params_override=json.dumps(seed_override(seeds[0], seed_keys)))
  except errors.InputError as e:
    raise SweepError(f'seed keys {",".join(seed_keys)}: {e}') from e
  task = defaults.task
  data = ([evaluation.SELECTION] if selection_template else []) + list(
      task.validation_data.splits)
  for name in data:
    evaluation.named_data(task, name)  # A source with no splits fails now.
  trainer = yaml.safe_load(yaml.safe_dump(defaults.trainer.as_dict()))
  overrides = {}
  for point in points_:
    point_override = base_override
    for key, value in point:
      point_override = merge(point_override, nested(key, value))
    for key in seed_keys:
      if get_key(point_override, key) is not None:
        raise SweepError(f'{key} is set by the grid or the params override and by each seed '
                         '(the seed keys): drop it from one of them')
    point_override = follow_train_steps(point_override, trainer)
    for seed in seeds:
      overrides[point, seed] = merge(point_override, seed_override(seed, seed_keys))
    what = f'grid point {point_name(point)}: ' if point else ''
    try:  # Seeds change no key that could fail: one run's config stands for the point's.
      experiment_config.parse_experiment(experiment, config_files=files, known=known,
                                         params_override=json.dumps(overrides[point, seeds[0]]))
    except errors.InputError as e:
      raise SweepError(f'{what}{e}') from e
  # The compute type the experiment resolves to here: bert_*_minilm's depends on the CPU
  # (registry/experiments.py), so a sweep resumed on another kind of CPU could mix them.
  shared = {'experiment': experiment, 'params_override': base_override,
            'selection': bool(selection_template), 'seed_keys': list(seed_keys),
            'config_files': _file_digests(config_files), 'imports': list(imports),
            'mixed_precision_dtype': defaults.runtime.mixed_precision_dtype or 'float32'}
  return Plan(experiment=experiment, output_dir=output_dir, keys=[key for key, _ in axes],
              points=points_, seeds=list(seeds), config_files=files, overrides=overrides,
              metrics=list(task.metrics), data=data, shared=shared)


def claim_folder(plan_: Plan, label: str = 'output_dir'):
  """Records the sweep in its folder; a folder holding another sweep (other experiment,
  override or files) or anything else is refused."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  folder = plan_.output_dir
  path = os.path.join(folder, SWEEP_FILE)
  if tf.io.gfile.exists(folder) and not tf.io.gfile.isdir(folder):
    raise SweepError(f'{label}={folder}: is a file, not a folder')
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      recorded = json.load(f)
    # Sweeps recorded before the type was: they ran in bfloat16 on a CPU with it, float32
    # elsewhere, which is what resolves again on the same machine.
    recorded.setdefault('mixed_precision_dtype', plan_.shared['mixed_precision_dtype'])
    if recorded != plan_.shared:
      changed = sorted(k for k in set(recorded) | set(plan_.shared)
                       if recorded.get(k) != plan_.shared.get(k))
      raise SweepError(
          f'{label}={folder} holds a sweep with other {", ".join(changed)} ({path}); its runs '
          f'cannot be mixed with these: use another {label}')
  elif tf.io.gfile.isdir(folder) and tf.io.gfile.listdir(folder):
    raise SweepError(f'{label}={folder} is not empty and holds no {SWEEP_FILE}: use a new '
                     'folder for a sweep')
  tf.io.gfile.makedirs(folder)
  with safe_output.atomic_file(path, label=label, overwrite=True) as f:
    json.dump(plan_.shared, f, indent=1, sort_keys=True)


def read_results(plan_: Plan) -> List[RunResult]:
  results = []
  for point in plan_.points:
    for seed in plan_.seeds:
      path = os.path.join(plan_.run_dir(point, seed), SCORES_FILE)
      if os.path.exists(path):
        with open(path) as f:
          results.append(RunResult(point, seed, run_scores(json.load(f), plan_.metrics)))
  return results


def write_results(plan_: Plan, results: Sequence[RunResult], label: str = 'output_dir') -> str:
  """results.csv, results.md and results.png in the sweep's folder; returns the Markdown."""
  rows = summarize(results, plan_.points, plan_.metrics, plan_.data)
  table = markdown_table(rows, plan_.keys, plan_.metrics, plan_.data)
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=csv_columns(plan_.keys, plan_.metrics, plan_.data),
                          extrasaction='ignore')
  writer.writeheader()
  writer.writerows(rows)
  for name, text in (('results.csv', buffer.getvalue()), ('results.md', table)):
    with safe_output.atomic_file(os.path.join(plan_.output_dir, name), label=label,
                                 overwrite=True) as f:
      f.write(text)
  from mrpc_task.tuning import sweep_plot  # pylint: disable=g-import-not-at-top
  try:
    png = sweep_plot.results_png(rows, plan_.data)
  except ImportError as e:  # matplotlib is the optional `report` extra.
    logging.warning('results.png not written: %s', e)
    png = None
  if png is not None:
    with safe_output.atomic_file(os.path.join(plan_.output_dir, 'results.png'), 'wb',
                                 label=label, overwrite=True) as f:
      f.write(png)
  return table


def run(plan_: Plan, *, train: Callable[[str, Dict[str, Any], str], None],
        score: Callable[[str, List[str], str, str], None],
        report: Callable[[str], None] = print) -> str:
  """Trains and scores every run not done yet, one after another; returns the table.

  Args:
    plan_: from `plan`.
    train: (run folder, its override, log path) -> trains the run there (resuming it).
    score: (run folder, data names, scores path, log path) -> writes its scores JSON.
    report: takes one progress line.
  """
  from mrpc_task import progress  # pylint: disable=g-import-not-at-top
  todo = plan_.pending()
  total = len(plan_.points) * len(plan_.seeds)
  report(f'sweep | {len(plan_.points)} point(s) x {len(plan_.seeds)} seed(s) = {total} runs; '
         f'{total - len(todo)} already done, {len(todo)} to run | {plan_.output_dir}')
  started = time.monotonic()
  for done, (point, seed) in enumerate(todo):
    folder = plan_.run_dir(point, seed)
    os.makedirs(folder, exist_ok=True)
    log_path = os.path.join(folder, LOG_FILE)
    name = f'{point_name(point)} seed {seed}'
    report(f'sweep | run {total - len(todo) + done + 1}/{total} | {name} | log {log_path}')
    train(folder, plan_.overrides[point, seed], log_path)
    score(folder, plan_.data, os.path.join(folder, SCORES_FILE), log_path)
    results = read_results(plan_)
    latest = [r for r in results if (r.point, r.seed) == (point, seed)][0].scores
    write_results(plan_, results)
    elapsed = time.monotonic() - started
    remaining = elapsed / (done + 1) * (len(todo) - done - 1)
    shown = ' | '.join(f'{data} ' + '/'.join(f'{s[m]:.2f}' for m in plan_.metrics if m in s)
                       for data, s in latest.items())
    report(f'sweep | done {shown} | elapsed {progress.format_duration(elapsed)} | ETA '
           f'{progress.format_duration(remaining)}')
  table = write_results(plan_, read_results(plan_))
  report(table.rstrip('\n'))
  report(f'sweep | results: {os.path.join(plan_.output_dir, "results.md")} (.csv, .png)')
  return table
