"""`tfm soup`: training runs of one experiment averaged into one model folder.

    tfm soup --runs='sweep/runs/default/seed_*' --method=greedy --output_dir=DIR

DIR is an ordinary model folder (params.yaml, tfm_run.json, one checkpoint of the averaged
weights, soup.json saying what went in), so `tfm export`, `tfm evaluate` and `tfm predict`
treat it as any run: one model's serving cost. Greedy soups are chosen on the selection
split (mrpc_task/selection.py); dev is only reported. Scores are computed in float32, as
`tfm evaluate` and the export compute them.
"""

import json
import os

from absl import flags

from mrpc_task import safe_output
from mrpc_task.cli import export as export_cli
from mrpc_task.cli import experiment_config
from mrpc_task.cli import main as cli_main
from mrpc_task.cli import run_dir

FLAGS = flags.FLAGS
SOUP_FILE = 'soup.json'


def define_flags():
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import soup  # pylint: disable=g-import-not-at-top
  flags.DEFINE_list('runs', [], 'Training folders (glob patterns allowed) of one experiment '
                    'and model.')
  flags.DEFINE_enum('method', 'uniform', list(soup.METHODS), 'uniform: average every run; '
                    'greedy: best run first, then each run that does not lower the '
                    'selection-split score.')
  flags.DEFINE_enum('pick', 'final', ['final', 'best'], 'Which checkpoint of each run: '
                    'final (the latest) or best (its best_ckpt/ if kept).')
  flags.DEFINE_string('experiment', None, 'Registered experiment name. Default: the one '
                      'recorded in the runs.')
  flags.DEFINE_list('data', ['selection', 'dev'], 'Data to score the soup on (empty: none).')
  flags.DEFINE_string('output_dir', None, 'The new model folder.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output_dir, whole.')
  flags.mark_flags_as_required(['output_dir'])


def expand_runs(patterns):
  """Each --runs item as itself, or the sorted folders its glob pattern matches."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  runs = []
  for pattern in patterns:
    matches = sorted(tf.io.gfile.glob(pattern)) if any(c in pattern for c in '*?[') else [pattern]
    if not matches:
      raise run_dir.ModelDirError(f'--runs: {pattern} matches no folder')
    runs += [m for m in matches if m not in runs]
  if not runs:
    raise cli_main.UsageError('--runs is required: the training folders to average')
  return runs


def check_shared_start(runs):
  """Refuses runs whose classifier heads started from different random weights (task.seed)
  or whose encoders started from different checkpoints: their average is no model at all."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import yaml  # pylint: disable=g-import-not-at-top
  starts = {}
  for run in runs:
    with tf.io.gfile.GFile(experiment_config.saved_params_path(run)) as f:
      task = (yaml.safe_load(f) or {}).get('task') or {}
    starts[run] = tuple(task.get(k) for k in ('seed', 'init_checkpoint', 'init_from_hf'))
  first = runs[0]
  for run in runs[1:]:
    if starts[run] != starts[first]:
      raise run_dir.ModelDirError(
          f'--runs: {run} started from task.seed / init_checkpoint / init_from_hf '
          f'{list(starts[run])}, {first} from {list(starts[first])}: a weight soup needs one '
          'start (train its runs with tfm sweep --seed_keys=task.train_data.seed); for runs '
          'of different starts, average their probabilities instead (tfm export --members)')


def _mean_score(scores) -> float:
  return 100 * (scores['accuracy'] + scores['f1']) / 2


def main(_):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import evaluation  # pylint: disable=g-import-not-at-top
  from mrpc_task import soup  # pylint: disable=g-import-not-at-top

  runs = expand_runs(FLAGS.runs)
  safe_output.refuse_overlap(FLAGS.output_dir, {f'--runs ({run})': run for run in runs},
                             flag='--output_dir')
  safe_output.check_destination(FLAGS.output_dir, flag='--output_dir',
                                overwrite=FLAGS.overwrite, folder=True)
  try:
    params = export_cli.export_params(FLAGS.experiment, runs[0])
  except run_dir.ModelDirError as e:  # Its message names --model_dir; the flag here is --runs.
    raise run_dir.ModelDirError(str(e).replace('--model_dir=', '--runs: ', 1)) from e
  experiment = FLAGS.experiment or run_dir.recorded_experiment(runs[0])
  checkpoints = export_cli.member_checkpoints(runs, experiment, params, FLAGS.pick, '--runs')
  check_shared_start(runs)
  data_names = [name for name in dict.fromkeys(FLAGS.data) if name]
  if FLAGS.method == 'greedy' and 'selection' not in data_names:
    data_names.insert(0, 'selection')
  data_configs = {name: evaluation.named_data(params.task, name) for name in data_names}
  task = task_factory.get_task(params.task, logging_dir=runs[0])
  model = task.build_model()

  def selection_score(members):
    soup.average_checkpoints(model, members)
    return _mean_score(evaluation.evaluate(task, model, data_configs['selection']))

  record = {'experiment': experiment, 'method': FLAGS.method, 'pick': FLAGS.pick,
            'runs': dict(zip(runs, checkpoints))}
  kept = checkpoints
  if FLAGS.method == 'greedy':
    singles = {checkpoint: selection_score([checkpoint]) for checkpoint in checkpoints}
    ranked = sorted(checkpoints, key=lambda c: -singles[c])
    kept, tried = soup.greedy(ranked, selection_score)
    record['singles_selection_mean'] = singles
    record['greedy'] = [{'checkpoint': c, 'soup_selection_mean': v, 'kept': k}
                        for c, v, k in tried]
    for checkpoint, value, keep in tried:
      print(f'greedy | {"kept   " if keep else "dropped"} {checkpoint} | alone '
            f'{singles[checkpoint]:.2f} | soup {value:.2f}', flush=True)
  record['kept'] = kept
  soup.average_checkpoints(model, kept)
  record['scores'] = {}
  for name, config in data_configs.items():
    scores = evaluation.evaluate(task, model, config)
    record['scores'][name] = scores
    print(f'soup of {len(kept)} | {name}: accuracy {scores["accuracy"]:.4f} | f1 '
          f'{scores["f1"]:.4f}', flush=True)
  with safe_output.atomic_folder(FLAGS.output_dir, flag='--output_dir',
                                 overwrite=FLAGS.overwrite) as folder:
    tf.io.gfile.copy(experiment_config.saved_params_path(runs[0]),
                     os.path.join(folder, run_dir.PARAMS_FILE))
    run_dir.record_experiment(folder, experiment, cli_main.IMPORTED)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), folder,
                               max_to_keep=1).save(checkpoint_number=0)
    with tf.io.gfile.GFile(os.path.join(folder, SOUP_FILE), 'w') as f:
      json.dump(record, f, indent=1)
  print(f'Soup of {len(kept)} of {len(runs)} runs ({FLAGS.method}) in {FLAGS.output_dir}: '
        f'tfm export --model_dir={FLAGS.output_dir} --export_dir=...')
