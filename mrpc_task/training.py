"""Training an experiment as Model Garden's `official.nlp.train` does, with what tfm adds.

Model Garden's trainer driven through `train_lib.OrbitExperimentRunner`'s public parameters
(what `train_lib.run_experiment` builds), adding:
- progress lines and an end summary (`progress.TrainingProgress` as train and eval action);
- summaries and the best checkpoint written by the chief only (stock Model Garden has every
  worker of a multi-worker run write the same event files and `best_ckpt/`);
- a best checkpoint that an undefined metric (NaN) never selects;
- no FLOP count at the end (see `runner_class`).
`official.nlp.train`'s TPU preemption retry is left out: its preemption watcher is None
outside Google's own build, so the retry never runs there either.
"""

import contextlib
import math
import os
import shutil
import tempfile
from typing import Optional, Sequence

from absl import logging

from mrpc_task import cpu_features
from mrpc_task import progress


def best_checkpoint_exporter(params, model_dir: str, strategy,
                             scratch_dir: Optional[str] = None):
  """Model Garden's best-checkpoint exporter, NaN-proof and written by the chief only
  (a worker that is not the chief writes into `scratch_dir`, which it must be given)."""
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
    if not scratch_dir:
      raise ValueError('a worker that is not the chief needs a scratch_dir to save into')
    export_dir = f'{scratch_dir}/{subdir}'
  return DefinedMetricExporter(export_dir, metric, params.trainer.best_checkpoint_metric_comp)


def runner_class():
  """Model Garden's experiment runner without the FLOP count that ends its `run()`.

  `train_utils.try_count_flops` freezes every weight into a constant graph and runs the v1
  profiler over it after training: for MiniLM that took 5 s and raised the process's resident
  memory from 2.5 GiB to its peak of 3.4 GiB (bench/memory_profile.py, docs/PERFORMANCE.md),
  to log a number that is wrong for BERT models anyway (their sequence length is free, so it
  counts a graph of unknown length: "0.000148 Billions"). The modes tfm runs are driven as the
  base class drives them; any other mode is left to it.
  """
  from official.core import train_lib  # pylint: disable=g-import-not-at-top
  from official.core import train_utils  # pylint: disable=g-import-not-at-top

  class Runner(train_lib.OrbitExperimentRunner):
    """`OrbitExperimentRunner` whose train / eval modes end without counting FLOPs."""

    def __init__(self, *, mode: str, **kwargs):
      super().__init__(mode=mode, **kwargs)
      self.run_mode = mode

    def run(self):
      trainer_params = self.params.trainer
      with self.strategy.scope():
        if self.run_mode == 'train':
          self.controller.train(steps=trainer_params.train_steps)
        elif self.run_mode == 'train_and_eval':
          self.controller.train_and_evaluate(
              train_steps=trainer_params.train_steps,
              eval_steps=trainer_params.validation_steps,
              eval_interval=trainer_params.validation_interval)
        elif self.run_mode == 'eval':
          self.controller.evaluate(steps=trainer_params.validation_steps)
        else:
          return super().run()
      logging.info('Number of trainable params in model: %f Millions.',
                   (train_utils.try_count_params(self.trainer.model) or 0) / 10.**6)
      return self.trainer.model, {}

  return Runner


def _worker_scratch_dir(strategy, cleanup: contextlib.ExitStack) -> Optional[str]:
  """A folder, deleted when `cleanup` closes, for what a worker that is not the chief must
  save but nobody reads (its best checkpoints); None on the chief."""
  if strategy.extended.should_checkpoint:
    return None
  # A failure to delete it must not hide the error that ended the run.
  return cleanup.enter_context(
      tempfile.TemporaryDirectory(prefix='tfm_worker_', ignore_cleanup_errors=True))


def _delete_at_exit(cleanup: contextlib.ExitStack, manager, model_dir: str):
  """Deletes, when `cleanup` closes, the temporary folder in which Model Garden's runner has
  a worker that is not the chief save its checkpoints (`train_lib`'s `tempfile.mkdtemp()`,
  which nobody deletes); never the model folder. `manager` is that runner's
  CheckpointManager."""
  if os.path.realpath(manager.directory) == os.path.realpath(model_dir):
    return

  def delete():
    try:
      # Orbit waits for a background save only when training returns; after an error one may
      # still be writing into the folder.
      manager.sync()
    except Exception as error:  # pylint: disable=broad-except
      logging.warning('a background save into %s failed: %s', manager.directory, error)
    shutil.rmtree(manager.directory, ignore_errors=True)

  cleanup.callback(delete)


