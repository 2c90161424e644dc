"""`tfm train_experiment`: Model Garden's trainer driven through its public parameters.

The flags and behaviour of `official.nlp.train` (gin files and bindings, `params.yaml`, mixed
precision, every mode including `continuous_train_and_eval`, the TPU preemption retry), with
what `tfm` adds passed in through `train_lib.run_experiment`'s own arguments:
- progress lines and an end summary (`progress.TrainingProgress` as train and eval action);
- summaries and the best checkpoint written by the chief only (stock Model Garden has every
  worker of a multi-worker run write the same event files and `best_ckpt/`);
- a best checkpoint that an undefined metric (NaN) never selects;
- a `--model_dir` that holds another experiment's run is refused before anything is written.
The config is logged at DEBUG, not printed (it is in `MODEL_DIR/params.yaml`).
"""

import math
import tempfile

from absl import flags
from absl import logging

from mrpc_task.cli import experiment_config
from mrpc_task.cli import main as cli_main
from mrpc_task.cli import progress
from mrpc_task.cli import run_dir

FLAGS = flags.FLAGS


def define_flags():
  from official.common import flags as tfm_flags  # pylint: disable=g-import-not-at-top
  from official.common import registry_imports  # pylint: disable=g-import-not-at-top,unused-import
  import registry  # pylint: disable=g-import-not-at-top,unused-import

  tfm_flags.define_flags()
  # The two flags official.nlp.train defines beside Model Garden's common ones.
  flags.DEFINE_integer('pretrain_steps', None,
                       'The number of total training steps for the pretraining job '
                       '(mode continuous_train_and_eval).')
  flags.DEFINE_bool('enable_async_checkpointing', True,
                    'Save checkpoints in a background thread.')
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])


def best_checkpoint_exporter(params, model_dir: str, strategy):
  """Model Garden's best-checkpoint exporter, NaN-proof and written by the chief only."""
  from official.core import train_utils  # pylint: disable=g-import-not-at-top

  class DefinedMetricExporter(train_utils.BestCheckpointExporter):
    """Skips an evaluation whose metric is undefined (NaN), which compares as never better
    and, as the first one, would otherwise be kept as best forever."""

    def maybe_export_checkpoint(self, checkpoint, eval_logs, global_step, write_logs=True):
      value = train_utils.get_leaf_nested_dict(eval_logs, metric.split('|'))
      if math.isnan(float(value)):
        logging.warning('%s is undefined at step %d (no positive labels or predictions): '
                        'the best checkpoint is not updated', metric, int(global_step))
        return False
      return super().maybe_export_checkpoint(checkpoint, eval_logs, global_step, write_logs)

  subdir = params.trainer.best_checkpoint_export_subdir
  metric = params.trainer.best_checkpoint_eval_metric
  if not (model_dir and subdir and metric):
    return None
  export_dir = f'{model_dir}/{subdir}'
  if not strategy.extended.should_checkpoint:
    # Saving may be collective, so non-chief workers save too, into a folder of their own.
    export_dir = tempfile.mkdtemp(prefix='best_ckpt_non_chief_')
  return DefinedMetricExporter(export_dir, metric, params.trainer.best_checkpoint_metric_comp)


def _evaluated_on(task_config) -> str:
  validation = getattr(task_config, 'validation_data', None)
  return ('selection split' if getattr(validation, 'selection_split', '') == 'only'
          else 'dev')


def _run(params, model_dir: str, mode: str):
  """One attempt of the experiment, as `official.nlp.train` runs it."""
  from official.common import distribute_utils  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from official.core import train_lib  # pylint: disable=g-import-not-at-top
  from official.core import train_utils  # pylint: disable=g-import-not-at-top

  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu,
      **params.runtime.model_parallelism())
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
    trainer = train_utils.create_trainer(
        params, task, train='train' in mode, evaluate='eval' in mode,
        checkpoint_exporter=best_checkpoint_exporter(params, model_dir, strategy))
  reporter = None
  if 'train' in mode:
    reporter = progress.TrainingProgress(
        total_steps=params.trainer.train_steps,
        global_batch_size=params.task.train_data.global_batch_size,
        step_fn=lambda: int(trainer.global_step.numpy()), model_dir=model_dir,
        best_subdir=params.trainer.best_checkpoint_export_subdir,
        evaluated_on=_evaluated_on(params.task),
        # Orbit restores the checkpoint after the actions are made: read its step now.
        start_step=run_dir.checkpoint_step(model_dir))
  train_lib.run_experiment(
      distribution_strategy=strategy, task=task, mode=mode, params=params,
      model_dir=model_dir, trainer=trainer,
      save_summary=strategy.extended.should_save_summary,
      train_actions=[reporter.on_train] if reporter else None,
      eval_actions=[reporter.on_eval] if reporter else None,
      enable_async_checkpointing=FLAGS.enable_async_checkpointing)
  return reporter


def _run_with_preemption_recovery(params, model_dir: str, mode: str):
  """`official.nlp.train`'s loop: a TPU preemption restarts from the last checkpoint.

  Its preemption watcher is `None` outside Google's internal build, so an OpError ends the
  run there as here; the loop is kept for parity.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  preemption_watcher = None
  while True:
    try:
      return _run(params, model_dir, mode)
    except tf.errors.OpError:
      if preemption_watcher and preemption_watcher.preemption_message:
        preemption_watcher.block_until_worker_exit()
        continue
      raise


def main(_):
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  from official.modeling import performance  # pylint: disable=g-import-not-at-top
  from official.nlp import continuous_finetune_lib  # pylint: disable=g-import-not-at-top

  experiment_config.parse_gin(FLAGS.gin_file, FLAGS.gin_params)
  params = experiment_config.parse_experiment(
      FLAGS.experiment, config_files=FLAGS.config_file, params_override=FLAGS.params_override,
      tpu=FLAGS.tpu, tf_data_service=FLAGS.tf_data_service)
  logging.debug('Experiment parameters: %s', params.as_dict())
  model_dir, mode = FLAGS.model_dir, FLAGS.mode
  run_dir.check_model_dir(model_dir, FLAGS.experiment, params)
  if 'train' in mode:
    # Pure eval modes write nothing here: a continuous eval job may run beside the trainer.
    run_dir.record_experiment(model_dir, FLAGS.experiment, cli_main.IMPORTED)
    train_utils.serialize_config(params, model_dir)
  reporter = None
  if mode == 'continuous_train_and_eval':
    continuous_finetune_lib.run_continuous_finetune(
        mode, params, model_dir, pretrain_steps=FLAGS.pretrain_steps)
  else:
    if params.runtime.mixed_precision_dtype:
      performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
    reporter = _run_with_preemption_recovery(params, model_dir, mode)
  train_utils.save_gin_config(mode, model_dir)
  if reporter:
    print(reporter.summary(FLAGS.experiment, cli_main.IMPORTED), flush=True)
