"""`tfm sweep`: every grid point of an experiment for N seeds, one run after another.

    tfm sweep --experiment=NAME --grid='KEY=V1,V2;KEY2=V3' --seeds=5 --output_dir=DIR

Each run trains on the training file minus its selection split and evaluates on that split
(`registry/templates/selection.yaml`; `--selection=false` keeps the experiment's own data),
then its final weights are scored on the selection split and on dev (`tfm evaluate`). Every
config is built and validated before the first run, so a misspelt key fails at once.
Resumable: a run whose `scores.json` exists is skipped, one cut short resumes from its last
checkpoint. After each run DIR/results.{csv,md,png} are rewritten: mean ± std over seeds of
accuracy, F1 and their mean, on the selection split and on dev.

Layout: DIR/sweep.json (what the runs share), DIR/runs/POINT/seed_N/ (a model_dir with its
train.log and scores.json).
"""

import csv
import io
import json
import os
import subprocess
import sys
import time
from typing import Any, Dict, List

from absl import flags
from absl import logging

from mrpc_task import errors
from mrpc_task import safe_output
from mrpc_task import sweep
from mrpc_task.cli import main as cli_main
from mrpc_task.cli import progress

FLAGS = flags.FLAGS
SWEEP_FILE = 'sweep.json'
SCORES_FILE = 'scores.json'


class SweepError(errors.InputError):
  """The sweep cannot start or go on; the message names the flag, folder or run."""


def define_flags():
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  flags.DEFINE_string('experiment', None, 'Registered experiment name, e.g. bert_mrpc_minilm.')
  flags.DEFINE_string('grid', '', "Points to run: 'KEY=V1,V2;KEY2=V3,V4' (dotted config keys; "
                      'every combination). Empty: the experiment as it is.')
  flags.DEFINE_integer('seeds', 5, 'Runs per point, seeds first_seed, first_seed+1, ...',
                       lower_bound=1)
  flags.DEFINE_integer('first_seed', 0, 'The first seed.', lower_bound=0)
  flags.DEFINE_string('output_dir', None, 'Folder of the sweep (runs and results); an '
                      'existing sweep there is resumed.')
  flags.DEFINE_multi_string('config_file', None, 'YAML files applied to every run.')
  flags.DEFINE_string('params_override', None, 'KEY=VALUE,..., YAML/JSON or a YAML file '
                      '(as tfm train takes it), applied to every run under the grid values '
                      'and seeds.')
  flags.DEFINE_list('seed_keys', list(sweep.SEED_KEYS), 'The config keys each seed sets. '
                    'task.train_data.seed alone: runs share their initial head (and '
                    'task.seed), as the ingredients of a weight soup must.')
  flags.DEFINE_bool('selection', True, 'Train without the selection split and evaluate on it '
                    '(false: the experiment\'s own training and evaluation data).')
  flags.mark_flags_as_required(['experiment', 'output_dir'])


def _tfm(command: str, *args: str) -> List[str]:
  imports = [f'--import={module}' for module in cli_main.IMPORTED]
  return [sys.executable, '-m', 'mrpc_task.cli.main', command, *imports, *args]


def _base_override() -> Dict[str, Any]:
  return sweep.parse_override(FLAGS.params_override or '')


def _config_files() -> List[str]:
  from registry import experiments  # pylint: disable=g-import-not-at-top
  selection = [experiments.template_path('selection')] if FLAGS.selection else []
  return selection + list(FLAGS.config_file or [])


def _file_digests(paths) -> List[str]:
  """'path sha256' of each file: a sweep resumed after a file changed is refused."""
  import hashlib  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  digests = []
  for path in paths:
    with tf.io.gfile.GFile(path, 'rb') as f:
      digests.append(f'{os.path.abspath(path)} {hashlib.sha256(f.read()).hexdigest()}')
  return digests


