"""The layer norm of training: Keras' values exactly, and one fused kernel for its gradient."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from mrpc_task import norm_gradient


def _pair(shape, **options):
  """A Keras layer norm and a copy turned into `XlaGradientLayerNorm`, same random weights."""
  keras_norm = tf_keras.layers.LayerNormalization(dtype=tf.float32, **options)
  ours = tf_keras.layers.LayerNormalization(dtype=tf.float32, **options)
  assert norm_gradient.use_norm_gradient(ours) == 1
  assert norm_gradient.use_norm_gradient(ours) == 0  # Already changed: nothing to do.
  rng = np.random.default_rng(0)
  for layer in (keras_norm, ours):
    layer.build(shape)
  for variable in keras_norm.weights:
    variable.assign(rng.normal(size=variable.shape))
  ours.set_weights(keras_norm.get_weights())
  return keras_norm, ours


def _values_and_gradients(layer, x, upstream):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = layer(x)
  return [y.numpy()] + [g.numpy() for g in tape.gradient(
      y, [x, *layer.trainable_weights], output_gradients=upstream)]


@pytest.mark.parametrize('dtype', [tf.float32, tf.bfloat16])
def test_same_values_as_keras_and_gradients_within_rounding(dtype):
  """Forward values equal Keras' bit for bit (float32 or a 16-bit input); the input, scale and
  offset gradients agree with autodiff's to float32 rounding."""
  keras_norm, ours = _pair([4, 7, 8], epsilon=1e-12)
  rng = np.random.default_rng(1)
  x = tf.cast(tf.constant(rng.normal(3.0, 2.0, size=[4, 7, 8]), tf.float32), dtype)
  upstream = tf.constant(rng.normal(size=[4, 7, 8]), tf.float32)
  want = _values_and_gradients(keras_norm, x, upstream)
  got = _values_and_gradients(ours, x, upstream)
  np.testing.assert_array_equal(got[0], want[0])
  assert got[1].dtype == want[1].dtype == dtype.as_numpy_dtype
  for name, g, w in zip(('input', 'gamma', 'beta'), got[1:], want[1:]):
    np.testing.assert_allclose(np.float32(g), np.float32(w), rtol=1e-4, atol=1e-4, err_msg=name)


def test_other_forms_run_keras_own_call():
  """An epsilon Keras fuses at, or a norm over another axis, is Keras' computation exactly."""
  x = tf.constant(np.random.default_rng(2).normal(size=[3, 8, 8]), tf.float32)
  for options in ({'epsilon': 1e-3}, {'axis': 1}):
    keras_norm, ours = _pair(x.shape, **options)
    np.testing.assert_array_equal(ours(x).numpy(), keras_norm(x).numpy())
