"""The 16-bit dropout: Keras' semantics at its rate, seeded, and swapped into the encoder."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.core import task_factory
from official.nlp.configs import encoders

from mrpc_task import fast_dropout
from mrpc_task import modeling
from tests.conftest import tiny_encoder, tiny_experiment


def test_threshold_quantises_rate_to_sixteen_bits():
  """Rate 0.1 drops 16-bit values below 6554, i.e. with probability 6554/65536."""
  assert fast_dropout.keep_threshold(0.1) == 6554
  assert fast_dropout.keep_threshold(0.0) == 0
  assert fast_dropout.keep_threshold(0.5) == 32768


def test_random_uint16_spans_the_whole_range_uniformly():
  """Values lie in [0, 65536), each of 16 equal bins holds 1/16 of a million draws (5 sigma)."""
  values = fast_dropout.random_uint16(tf.constant([1000, 1001])).numpy()
  assert values.shape == (1000, 1001)
  assert values.min() >= 0 and values.max() < 65536
  counts = np.bincount(values.ravel() // 4096, minlength=16)
  expected = values.size / 16
  assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * 15 / 16)), counts


def test_dropout_drops_at_rate_and_scales_the_rest():
  """On a million ones: dropped share within 5 sigma of 6554/65536; kept values are 1/0.9."""
  rate = 0.1
  out = fast_dropout.dropout(tf.ones([1000, 1000]), rate).numpy()
  dropped = np.mean(out == 0)
  p = 6554 / 65536
  assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / out.size), dropped
  assert set(np.unique(out)) == {0.0, np.float32(1 / (1 - rate))}


def test_gradient_is_the_mask_times_the_scale():
  """d out / d x is exactly out / x: zero where dropped, 1/(1-rate) where kept."""
  x = tf.random.uniform([64, 64], 1.0, 2.0)
  with tf.GradientTape() as tape:
    tape.watch(x)
    out = fast_dropout.dropout(x, 0.3)
  grad = tape.gradient(out, x)
  np.testing.assert_allclose(grad.numpy(), (out / x).numpy(), rtol=1e-6)


def test_layer_is_identity_at_inference_and_seeded_in_training():
  """FastDropout returns its input unchanged at inference; a reseeded run draws the same mask."""
  layer = fast_dropout.FastDropout(0.2)
  x = tf.random.uniform([8, 16])
  np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())
  tf.random.set_seed(7)
  first = layer(x, training=True).numpy()
  tf.random.set_seed(7)
  again = layer(x, training=True).numpy()
  other = layer(x, training=True).numpy()
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)
  assert np.any(first == 0)


def _dropouts(model):
  return [layer for layer in model._flatten_layers()  # pylint: disable=protected-access
          if isinstance(layer, tf_keras.layers.Dropout)]


def test_swap_reaches_every_dropout_and_keeps_inference_logits():
  """Embedding, 4 per layer (attention probs, attention out, inner, output) and the head's 2
  (functional-graph nodes as well as attributes) all become FastDropout."""
  model = modeling.build_classifier(
      encoders.build_encoder(tiny_encoder(num_layers=2)), num_classes=2, pooling='pooler',
      dropout_rate=0.1, initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
  features = {'input_word_ids': tf.constant([[2, 5, 6, 3, 9, 3, 0, 0]]),
              'input_mask': tf.constant([[1, 1, 1, 1, 1, 1, 0, 0]]),
              'input_type_ids': tf.constant([[0, 0, 0, 0, 1, 1, 0, 0]])}
  before = model(features, training=False).numpy()
  assert fast_dropout.use_fast_dropout(model) == 1 + 4 * 2 + 2
  kinds = {type(layer) for layer in _dropouts(model)}
  assert kinds == {fast_dropout.FastDropout}
  np.testing.assert_array_equal(model(features, training=False).numpy(), before)


@pytest.mark.parametrize('fast', [False, True])
def test_task_config_switch_builds_and_trains(monkeypatch, fast):
  """task.model.fast_dropout converts the model's dropouts; a step with dropout 0.1 trains."""
  params = tiny_experiment(monkeypatch)
  params.task.model.fast_dropout = fast
  params.task.model.encoder.bert.dropout_rate = 0.1
  params.task.model.encoder.bert.attention_dropout_rate = 0.1
  task = task_factory.get_task(params.task)
  model = task.build_model()
  kinds = {type(layer) for layer in _dropouts(model)}
  assert kinds == ({fast_dropout.FastDropout} if fast else {tf_keras.layers.Dropout})
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  batch = next(iter(task.build_inputs(params.task.train_data)))
  logs = task.train_step(batch, model, optimizer, metrics=task.build_metrics())
  assert np.isfinite(float(logs['loss']))
