"""The registered exact GELU: TensorFlow's forward values, and a fused gradient equal to autodiff."""

import numpy as np
import tensorflow as tf
import tf_keras
from official.modeling import tf_utils

from mrpc_task import activations
from mrpc_task import keras_private


def _value_and_gradient(fn, x):
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  return y.numpy(), tape.gradient(y, x, output_gradients=tf.ones_like(y) * 0.5).numpy()


def test_exact_gelu_matches_tensorflow_values_and_gradients():
  """From -10 to 10 (tails included), values are tf.nn.gelu's exactly and gradients agree to 1e-6."""
  x = tf.constant(np.linspace(-10.0, 10.0, 4000, dtype=np.float32).reshape(4, -1))
  value, gradient = _value_and_gradient(activations.exact_gelu, x)
  want_value, want_gradient = _value_and_gradient(
      lambda t: tf.nn.gelu(t, approximate=False), x)
  np.testing.assert_array_equal(value, want_value)
  np.testing.assert_allclose(gradient, want_gradient, rtol=1e-5, atol=1e-6)
  # Spot values: GELU'(0) = 0.5, GELU'(x) -> 1 for large x and -> 0 for very negative x.
  _, at = _value_and_gradient(activations.exact_gelu, tf.constant([0.0, 8.0, -8.0]))
  np.testing.assert_allclose(at, [0.25, 0.5, 0.0], atol=1e-6)


def test_exact_gelu_resolves_by_registered_name_inside_a_function():
  """`mrpc_task>exact_gelu` resolves through Model Garden and differentiates inside tf.function."""
  fn = tf_utils.get_activation(activations.EXACT_GELU)
  assert tf_keras.activations.deserialize(tf_keras.activations.serialize(fn)) is fn
  x = tf.constant([[-1.0, 0.5, 2.0]])

  @tf.function
  def gradient(t):
    with tf.GradientTape() as tape:
      tape.watch(t)
      y = tf.reduce_sum(fn(t))
    return tape.gradient(y, t)

  _, want = _value_and_gradient(lambda t: tf.nn.gelu(t, approximate=False) * 2.0, x)
  np.testing.assert_allclose(gradient(x).numpy(), want, rtol=1e-6)


def test_bfloat16_input_is_computed_in_float32_and_rounded_once():
  """A bfloat16 input gives float32 GELU rounded to bfloat16 (not four bfloat16 roundings),
  keeps its type, and its gradient stays the fused kernel's."""
  x32 = tf.constant(np.linspace(-6.0, 6.0, 2001, dtype=np.float32))
  x = tf.cast(x32, tf.bfloat16)
  value, gradient = _value_and_gradient(activations.exact_gelu, x)
  assert value.dtype == tf.bfloat16.as_numpy_dtype
  want = tf.cast(tf.nn.gelu(tf.cast(x, tf.float32), approximate=False), tf.bfloat16)
  np.testing.assert_array_equal(value, want.numpy())
  rounded_each_step = tf.nn.gelu(x, approximate=False).numpy()
  assert (value != rounded_each_step).any()  # The two really differ in bfloat16.
  fused = activations._gelu_gradient(x, tf.ones_like(x) * 0.5)  # pylint: disable=protected-access
  np.testing.assert_array_equal(gradient, fused.numpy())



def _compiled_calls(fn, x):
  """The XLA-compiled calls in the graph of `fn` traced on `x`."""
  graph = tf.function(fn).get_concrete_function(x).graph
  return [op for op in graph.get_operations()
          if '_XlaMustCompile' in op.node_def.attr and op.get_attr('_XlaMustCompile')]


