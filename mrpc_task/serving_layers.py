"""An export's layers, rewritten in the forms oneDNN runs fastest, computing the same values.

TensorFlow's graph rewrite for oneDNN (grappler's remapper) fuses a 2-D `MatMul` + `BiasAdd`
(+ GELU) into one `_MklNativeFusedMatMul`, which adds the bias and applies the GELU to the
float32 accumulator before rounding once; it fuses no `einsum`, and Model Garden and Keras
write their dense layers as `einsum`, a bias `AddV2` and (in the feed-forward layer) a
separate activation that casts bfloat16 to float32 and back. And once an export's weights are
constants (`export.TextServingModule(freeze_weights=True)`), the remapper turns Keras' layer
norm into `_MklLayerNorm`, which takes 4-6 times as long on one pair as nine plain ops.
So, for exports only (`export.export_model` calls `use_serving_layers`):

- `ServingEncoderBlock`: Model Garden's post-norm `TransformerEncoderBlock`, with its own
  sublayers and weights, running the feed-forward layers as `MatMul` + `BiasAdd` + GELU;
- `MatMulEinsumDense`: a Keras `EinsumDense` whose equation is a matrix multiply (attention's
  query, key, value and output projections) as `MatMul` + `BiasAdd`;
- `ServingLayerNorm`: Keras' `LayerNormalization` over the last axis, written as
  (x - mean) * (rsqrt(var + eps) * gamma) + beta.

Measured on one MRPC pair and on batches of 64 in docs/PERFORMANCE.md. Like `fast_dropout`,
each changes the class of built layer instances (`keras_private.recast_layer`): variables,
their names and checkpoints are untouched. Layers in forms these do not cover run their own
`call`.
"""

from typing import Any, Optional

import tensorflow as tf
import tf_keras
from official.nlp.modeling import layers as nlp_layers

from mrpc_task import activations
from mrpc_task import keras_private

_Block = nlp_layers.TransformerEncoderBlock


class ServingEncoderBlock(_Block):
  """`TransformerEncoderBlock` (post-norm) with feed-forward layers oneDNN fuses."""

  def call(self, inputs: Any, output_range: Optional[tf.Tensor] = None) -> Any:
    if not (isinstance(inputs, (list, tuple)) and len(inputs) == 2
            and keras_private.block_is_post_norm_self_attention(self)):
      return super().call(inputs, output_range=output_range)
    input_tensor, attention_mask = inputs
    if output_range is None:
      output_range = keras_private.block_output_range(self)
    target_tensor = input_tensor
    if output_range:
      target_tensor = input_tensor[:, 0:output_range, :]
      if attention_mask is not None:
        attention_mask = attention_mask[:, 0:output_range, :]
    parts = keras_private.block_parts(self)
    attention_output = parts.attention(query=target_tensor, key=input_tensor,
                                       value=input_tensor, attention_mask=attention_mask)
    attention_output = parts.attention_dropout(attention_output)
    attention_output = parts.attention_norm(target_tensor + attention_output)
    layer_output = parts.output_dropout(_feed_forward(attention_output, parts))
    # As Model Garden's block: the layer norm's float32 input under mixed precision.
    layer_output = tf.cast(layer_output, tf.float32)
    return parts.output_norm(layer_output + attention_output)


def _feed_forward(inputs: tf.Tensor, parts: keras_private.BlockParts) -> tf.Tensor:
  """Both dense layers and the activation, on the rows of `inputs` as one 2-D matrix."""
  dtype = parts.intermediate.compute_dtype
  width = inputs.shape[-1]
  rows = tf.reshape(tf.cast(inputs, dtype), [-1, width])
  inner = _dense(rows, parts.intermediate, dtype)
  if parts.activation.activation is activations.exact_gelu:  # Keras resolved the name.
    inner = tf.nn.gelu(inner, approximate=False)  # Fused into the multiply above.
  else:
    inner = parts.activation(inner)
  inner = parts.inner_dropout(inner)
  outputs = _dense(tf.cast(inner, dtype), parts.output, dtype)
  return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [width]], axis=0))


