"""Scores of one checkpoint on named data: dev, the selection split, or all of train.

The trainer evaluates on `validation_data` only; recipe selection needs the same weights
scored on the selection split and on dev (mrpc_task/selection.py), with the task's own
metrics (accuracy, F1 of the positive class, loss).
"""

from typing import Dict

import tensorflow as tf

from mrpc_task import configs

DATA_NAMES = ('dev', 'selection', 'train')


def named_data(task: configs.SentencePairTaskConfig, name: str
              ) -> configs.SentencePairDataConfig:
  """The evaluation config reading `name` from the task's data source.

  'dev' is the source's dev split (TSV dev.tsv, TFDS `validation`), 'selection' the
  selection split of the training split, 'train' all of the training split.

  Raises:
    configs.ConfigError: an unknown name, or a tfrecord source (its files name no split).
  """
  if name not in DATA_NAMES:
    raise configs.ConfigError(f'--data={name}: must be one of {DATA_NAMES}')
  train = task.train_data
  if train.source == 'tfrecord':
    raise configs.ConfigError(
        f'--data={name}: task.train_data.source=tfrecord names files, not splits; evaluate '
        'with tfm train_experiment --mode=eval and task.validation_data.input_path instead')
  dev = name == 'dev'
  return task.validation_data.replace(
      source=train.source, tsv_dir=train.tsv_dir, tfds_name=train.tfds_name,
      tfds_data_dir=train.tfds_data_dir,
      tsv_split='dev' if dev else train.tsv_split,
      tfds_split='validation' if dev else train.tfds_split,
      selection_split='only' if name == 'selection' else '',
      selection_fraction=train.selection_fraction)


def evaluate(task, model, data_config: configs.SentencePairDataConfig) -> Dict[str, float]:
  """The task's evaluation metrics of `model` over the whole of `data_config`."""
  metrics = task.build_metrics(training=False)

  @tf.function(reduce_retracing=True)
  def step(features, labels):
    logits = model(features, training=False)
    for metric in metrics:
      metric.update_state(labels, logits)

  for features, labels in task.build_inputs(data_config):
    step(features, labels)
  return {metric.name: float(metric.result()) for metric in metrics}
