"""Scores of one checkpoint on named data: dev, the selection split, or all of train.

The trainer evaluates on `validation_data` only; recipe selection needs the same weights
scored on the selection split and on dev (mrpc_task/selection.py), with the task's own
metrics (accuracy, F1 of the positive class, loss).
"""

from typing import Dict, Sequence

import tensorflow as tf

from mrpc_task import configs
from mrpc_task import data

DATA_NAMES = ('dev', 'selection', 'train')
_TINY = 1.1754944e-38  # The smallest normal float32: log() of it is finite.


def named_data(task: configs.SentencePairTaskConfig, name: str
              ) -> configs.SentencePairDataConfig:
  """The evaluation config reading `name` from the task's data source.

  'dev' is the source's dev split (TSV dev.tsv, TFDS `validation`), 'selection' the
  selection split of the training split (only for runs that trained without it), 'train'
  all of the training split.

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
  if name == 'selection' and train.selection_split != 'exclude':
    raise configs.ConfigError(
        '--data=selection: this run trained on its selection split '
        f"(task.train_data.selection_split={train.selection_split!r}, not 'exclude'), so "
        'scores there would be on training pairs; train with '
        'registry/templates/selection.yaml (tfm sweep does) to score it')
  dev = name == 'dev'
  return task.validation_data.replace(
      source=train.source, tsv_dir=train.tsv_dir, tfds_name=train.tfds_name,
      tfds_data_dir=train.tfds_data_dir,
      tsv_split='dev' if dev else train.tsv_split,
      tfds_split='validation' if dev else train.tfds_split,
      selection_split='only' if name == 'selection' else '',
      selection_fraction=train.selection_fraction)


def evaluate(task, model, data_config: configs.SentencePairDataConfig, *,
             members: Sequence = (), average_orders: bool = False) -> Dict[str, float]:
  """The task's evaluation metrics of `model` over the whole of `data_config`.

  With `members` and/or `average_orders`, the scored logits are the log of the mean
  probability over the models and both sentence orders, as the export serves them.
  """
  models = [model] + list(members)
  metrics = task.build_metrics(training=False)

  @tf.function(reduce_retracing=True)
  def probabilities(features):
    return tf.add_n([tf.nn.softmax(tf.cast(m(features, training=False), tf.float32))
                     for m in models])

  @tf.function(reduce_retracing=True)
  def update(labels, logits):
    for metric in metrics:
      metric.update_state(labels, logits)

  datasets = [task.build_inputs(data_config)]
  if average_orders:
    datasets.append(data.build_dataset(data_config, swap_sentences=True))
  for batches in zip(*datasets):
    labels = batches[0][1]
    if len(batches) == 1 and len(models) == 1:
      update(labels, model(batches[0][0], training=False))
      continue
    for _, other_labels in batches[1:]:
      tf.debugging.assert_equal(other_labels, labels)  # Both orders batch alike.
    total = tf.add_n([probabilities(features) for features, _ in batches])
    mean = total / (len(models) * len(batches))
    update(labels, tf.math.log(tf.maximum(mean, _TINY)))  # Never log(0).
  return {metric.name: float(metric.result()) for metric in metrics}
