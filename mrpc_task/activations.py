"""Exact (erf) GELU, selectable by name from an `EncoderConfig`.

Model Garden maps `hidden_activation: gelu` to the tanh approximation, while Hugging Face
BERT (and so every checkpoint converted from it) uses the exact erf form; the two differ by about
3e-3 at the encoder output of MiniLM (tests/test_checkpoint_conversion.py). Registering the exact form as a Keras object lets a config say
`hidden_activation: mrpc_task>exact_gelu` and have `tf_utils.get_activation` resolve it, in
training and in exported SavedModels alike.

The forward pass is TensorFlow's own `tf.nn.gelu`, computed in float32 for a bfloat16 or
float16 input and rounded once (TensorFlow's CPU Erfc is slow in bfloat16: 1.9 ms of a 12 ms
one-pair bfloat16 MiniLM forward on the Xeon, 0.65 ms in float32; training speed and dev
scores unchanged, docs/PERFORMANCE.md). Its gradient, left to autodiff, is seven
element-wise passes over the [batch, length, intermediate] activations (erfc, exp, squares,
products), ~5% of a bfloat16 MiniLM training step on CPU; here it is one XLA-fused kernel.
With `task.model.xla_training_kernels`, the task's `train_step` traces the forward pass as
one XLA kernel too (`training_kernels`), instead of TensorFlow's five element-wise ops (its
Erfc alone took 13 ms of op time per MiniLM step): the same values on bfloat16 inputs (what
Model Garden's blocks give it in training steps, below), and within a few units in the last
place on float32 ones (XLA's erfc is its own polynomial).
Model Garden's blocks give the GELU its own float32 `Activation` layer under mixed bfloat16,
so Keras casts its bfloat16 input to float32 and the next layer casts the output back, four
passes over the activations (forward and backward) that took 21 ms of 429 ms of op time per
step (bench/step_profile.py); in training steps `RoundingGeluActivation` hands the bfloat16
input to the kernels, which cast inside, bit for bit the same values and gradients
(tests/test_activations.py). The gradient kernel computes any 16-bit input in float32 and
rounds once, as the forward pass does (so under mixed float16, where the blocks run the GELU
in float16, it is no longer computed in float16).
Evaluation, exports and serving run TensorFlow's ops and never compile anything; training
compiles each kernel once per distinct activation shape (one per length bucket).
"""

import contextlib
import math
import threading

import tensorflow as tf
import tf_keras

from mrpc_task import keras_private

EXACT_GELU = 'mrpc_task>exact_gelu'

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@tf.function(jit_compile=True)
def _gelu_gradient(x, upstream):
  """upstream * d/dx [x * Phi(x)] = upstream * (Phi(x) + x * phi(x)), fused; computed in
  float32 for 16-bit inputs and rounded once, as the forward pass is."""
  dtype = x.dtype
  x, upstream = tf.cast(x, tf.float32), tf.cast(upstream, tf.float32)
  cdf = 0.5 * tf.math.erfc(-x * _SQRT_HALF)
  pdf = tf.exp(-0.5 * x * x) * _INV_SQRT_2PI
  return tf.cast(upstream * (cdf + x * pdf), dtype)


# Whether the thread is tracing a training step (MirroredStrategy traces each replica's step
# in a thread of its own).
_TRAINING_STEP = threading.local()


@contextlib.contextmanager
def training_kernels():
  """Traced inside it, the GELU's forward pass is one XLA kernel, and a
  `RoundingGeluActivation` hands it its 16-bit input uncast."""
  outer = getattr(_TRAINING_STEP, 'active', False)
  _TRAINING_STEP.active = True
  try:
    yield
  finally:
    _TRAINING_STEP.active = outer


def _in_training_step() -> bool:
  return getattr(_TRAINING_STEP, 'active', False)


def _gelu_in_float32(x):
  """tf.nn.gelu of `x`; a 16-bit `x` is computed in float32 and the result rounded once."""
  if _in_training_step():
    return _compiled_gelu_in_float32(x)
  return _plain_gelu_in_float32(x)


def _plain_gelu_in_float32(x):
  if x.dtype == tf.float32:
    return tf.nn.gelu(x, approximate=False)
  return tf.cast(tf.nn.gelu(tf.cast(x, tf.float32), approximate=False), x.dtype)


_compiled_gelu_in_float32 = tf.function(_plain_gelu_in_float32, jit_compile=True)


@tf.custom_gradient
def _gelu_with_fused_gradient(x):
  return _gelu_in_float32(x), lambda upstream: _gelu_gradient(x, upstream)


# A plain function (not the custom-gradient wrapper) so Keras can serialize it by name.
@tf_keras.utils.register_keras_serializable(package='mrpc_task', name='exact_gelu')
def exact_gelu(x):
  """GELU with the exact Gaussian CDF: x * Phi(x)."""
  return _gelu_with_fused_gradient(x)


class RoundingGeluActivation(tf_keras.layers.Activation):
  """A float32 `Activation` of `exact_gelu` (Model Garden's feed-forward activation under
  mixed bfloat16) that, traced in a training step on a 16-bit input, takes that input as it
  is and returns the 16-bit rounding the next (16-bit) layer would make of its float32
  output: the same values, with the casts on both sides, and their gradients, inside the
  GELU's two XLA kernels instead of four passes over the [batch, length, intermediate]
  activations of their own. Anything else goes through Keras' own `__call__`. Only for an
  activation whose output a 16-bit layer reads (`use_rounding_gelu` checks)."""

  def __call__(self, inputs, *args, **kwargs):
    if (_in_training_step() and not args and not kwargs
        and self.activation is exact_gelu and self.compute_dtype == 'float32'
        and isinstance(inputs, tf.Tensor) and inputs.dtype in (tf.bfloat16, tf.float16)):
      with tf.name_scope(self.name):
        return _gelu_with_fused_gradient(inputs)
    return super().__call__(inputs, *args, **kwargs)


def use_rounding_gelu(model: tf_keras.layers.Layer) -> int:
  """Makes the feed-forward activation of each Model Garden `TransformerEncoderBlock` inside
  `model` a `RoundingGeluActivation`, in place, where it is a float32 Keras `Activation`
  whose output goes to a 16-bit layer (the block's inner dropout) that rounds it anyway;
  returns how many changed."""
  from official.nlp.modeling import layers as nlp_layers  # pylint: disable=g-import-not-at-top
  changed = 0
  for block in [model, *model.submodules]:
    if not (isinstance(block, nlp_layers.TransformerEncoderBlock) and block.built):
      continue  # A block makes its sublayers when it is built.
    parts = keras_private.block_parts(block)
    if (type(parts.activation) is tf_keras.layers.Activation  # pylint: disable=unidiomatic-typecheck
        and parts.activation.compute_dtype == 'float32'
        and parts.inner_dropout.compute_dtype in ('bfloat16', 'float16')):
      keras_private.recast_layer(parts.activation, RoundingGeluActivation)
      changed += 1
  return changed
