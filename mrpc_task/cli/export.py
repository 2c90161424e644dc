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
                      'Checkpoint prefix or directory. Default: model_dir/best_ckpt if the '
                      'trainer kept a best checkpoint, else the latest in model_dir.')
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


def default_export_checkpoint(model_dir: str, best_subdir: str) -> str:
  """The best checkpoint kept by the trainer if any, else the latest in model_dir."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  best = os.path.join(model_dir, best_subdir) if best_subdir else ''
  for directory in ([best] if best else []) + [model_dir]:
    if directory and tf.train.latest_checkpoint(directory):
      return tf.train.latest_checkpoint(directory)
  raise run_dir.ModelDirError(f'--model_dir={model_dir} holds no checkpoint to export')


def main(_):
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top

  safe_output.refuse_overlap(
      FLAGS.export_dir, {'--model_dir': FLAGS.model_dir,
                         '--checkpoint_path': FLAGS.checkpoint_path and os.path.dirname(
                             FLAGS.checkpoint_path.rstrip('/'))},
      flag='--export_dir', allow_inside=True)
  safe_output.check_destination(FLAGS.export_dir, flag='--export_dir',
                                overwrite=FLAGS.overwrite, folder=True)
  params = export_params(FLAGS.experiment, FLAGS.model_dir, FLAGS.config_file,
                         FLAGS.params_override)
  checkpoint = FLAGS.checkpoint_path or default_export_checkpoint(
      FLAGS.model_dir, params.trainer.best_checkpoint_export_subdir)
  experiment = FLAGS.experiment or run_dir.recorded_experiment(FLAGS.model_dir)
  task = task_factory.get_task(params.task, logging_dir=FLAGS.model_dir)
  with safe_output.atomic_folder(FLAGS.export_dir, flag='--export_dir',
                                 overwrite=FLAGS.overwrite) as folder:
    export.export_model(params.task, task.build_model(), folder, checkpoint,
                        trim_padding=FLAGS.trim_padding, sort_chunk_size=FLAGS.sort_chunk_size,
                        model_name=f'the model of {experiment} as configured in '
                                   f'{FLAGS.model_dir}/{run_dir.PARAMS_FILE}')
  print(f'Exported {checkpoint} to {FLAGS.export_dir}')