def _dense(rows: tf.Tensor, layer: tf_keras.layers.EinsumDense, dtype) -> tf.Tensor:
  """`layer` (kernel [in, out], bias [out]) on a [rows, in] matrix as MatMul + BiasAdd."""
  return tf.nn.bias_add(tf.matmul(rows, tf.cast(layer.kernel, dtype)),
                        tf.cast(layer.bias, dtype))


def contracted_axes(equation: str) -> Optional[int]:
  """How many leading kernel axes `equation` sums over, if it is a matrix multiply in
  disguise: the input's trailing axes times the kernel's leading ones, the output being the
  input's other axes, then the kernel's other axes ('abc,cde->abde': 1; 'abcd,cde->abe': 2).
  None for any other equation."""
  operands, arrow, output = equation.partition('->')
  inputs, comma, kernel = operands.partition(',')
  if not (arrow and comma) or '.' in equation or len(set(inputs)) != len(inputs) or len(
      set(kernel)) != len(kernel):
    return None
  for count in range(1, min(len(inputs), len(kernel)) + 1):
    if (inputs.endswith(kernel[:count]) and output == inputs[:-count] + kernel[count:]
        and not set(inputs[:-count]) & set(kernel[count:])):
      return count
  return None


class MatMulEinsumDense(tf_keras.layers.EinsumDense):
  """`EinsumDense` as one 2-D `MatMul` + `BiasAdd` where its equation is a matrix multiply
  (`contracted_axes`) and its bias covers every output axis of the kernel; its own `call`
  otherwise."""

  def call(self, inputs):
    contracted = contracted_axes(self.equation)
    kernel_shape = self.kernel.shape
    if (contracted is None or inputs.shape.rank is None
        or (self.bias is not None and self.bias.shape != kernel_shape[contracted:])):
      return super().call(inputs)
    inner = kernel_shape[:contracted].num_elements()
    outer = kernel_shape[contracted:]
    outputs = tf.matmul(tf.reshape(inputs, [-1, inner]),
                        tf.reshape(self.kernel, [inner, outer.num_elements()]))
    if self.bias is not None:
      outputs = tf.nn.bias_add(outputs, tf.reshape(self.bias, [-1]))
    outputs = tf.reshape(outputs, tf.concat(
        [tf.shape(inputs)[:inputs.shape.rank - contracted], outer.as_list()], axis=0))
    return self.activation(outputs) if self.activation is not None else outputs


class ServingLayerNorm(tf_keras.layers.LayerNormalization):
  """`LayerNormalization` over the last axis, with scale and offset, as nine plain ops
  (16-bit inputs computed in float32, as Keras does); its own `call` otherwise."""

  def call(self, inputs):
    rank = inputs.shape.rank
    if rank is None or list(self.axis) not in ([rank - 1], [-1]) or not (
        self.center and self.scale):
      return super().call(inputs)
    values = tf.cast(inputs, tf.float32) if inputs.dtype in (tf.float16, tf.bfloat16) else inputs
    centered = values - tf.reduce_mean(values, axis=-1, keepdims=True)
    variance = tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True)
    scale = tf.math.rsqrt(variance + self.epsilon) * tf.cast(self.gamma, values.dtype)
    outputs = centered * scale + tf.cast(self.beta, values.dtype)
    return tf.cast(outputs, inputs.dtype)


_SERVING_CLASSES = {
    _Block: ServingEncoderBlock,
    tf_keras.layers.EinsumDense: MatMulEinsumDense,
    tf_keras.layers.LayerNormalization: ServingLayerNorm,
}


def use_serving_layers(model: tf_keras.layers.Layer) -> int:
  """Makes each Model Garden `TransformerEncoderBlock`, Keras `EinsumDense` and Keras
  `LayerNormalization` inside `model` (those exact classes) its serving form, in place;
  returns how many layers changed."""
  return keras_private.recast_layers(model, _SERVING_CLASSES)