def test_a_training_step_computes_the_gelu_in_one_compiled_kernel():
  """Inside `training_kernels` the GELU is traced as one XLA call (outside it, plain ops only):
  on every finite bfloat16 input it gives exactly the plain values; in float32 it agrees to
  a few units in the last place (XLA's erfc is its own polynomial)."""
  bits = np.arange(1 << 16, dtype=np.uint32) << 16
  every_bfloat16 = bits.view(np.float32)
  every_bfloat16 = tf.cast(every_bfloat16[np.isfinite(every_bfloat16)], tf.bfloat16)
  float32 = tf.constant(np.linspace(-12.0, 12.0, 100001, dtype=np.float32))
  for x in (every_bfloat16, float32):
    assert not _compiled_calls(activations.exact_gelu, x)
    with activations.training_kernels():
      assert _compiled_calls(activations.exact_gelu, x)
      compiled = activations.exact_gelu(x).numpy().astype(np.float32)
    assert not _compiled_calls(activations.exact_gelu, x)  # The context ends with its block.
    plain = activations.exact_gelu(x).numpy().astype(np.float32)
    if x.dtype == tf.bfloat16:
      np.testing.assert_array_equal(compiled, plain)
    else:
      np.testing.assert_allclose(compiled, plain, rtol=1e-5, atol=1e-30)
      assert (compiled != plain).any()  # Really compiled: not TensorFlow's own kernel.


def _every_finite_bfloat16():
  bits = np.arange(1 << 16, dtype=np.uint32) << 16
  values = bits.view(np.float32)
  return tf.cast(values[np.isfinite(values)], tf.bfloat16)


def _training_trace(layer, x, upstream):
  """(bfloat16 output, input gradient, the trace's Cast ops) of a float32 Activation layer
  followed by the cast a bfloat16 layer makes of its input, traced in a training step."""

  @tf.function
  def step(x, upstream):
    with activations.training_kernels():
      with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.cast(layer(x), tf.bfloat16)
      return y, tape.gradient(y, x, output_gradients=upstream)

  graph = step.get_concrete_function(x, upstream).graph
  y, gradient = step(x, upstream)
  return (y.numpy().view(np.uint16), gradient.numpy().view(np.uint16),
          [op.name for op in graph.get_operations() if op.type == 'Cast'])


def test_rounding_activation_moves_the_casts_into_the_kernels_bit_for_bit():
  """A float32 Activation of the GELU turned into RoundingGeluActivation (Model Garden's
  feed-forward activation under mixed bfloat16, in a training step): on every finite
  bfloat16 input, its output and its input gradient are bit for bit those of the Keras layer
  and the next layer's cast, and its trace has no Cast op left; outside a training step it is
  the Keras layer, float32 output and all."""
  x = _every_finite_bfloat16()
  upstream = tf.cast(np.random.default_rng(0).normal(size=x.shape), tf.bfloat16)
  keras_layer, ours = (tf_keras.layers.Activation(activations.exact_gelu, dtype='float32')
                       for _ in range(2))
  assert keras_private.recast_layers(
      ours, {tf_keras.layers.Activation: activations.RoundingGeluActivation}) == 1
  want_y, want_gradient, keras_casts = _training_trace(keras_layer, x, upstream)
  y, gradient, casts = _training_trace(ours, x, upstream)
  assert len(keras_casts) == 4 and not casts  # In and out, forward and backward.
  np.testing.assert_array_equal(y, want_y)
  np.testing.assert_array_equal(gradient, want_gradient)
  assert ours(x).dtype == tf.float32
  np.testing.assert_array_equal(ours(x).numpy(), keras_layer(x).numpy())


def test_only_a_blocks_float32_activation_before_a_16_bit_layer_is_recast():
  """`use_rounding_gelu` changes a built Model Garden block's activation under mixed bfloat16
  (its output goes to the block's bfloat16 inner dropout), once; under float32 it changes
  nothing, and an unbuilt block or an `Activation` outside a block is left alone."""
  from official.nlp.modeling import layers as nlp_layers  # pylint: disable=g-import-not-at-top

  def block():
    built = nlp_layers.TransformerEncoderBlock(
        num_attention_heads=2, inner_dim=16, inner_activation=activations.exact_gelu)
    built(tf.zeros([1, 3, 8]))
    return built

  assert activations.use_rounding_gelu(block()) == 0
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    mixed = block()
    outside = tf_keras.layers.Activation(activations.exact_gelu, dtype='float32')
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  unbuilt = nlp_layers.TransformerEncoderBlock(2, 16, activations.exact_gelu)
  assert activations.use_rounding_gelu(unbuilt) == 0  # No sublayers yet.
  assert activations.use_rounding_gelu(mixed) == 1
  assert activations.use_rounding_gelu(mixed) == 0
  assert activations.use_rounding_gelu(outside) == 0
