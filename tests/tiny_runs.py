"""A registered experiment shrunk to a tiny encoder and run in this process for a few steps:
read, train, evaluate, export and predict, as the commands do, in seconds."""

import os
from typing import Dict, Tuple

from official.core import exp_factory
from official.modeling import hyperparams

from mrpc_task import training
from registry import experiments


def tiny_params(experiment: str, tsv_dir: str, *, steps: int = 2, seq_length: int = 32,
                batch: int = 8):
  """`experiment` with the tiny template (random 2-layer encoder, hidden 32, its own vocab
  kept), reading `tsv_dir`, float32, batches padded to seq_length, `steps` steps with an
  evaluation and checkpoint at the end."""
  params = exp_factory.get_exp_config(experiment)
  params = hyperparams.override_params_dict(params, experiments.template_path('tiny'),
                                            is_strict=True)
  data = {'source': 'tsv', 'tsv_dir': tsv_dir, 'seq_length': seq_length,
          'global_batch_size': batch, 'padding': 'static'}  # One shape: one trace.
  params.override({
      'runtime': {'mixed_precision_dtype': ''},
      'task': {'train_data': data, 'validation_data': data},
      # Steps in a Python loop: tracing Orbit's tf.while_loop costs more than 2 steps save.
      'trainer': {'train_steps': steps, 'validation_interval': steps, 'train_tf_while_loop': False,
                  'checkpoint_interval': steps, 'steps_per_loop': steps,
                  'summary_interval': steps,
                  'optimizer_config': {'learning_rate': {'polynomial': {'decay_steps': steps}},
                                       'warmup': {'linear': {'warmup_steps': 0}}}},
  }, is_strict=True)
  params.validate()
  return params


def train(params, model_dir: str) -> Dict[str, float]:
  """Trains and evaluates through `mrpc_task.training` (the code `tfm train_experiment`
  runs); returns every score of the last evaluation."""
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  os.makedirs(model_dir, exist_ok=True)
  train_utils.serialize_config(params, model_dir)
  reporter = training.run(params, model_dir, 'train_and_eval',
                          enable_async_checkpointing=False)
  return reporter.last_scores


def export(params, model_dir: str, export_dir: str) -> Tuple[object, str]:
  """The run's final checkpoint exported as `tfm export --pick=final` does."""
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import export as export_lib  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  task = task_factory.get_task(params.task)
  checkpoint = tf.train.latest_checkpoint(model_dir)
  export_lib.export_model(params.task, task.build_model(), export_dir, checkpoint)
  return task, checkpoint