def _check_sweep_folder(shared: Dict[str, Any]):
  """A folder holding another sweep (other experiment, override or files) is refused."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(FLAGS.output_dir, SWEEP_FILE)
  if tf.io.gfile.exists(FLAGS.output_dir) and not tf.io.gfile.isdir(FLAGS.output_dir):
    raise SweepError(f'--output_dir={FLAGS.output_dir}: is a file, not a folder')
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      recorded = json.load(f)
    if recorded != shared:
      changed = sorted(k for k in set(recorded) | set(shared) if recorded.get(k) != shared.get(k))
      raise SweepError(
          f'--output_dir={FLAGS.output_dir} holds a sweep with other {", ".join(changed)} '
          f'({path}); its runs cannot be mixed with these: use another --output_dir')
  elif tf.io.gfile.isdir(FLAGS.output_dir) and tf.io.gfile.listdir(FLAGS.output_dir):
    raise SweepError(f'--output_dir={FLAGS.output_dir} is not empty and holds no '
                     f'{SWEEP_FILE}: use a new folder for a sweep')
  tf.io.gfile.makedirs(FLAGS.output_dir)
  with safe_output.atomic_file(path, flag='--output_dir', overwrite=True) as f:
    json.dump(shared, f, indent=1, sort_keys=True)


def _validated_overrides(points, seeds) -> Dict[Any, Dict[str, Any]]:
  """The override of every run; each point's config is built and validated first."""
  import yaml  # pylint: disable=g-import-not-at-top
  from mrpc_task.cli import experiment_config  # pylint: disable=g-import-not-at-top
  from mrpc_task import evaluation  # pylint: disable=g-import-not-at-top
  defaults = experiment_config.parse_experiment(FLAGS.experiment, config_files=_config_files())
  try:
    experiment_config.parse_experiment(
        FLAGS.experiment, config_files=_config_files(),
        params_override=json.dumps(sweep.seed_override(seeds[0], FLAGS.seed_keys)))
  except errors.InputError as e:
    raise SweepError(f'--seed_keys={",".join(FLAGS.seed_keys)}: {cli_main.one_line(e)}') from e
  for name in ('selection', 'dev') if FLAGS.selection else ('dev',):
    evaluation.named_data(defaults.task, name)  # A source with no splits fails now.
  trainer = yaml.safe_load(yaml.safe_dump(defaults.trainer.as_dict()))
  overrides = {}
  for point in points:
    point_override = _base_override()
    for key, value in point:
      point_override = sweep.merge(point_override, sweep.nested(key, value))
    for key in FLAGS.seed_keys:
      if sweep.get_key(point_override, key) is not None:
        raise SweepError(f'{key} is set by --grid or --params_override and by each seed '
                         f'(--seed_keys): drop it from one of them')
    point_override = sweep.follow_train_steps(point_override, trainer)
    for seed in seeds:
      overrides[point, seed] = sweep.merge(point_override,
                                           sweep.seed_override(seed, FLAGS.seed_keys))
    what = f'--grid point {sweep.point_name(point)}: ' if point else ''
    try:  # Seeds change no key that could fail: one run's config stands for the point's.
      experiment_config.parse_experiment(FLAGS.experiment, config_files=_config_files(),
                                         params_override=json.dumps(overrides[point, seeds[0]]))
    except errors.InputError as e:
      raise SweepError(f'{what}{cli_main.one_line(e)}') from e
  return overrides


def _read_results(points, seeds) -> List[sweep.RunResult]:
  results = []
  for point in points:
    for seed in seeds:
      path = os.path.join(_run_dir(point, seed), SCORES_FILE)
      if os.path.exists(path):
        with open(path) as f:
          results.append(sweep.RunResult(point, seed, sweep.run_scores(json.load(f))))
  return results


def _run_dir(point, seed) -> str:
  return os.path.join(FLAGS.output_dir, 'runs', sweep.point_name(point), f'seed_{seed}')


