"""Exact (erf) GELU, selectable by name from an `EncoderConfig`.

Model Garden maps `hidden_activation: gelu` to the tanh approximation, while Hugging Face
BERT (and so every checkpoint converted from it) uses the exact erf form; the two differ by about
3e-3 at the encoder output of MiniLM (tests/test_checkpoint_conversion.py). Registering the exact form as a Keras object lets a config say
`hidden_activation: mrpc_task>exact_gelu` and have `tf_utils.get_activation` resolve it, in
training and in exported SavedModels alike.
"""

import tensorflow as tf
import tf_keras

EXACT_GELU = 'mrpc_task>exact_gelu'


@tf_keras.utils.register_keras_serializable(package='mrpc_task', name='exact_gelu')
def exact_gelu(x):
  """GELU with the exact Gaussian CDF: x * Phi(x)."""
  return tf.nn.gelu(x, approximate=False)
