"""A few steps on the real MRPC files (MRPC_DATA_DIR): they read, pack and train."""

import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory

from mrpc_task import data


def test_real_mrpc_files_read_completely(mrpc_data_dir, monkeypatch):
  """All 3,668 training and 408 dev pairs are read; label shares match the data README."""
  monkeypatch.setenv('MRPC_DATA_DIR', mrpc_data_dir)
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  for split, total, positives in (('train_data', 3668, 2474), ('validation_data', 408, 279)):
    config = getattr(params.task, split).replace(is_training=False, drop_remainder=False,
                                                 global_batch_size=512)
    labels = tf.concat([label for _, label in data.build_dataset(config)], axis=0)
    assert int(tf.size(labels)) == total
    assert int(tf.reduce_sum(labels)) == positives


def test_real_mrpc_first_dev_pair_packs_to_known_ids(mrpc_data_dir, monkeypatch):
  """The first dev pair (1355540/1355592) starts with [CLS] he said the ..."""
  monkeypatch.setenv('MRPC_DATA_DIR', mrpc_data_dir)
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  config = params.task.validation_data.replace(global_batch_size=1)
  features, label = next(iter(data.build_dataset(config)))
  # bert-base-uncased ids: he=2002 said=2056 the=1996 food=2833 ##ser=8043 ##vic=7903 ...
  assert features['input_word_ids'][0, :4].numpy().tolist() == [101, 2002, 2056, 1996]
  assert int(label[0]) == 1


def test_training_on_real_mrpc_lowers_dev_loss(mrpc_data_dir, monkeypatch):
  """40 bucketed steps of the tiny encoder on real MRPC lower the dev loss."""
  monkeypatch.setenv('MRPC_DATA_DIR', mrpc_data_dir)
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  params.task.train_data.padding = 'bucketed'
  task = task_factory.get_task(params.task)
  model = task.build_model()
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  step = tf.function(lambda batch: task.train_step(batch, model, optimizer, None))
  dev = task.build_inputs(params.task.validation_data)

  def dev_loss():
    losses = [task.build_losses(labels, model(features)) * tf.cast(tf.size(labels), tf.float32)
              for features, labels in dev]
    return float(tf.add_n(losses)) / 408

  before = dev_loss()
  batches = iter(task.build_inputs(params.task.train_data))
  for _ in range(40):
    step(next(batches))
  after = dev_loss()
  assert after < before - 0.02, (before, after)
