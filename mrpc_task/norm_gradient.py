"""Layer normalization whose gradient is one XLA-fused kernel.

Left to autodiff, the gradient of Keras' `LayerNormalization` (moments, then
`tf.nn.batch_normalization`) is about twenty element-wise ops and reductions over the
[batch, length, hidden] activations: on a bfloat16 MiniLM training step on CPU, the
backward pass of the 11 layer norms took ~51 ms of ~504 ms of op time (bench/step_profile.py,
docs/PERFORMANCE.md). Here the forward pass is Keras' own ops, unchanged (the same values,
so losses, logits and exports are as before), and the backward pass is one XLA kernel that
computes the input, scale and offset gradients together, as the GELU's gradient in
`activations` is. Training compiles it once per distinct activation shape (one per length
bucket); inference never runs it. Two alternating pairs of steady MiniLM training runs
(docs/PERFORMANCE.md): 91.5 / 94.1 examples/s against 90.4 / 90.3 without.

Model Garden's encoders build their `tf_keras.layers.LayerNormalization` layers inside their
constructors; with `task.model.xla_training_kernels`, the task's `train_step` changes each
built instance's class to `XlaGradientLayerNorm` (`keras_private.recast_layer`), which adds
no state. A model built afresh for evaluation or export keeps Keras' own class.
"""

import tensorflow as tf
import tf_keras

from mrpc_task import keras_private

# From this epsilon up, Keras normalizes a last-axis float32 layer norm with
# `fused_batch_norm` instead of the moments computed here (`_fused_can_be_used`).
_KERAS_FUSED_FROM_EPSILON = 1.001e-5


@tf.function(jit_compile=True)
def _layer_norm_gradient(inputs, mean, inverse_std, gamma, upstream):
  """Gradients of gamma * (inputs - mean) * inverse_std + beta over the last axis, with
  mean and inverse_std functions of inputs: (d_inputs, d_gamma, d_beta)."""
  normalized = (inputs - mean) * inverse_std
  outer_axes = list(range(inputs.shape.rank - 1))
  d_gamma = tf.reduce_sum(upstream * normalized, axis=outer_axes)
  d_beta = tf.reduce_sum(upstream, axis=outer_axes)
  scaled = upstream * gamma
  d_inputs = inverse_std * (
      scaled - tf.reduce_mean(scaled, axis=-1, keepdims=True)
      - normalized * tf.reduce_mean(scaled * normalized, axis=-1, keepdims=True))
  return d_inputs, d_gamma, d_beta


def layer_norm(inputs: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: float,
               axis) -> tf.Tensor:
  """Keras' layer normalization of float32 `inputs` over their last axis (`axis`, as the
  layer holds it), differentiated by `_layer_norm_gradient`."""

  @tf.custom_gradient
  def forward(inputs, gamma, beta):
    mean, variance = tf.nn.moments(inputs, axis, keepdims=True)
    outputs = tf.nn.batch_normalization(inputs, mean, variance, offset=beta, scale=gamma,
                                        variance_epsilon=epsilon)

    def gradient(upstream):
      return _layer_norm_gradient(inputs, mean, tf.math.rsqrt(variance + epsilon), gamma,
                                  upstream)

    return outputs, gradient

  return forward(inputs, gamma, beta)


class XlaGradientLayerNorm(tf_keras.layers.LayerNormalization):
  """`LayerNormalization` over the last axis, in float32, with scale and offset (Model
  Garden's encoders): the same values, one fused gradient kernel. Any other form runs
  Keras' own `call`."""

  def call(self, inputs):
    rank = inputs.shape.rank
    if (rank is None or isinstance(inputs, tf.RaggedTensor)
        or list(self.axis) != [rank - 1] or not (self.center and self.scale)
        or self.compute_dtype != 'float32' or self.epsilon >= _KERAS_FUSED_FROM_EPSILON):
      return super().call(inputs)
    values = tf.cast(inputs, self.compute_dtype)
    outputs = layer_norm(values, self.gamma, self.beta, self.epsilon, self.axis)
    outputs.set_shape(values.shape)
    return outputs


def use_norm_gradient(model: tf_keras.layers.Layer) -> int:
  """Turns every plain Keras LayerNormalization inside `model` into an
  `XlaGradientLayerNorm`, in place; returns how many layers changed."""
  return keras_private.recast_layers(
      model, {tf_keras.layers.LayerNormalization: XlaGradientLayerNorm})
