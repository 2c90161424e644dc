"""Dropout that draws 16 random bits per element instead of a float32 uniform.

On this CPU, dropout was ~12% of a bfloat16 MiniLM training step (docs/PERFORMANCE.md), nearly
all of it the Philox draw of one float per attention probability plus a select in each
direction. Here one 32-bit Philox word feeds two elements, and the mask is applied as a single
multiply, which is also its own gradient. The keep decision compares 16 bits against
round(rate * 65536), so the rate is quantised to 1/65536 (0.1 becomes 0.100006); the kept
values are scaled by 1 / (1 - rate) exactly as Keras does. Randomness comes from a stateful
seed draw, so runs stay reproducible under `task.seed` like Keras' own dropout.

Model Garden's encoders create their `tf_keras.layers.Dropout` layers internally;
`use_fast_dropout` converts them on a built model, changing each instance's class to
`FastDropout` (`keras_private.recast_layer`, the private step listed there). Dropout
layers own no variables, so checkpoints and exports are unchanged, and at inference both are
the identity.
"""

import tensorflow as tf
import tf_keras

from mrpc_task import keras_private

_BITS = 16
_LEVELS = 1 << _BITS


def keep_threshold(rate: float) -> int:
  """16-bit values below this are dropped."""
  return int(round(rate * _LEVELS))


def random_uint16(shape) -> tf.Tensor:
  """Uniform 16-bit integers (as int32) of `shape`: two per 32-bit Philox output."""
  size = tf.reduce_prod(shape)
  seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
  words = tf.random.stateless_uniform(
      [(size + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
  halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size]
  return tf.reshape(halves, shape)


def dropout(inputs: tf.Tensor, rate: float) -> tf.Tensor:
  """Zeroes each element with probability ~rate and scales the rest by 1 / (1 - rate)."""
  keep = random_uint16(tf.shape(inputs)) >= keep_threshold(rate)
  scale = tf.cast(1.0 / (1.0 - rate), inputs.dtype)
  return inputs * (tf.cast(keep, inputs.dtype) * scale)


class FastDropout(tf_keras.layers.Dropout):
  """`tf_keras.layers.Dropout` with the 16-bit mask of `dropout`; same config and behaviour."""

  def call(self, inputs, training=None):
    if self.noise_shape is not None or not isinstance(self.rate, (int, float)):
      return super().call(inputs, training=training)
    if self.rate == 0:
      return tf.identity(inputs)
    if training is None:
      training = tf_keras.backend.learning_phase()
    known = tf.get_static_value(training)
    if known is not None:  # A Python or constant flag picks the branch while tracing.
      return dropout(inputs, self.rate) if known else tf.identity(inputs)
    return tf.cond(tf.cast(training, tf.bool), lambda: dropout(inputs, self.rate),
                   lambda: tf.identity(inputs))


def use_fast_dropout(model: tf_keras.layers.Layer) -> int:
  """Turns every plain Keras Dropout inside `model` into a `FastDropout`, in place.

  The layers keep their identity (name, rate, place in a functional graph or as an attribute);
  only their class changes, which is safe because `FastDropout` adds no state.

  Returns:
    How many layers were changed.
  """
  return keras_private.recast_layers(model, {tf_keras.layers.Dropout: FastDropout})
