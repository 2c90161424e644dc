"""What `tfm train_experiment` adds to Model Garden's driver, without copying it.

`official.nlp.train.main` builds every run through `train_lib.run_experiment`, which asks
`actions.get_train_actions` / `get_eval_actions` for Orbit actions. Wrapping those three
module attributes is the one place to hook in:
- progress lines and the end summary (`progress.TrainingProgress` as train and eval action);
- summaries and the best checkpoint written by the chief only: stock `run_experiment` gives
  every worker of a multi-worker run the same TensorBoard folders and `best_ckpt/`, so each
  event and `info.json` is written once per worker. (Regular checkpoints are already
  chief-only: tf.train.CheckpointManager sends non-chief saves to a temporary folder.)
"""

import tempfile

import tensorflow as tf
from official.core import actions
from official.core import train_lib

from mrpc_task import progress


def _checkpoint_step(model_dir: str) -> int:
  """The step of the checkpoint Orbit will restore from model_dir (0 if none)."""
  latest = tf.train.latest_checkpoint(model_dir) if model_dir else None
  return int(latest.rsplit('-', 1)[1]) if latest else 0


def _train_actions_with_progress(base):
  def get_train_actions(params, trainer, model_dir, checkpoint_manager):
    reporter = progress.TrainingProgress(
        total_steps=params.trainer.train_steps,
        global_batch_size=params.task.train_data.global_batch_size,
        step_fn=lambda: int(trainer.global_step.numpy()), model_dir=model_dir,
        best_subdir=params.trainer.best_checkpoint_export_subdir,
        # The controller restores the checkpoint only after asking for its actions.
        start_step=_checkpoint_step(model_dir))
    progress.active.append(reporter)
    return base(params, trainer, model_dir,
                checkpoint_manager=checkpoint_manager) + [reporter.on_train]
  return get_train_actions


def _eval_actions_with_progress(base):
  def get_eval_actions(params, evaluator, model_dir):
    extra = [progress.active[-1].on_eval] if progress.active else []
    return base(params, evaluator, model_dir) + extra
  return get_eval_actions


def _summaries_on_chief_only(base):
  def run_experiment(*args, distribution_strategy, **kwargs):
    if 'save_summary' not in kwargs:
      kwargs['save_summary'] = distribution_strategy.extended.should_save_summary
    return base(*args, distribution_strategy=distribution_strategy, **kwargs)
  return run_experiment


def _best_checkpoint_on_chief_only(base):
  def maybe_create_best_ckpt_exporter(params, model_dir):
    # Called inside the strategy's scope. Non-chief workers still save (saving can be a
    # collective operation), but into a folder of their own.
    if not tf.distribute.get_strategy().extended.should_checkpoint:
      model_dir = tempfile.mkdtemp(prefix='best_ckpt_non_chief_')
    return base(params, model_dir)
  return maybe_create_best_ckpt_exporter


def install():
  """Applies the wrappers once per process (a second call does nothing)."""
  if getattr(train_lib.run_experiment, '_mrpc_task_hooks', False):
    return
  actions.get_train_actions = _train_actions_with_progress(actions.get_train_actions)
  actions.get_eval_actions = _eval_actions_with_progress(actions.get_eval_actions)
  train_lib.run_experiment = _summaries_on_chief_only(train_lib.run_experiment)
  train_lib.maybe_create_best_ckpt_exporter = _best_checkpoint_on_chief_only(
      train_lib.maybe_create_best_ckpt_exporter)
  train_lib.run_experiment._mrpc_task_hooks = True  # pylint: disable=protected-access