def run(params, model_dir: str, mode: str, *, enable_async_checkpointing: bool = True
        ) -> Optional[progress.TrainingProgress]:
  """Trains and/or evaluates (`mode`, as Model Garden's) the experiment `params` in model_dir.

  Returns:
    The progress reporter of a training mode (its `summary()` says what the run gave), or
    None.
  """
  from official.common import distribute_utils  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  from mrpc_task import configs  # pylint: disable=g-import-not-at-top
  from mrpc_task import runs  # pylint: disable=g-import-not-at-top

  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu,
      **params.runtime.model_parallelism())
  with contextlib.ExitStack() as cleanup:
    scratch_dir = _worker_scratch_dir(strategy, cleanup)
    with strategy.scope():
      task = task_factory.get_task(params.task, logging_dir=model_dir)
      trainer = train_utils.create_trainer(
          params, task, train='train' in mode, evaluate='eval' in mode,
          checkpoint_exporter=best_checkpoint_exporter(params, model_dir, strategy,
                                                       scratch_dir))
    reporter = None
    if 'train' in mode:
      task_config = params.task
      reporter = progress.TrainingProgress(
          total_steps=params.trainer.train_steps,
          global_batch_size=task_config.train_data.global_batch_size,
          step_fn=lambda: int(trainer.global_step.numpy()), model_dir=model_dir,
          best_subdir=params.trainer.best_checkpoint_export_subdir,
          splits=task_config.eval_splits if isinstance(task_config, configs.TextTaskConfig)
          else ['dev'],
          metrics=list(getattr(task_config, 'metrics', ('accuracy', 'f1'))),
          best_metric=params.trainer.best_checkpoint_eval_metric,
          # Orbit restores the checkpoint after the actions are made: read its step now.
          start_step=runs.checkpoint_step(model_dir))
    runner = runner_class()(
        distribution_strategy=strategy, task=task, mode=mode, params=params,
        model_dir=model_dir, trainer=trainer,
        save_summary=strategy.extended.should_save_summary,
        train_actions=[reporter.on_train] if reporter else None,
        eval_actions=[reporter.on_eval] if reporter else None,
        enable_async_checkpointing=enable_async_checkpointing)
    if scratch_dir and runner.checkpoint_manager:
      _delete_at_exit(cleanup, runner.checkpoint_manager, model_dir)
    runner.run()
  return reporter


def warn_if_bfloat16_is_emulated(runtime):
  """A warning when `runtime` (a RuntimeConfig) trains in bfloat16 on a CPU without it."""
  if cpu_features.bfloat16_is_emulated(runtime, cpu_features.has_fast_bfloat16()):
    logging.warning(
        'runtime.mixed_precision_dtype is bfloat16, but this CPU has neither AVX512_BF16 nor '
        'AMX: TensorFlow emulates bfloat16 here, many times slower than float32 '
        "(--params_override=runtime.mixed_precision_dtype='' trains in float32)")


def train_experiment(experiment: str, model_dir: str, mode: str, *,
                     config_files: Sequence[str] = (), params_override: Optional[str] = None,
                     tpu: Optional[str] = None, tf_data_service: Optional[str] = None,
                     gin_files: Sequence[str] = (), gin_params: Sequence[str] = (),
                     pretrain_steps: Optional[int] = None,
                     enable_async_checkpointing: bool = True, imports: Sequence[str] = (),
                     known: Sequence[str] = (), model_dir_label: str = 'model_dir'
                     ) -> Optional[progress.TrainingProgress]:
  """What `official.nlp.train`'s main does, given its flags' values: gin, the config, the
  model folder's checks and records, then `run` (or Model Garden's continuous fine-tuning).

  A model folder holding another experiment's run is refused before anything is written, and
  so is `eval` of a text task's folder without a checkpoint: Model Garden would score its
  initial weights (the task restores the encoder only, so an untrained head) and keep them
  as the best checkpoint. Other tasks (`--import`) may restore a whole model at start. Pure
  evaluation modes record no params.yaml or run there (a continuous evaluation may run
  beside the trainer).

  Returns:
    See `run`.
  """
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  from official.modeling import performance  # pylint: disable=g-import-not-at-top
  from official.nlp import continuous_finetune_lib  # pylint: disable=g-import-not-at-top
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  from mrpc_task import configs  # pylint: disable=g-import-not-at-top
  from mrpc_task import runs  # pylint: disable=g-import-not-at-top

  experiment_config.parse_gin(gin_files, gin_params)
  params = experiment_config.parse_experiment(
      experiment, config_files=config_files, params_override=params_override, tpu=tpu,
      tf_data_service=tf_data_service, known=known)
  logging.debug('Experiment parameters: %s', params.as_dict())
  runs.check_model_dir(model_dir, experiment, params, label=model_dir_label)
  if mode == 'eval' and isinstance(params.task, configs.TextTaskConfig):
    runs.check_has_checkpoint(model_dir, label=model_dir_label)
  if 'train' in mode:
    runs.warn_of_another_compute_type(model_dir, params, label=model_dir_label)
    runs.record_experiment(model_dir, experiment, imports)
    train_utils.serialize_config(params, model_dir)
  reporter = None
  if mode == 'continuous_train_and_eval':
    continuous_finetune_lib.run_continuous_finetune(
        mode, params, model_dir, pretrain_steps=pretrain_steps)
  else:
    if params.runtime.mixed_precision_dtype:
      warn_if_bfloat16_is_emulated(params.runtime)
      performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
    reporter = run(params, model_dir, mode, enable_async_checkpointing=enable_async_checkpointing)
  train_utils.save_gin_config(mode, model_dir)
  return reporter