def _write_results(results, points, keys) -> str:
  """results.csv, results.md and results.png in output_dir; returns the Markdown."""
  rows = sweep.summarize(results, points)
  table = sweep.markdown_table(rows, keys)
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=sweep.csv_columns(keys), extrasaction='ignore')
  writer.writeheader()
  writer.writerows(rows)
  for name, text in (('results.csv', buffer.getvalue()), ('results.md', table)):
    with safe_output.atomic_file(os.path.join(FLAGS.output_dir, name), flag='--output_dir',
                                 overwrite=True) as f:
      f.write(text)
  from mrpc_task import sweep_plot  # pylint: disable=g-import-not-at-top
  try:
    png = sweep_plot.results_png(rows)
  except ImportError as e:  # matplotlib is the optional `report` extra.
    logging.warning('results.png not written: %s', e)
    png = None
  if png is not None:
    with safe_output.atomic_file(os.path.join(FLAGS.output_dir, 'results.png'), 'wb',
                                 flag='--output_dir', overwrite=True) as f:
      f.write(png)
  return table


def _run(command: List[str], log_path: str, what: str):
  with open(log_path, 'a') as log:
    log.write(f'$ {" ".join(command)}\n')
    log.flush()
    code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
  if code:
    raise SweepError(f'{what} failed (exit code {code}); its log: {log_path}. Fix it and run '
                     'the same tfm sweep again: finished runs are kept')


def main(_):
  axes = sweep.parse_grid(FLAGS.grid)
  keys = [key for key, _ in axes]
  points = sweep.points(axes)
  seeds = list(range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds))
  overrides = _validated_overrides(points, seeds)
  _check_sweep_folder({'experiment': FLAGS.experiment, 'params_override': _base_override(),
                       'selection': FLAGS.selection, 'seed_keys': list(FLAGS.seed_keys),
                       'config_files': _file_digests(FLAGS.config_file or []),
                       'imports': list(cli_main.IMPORTED)})
  todo = [(p, s) for p in points for s in seeds
          if not os.path.exists(os.path.join(_run_dir(p, s), SCORES_FILE))]
  total = len(points) * len(seeds)
  print(f'sweep | {len(points)} point(s) x {len(seeds)} seed(s) = {total} runs; '
        f'{total - len(todo)} already done, {len(todo)} to run | {FLAGS.output_dir}', flush=True)
  started = time.monotonic()
  for done, (point, seed) in enumerate(todo):
    run_dir = _run_dir(point, seed)
    os.makedirs(run_dir, exist_ok=True)
    log_path = os.path.join(run_dir, 'train.log')
    name = f'{sweep.point_name(point)} seed {seed}'
    print(f'sweep | run {total - len(todo) + done + 1}/{total} | {name} | log {log_path}',
          flush=True)
    _run(_tfm('train_experiment', f'--experiment={FLAGS.experiment}', '--mode=train_and_eval',
              f'--model_dir={run_dir}', *[f'--config_file={p}' for p in _config_files()],
              f'--params_override={json.dumps(overrides[point, seed])}'),
         log_path, f'run {name}')
    data = 'selection,dev' if FLAGS.selection else 'dev'
    _run(_tfm('evaluate', f'--model_dir={run_dir}', f'--data={data}', '--overwrite',
              f'--output={os.path.join(run_dir, SCORES_FILE)}'),
         log_path, f'evaluation of {name}')
    results = _read_results(points, seeds)
    latest = [r for r in results if (r.point, r.seed) == (point, seed)][0].scores
    _write_results(results, points, keys)
    elapsed = time.monotonic() - started
    remaining = elapsed / (done + 1) * (len(todo) - done - 1)
    print('sweep | done ' + ' | '.join(
        f'{data} {s["accuracy"]:.2f}/{s["f1"]:.2f}' for data, s in latest.items()) +
          f' | elapsed {progress.format_duration(elapsed)} | ETA '
          f'{progress.format_duration(remaining)}', flush=True)
  table = _write_results(_read_results(points, seeds), points, keys)
  print(table, end='')
  print(f'sweep | results: {os.path.join(FLAGS.output_dir, "results.md")} (.csv, .png)')
