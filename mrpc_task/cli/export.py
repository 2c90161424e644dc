"""`tfm export`: a training run's checkpoint -> a SavedModel that takes raw sentence pairs.

The config is the one the run trained with (registered defaults <- `MODEL_DIR/params.yaml` <-
--config_file <- --params_override); the SavedModel is written to a temporary folder beside
--export_dir and renamed into place when complete; an existing export is replaced only with
--overwrite.
"""

import os

from absl import flags

from mrpc_task import safe_output
from mrpc_task.cli import experiment_config
from mrpc_task.cli import main as cli_main
from mrpc_task.cli import run_dir

FLAGS = flags.FLAGS


def define_flags():
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('experiment', None, 'Registered experiment name, e.g. bert_mrpc. '
                      'Default: the one recorded in MODEL_DIR by tfm train_experiment.')
  flags.DEFINE_string('model_dir', None,
                      'Training directory: its params.yaml and checkpoints are used.')
  flags.DEFINE_string('export_dir', None, 'Where to write the SavedModel (a new folder).')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --export_dir, whole.')
  flags.DEFINE_string('checkpoint_path', None,
                      'Checkpoint prefix or directory. Default: see --pick.')
  flags.DEFINE_enum('pick', 'best', ['best', 'final'],
                    'Which checkpoint of a run to export when --checkpoint_path is not given: '
                    'best (its best_ckpt/ if the trainer kept one, else the latest) or final '
                    '(the latest).')
  flags.DEFINE_list('members', [], 'Further training folders of the same experiment and '
                    'model: the export averages their probabilities with --model_dir\'s '
                    '(an ensemble; each member adds its serving cost).')
  flags.DEFINE_bool('average_orders', False,
                    'Also score each pair with its sentences swapped and average the '
                    'probabilities (twice the cost); only for tasks with '
                    'task.symmetric_pairs (MRPC, QQP).')
  flags.DEFINE_multi_string('config_file', None, 'YAML files applied after params.yaml.')
  flags.DEFINE_string('params_override', None, 'YAML/JSON string applied last.')
  flags.DEFINE_bool('trim_padding', True,
                    'Pad each request batch to its longest pair instead of seq_length.')
  flags.DEFINE_integer('sort_chunk_size', export.DEFAULT_SORT_CHUNK_SIZE,
                       'With --trim_padding, run each request sorted by length in chunks of '
                       'this many pairs, each padded to its own longest (0: one batch).')
  flags.mark_flags_as_required(['model_dir', 'export_dir'])


def export_params(experiment: str, model_dir: str, config_files=None, params_override=None):
  """The experiment config as trained: registered defaults <- params.yaml <- files <- override.

  Raises:
    run_dir.ModelDirError: model_dir holds no run, or a run of another experiment.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.isdir(model_dir):
    raise run_dir.ModelDirError(f'--model_dir={model_dir}: no such folder')
  recorded = run_dir.recorded_experiment(model_dir)
  if recorded and experiment and recorded != experiment:
    raise run_dir.ModelDirError(
        f'--model_dir={model_dir} holds a run of experiment {recorded!r}, not '
        f'--experiment={experiment}: pass --experiment={recorded} (or leave it out)')
  experiment = experiment or recorded
  if not experiment:
    raise run_dir.ModelDirError(f'--model_dir={model_dir} records no experiment: pass '
                                '--experiment=NAME')
  saved = experiment_config.saved_params_path(model_dir)
  if not tf.io.gfile.exists(saved):
    raise run_dir.ModelDirError(
        f'--model_dir={model_dir} has no {run_dir.PARAMS_FILE}: not a training run of tfm '
        'train_experiment (or it never started training)')
  return experiment_config.parse_experiment(
      experiment, config_files=config_files, params_override=params_override,
      saved_params=saved)


def default_export_checkpoint(model_dir: str, best_subdir: str, *, pick: str = 'best',
                              flag: str = '--model_dir') -> str:
  """The best checkpoint kept by the trainer if any (pick='best'), else the latest."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  best = os.path.join(model_dir, best_subdir) if best_subdir and pick == 'best' else ''
  for directory in ([best] if best else []) + [model_dir]:
    if directory and tf.train.latest_checkpoint(directory):
      return tf.train.latest_checkpoint(directory)
  raise run_dir.ModelDirError(f'{flag}={model_dir} holds no checkpoint (has it trained?)')


def member_checkpoints(members, experiment: str, params, pick: str, flag: str = '--members'):
  """The checkpoint of each folder, after checking it trained the same model."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  checkpoints = []
  for member in members:
    if not tf.io.gfile.isdir(member):
      raise run_dir.ModelDirError(f'{flag}: {member}: no such folder')
    if not tf.io.gfile.exists(experiment_config.saved_params_path(member)):
      raise run_dir.ModelDirError(f'{flag}: {member} has no {run_dir.PARAMS_FILE}: not a '
                                  'training run of tfm train_experiment')
    run_dir.check_model_dir(member, experiment, params, flag=flag)
    checkpoints.append(default_export_checkpoint(
        member, params.trainer.best_checkpoint_export_subdir, pick=pick, flag=flag))
  return checkpoints


def main(_):
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top

  inputs = {'--model_dir': FLAGS.model_dir,
            '--checkpoint_path': FLAGS.checkpoint_path and os.path.dirname(
                FLAGS.checkpoint_path.rstrip('/'))}
  inputs.update({f'--members ({member})': member for member in FLAGS.members})
  safe_output.refuse_overlap(FLAGS.export_dir, inputs, flag='--export_dir', allow_inside=True)
  safe_output.check_destination(FLAGS.export_dir, flag='--export_dir',
                                overwrite=FLAGS.overwrite, folder=True)
  params = export_params(FLAGS.experiment, FLAGS.model_dir, FLAGS.config_file,
                         FLAGS.params_override)
  checkpoint = FLAGS.checkpoint_path or default_export_checkpoint(
      FLAGS.model_dir, params.trainer.best_checkpoint_export_subdir, pick=FLAGS.pick)
  experiment = FLAGS.experiment or run_dir.recorded_experiment(FLAGS.model_dir)
  if FLAGS.average_orders and not params.task.symmetric_pairs:
    raise cli_main.UsageError(
        f'--average_orders: experiment {experiment} declares task.symmetric_pairs=false (the '
        'order of its sentences matters), so swapping them is not the same question')
  members = member_checkpoints(FLAGS.members, experiment, params, FLAGS.pick)
  task = task_factory.get_task(params.task, logging_dir=FLAGS.model_dir)
  with safe_output.atomic_folder(FLAGS.export_dir, flag='--export_dir',
                                 overwrite=FLAGS.overwrite) as folder:
    export.export_model(params.task, task.build_model(), folder, checkpoint,
                        trim_padding=FLAGS.trim_padding, sort_chunk_size=FLAGS.sort_chunk_size,
                        model_name=f'the model of {experiment} as configured in '
                                   f'{FLAGS.model_dir}/{run_dir.PARAMS_FILE}',
                        members=[(task.build_model(), path) for path in members],
                        average_orders=FLAGS.average_orders)
  what = ' + '.join([checkpoint] + members)
  orders = ', both sentence orders averaged' if FLAGS.average_orders else ''
  print(f'Exported {what}{orders} to {FLAGS.export_dir}')
