"""The classifier on top of the encoder, with a choice of how the input becomes one vector.

`pooling='pooler'` (and `'cls'`) is Model Garden's `BertClassifier`, as in the tutorial.
`pooling='mean'` averages the encoder's outputs over the real (unmasked) tokens, which
Model Garden's classifiers lack: sentence-embedding models such as all-MiniLM-L6-v2 were
trained through mean pooling, and their pooler layer is untrained (zero bias, init-sized
weights), so the mean is where their pretraining lives.
"""

import tensorflow as tf
import tf_keras
from official.nlp.modeling import models

from mrpc_task.configs import POOLINGS

_TINY = 1.1754944e-38  # The smallest normal float32: log() of it is finite.


class MaskedMeanPooling(tf_keras.layers.Layer):
  """Mean of [batch, length, width] over positions where the mask is 1."""

  def call(self, inputs):
    sequence, mask = inputs
    weights = tf.cast(mask, sequence.dtype)[:, :, tf.newaxis]
    total = tf.reduce_sum(sequence * weights, axis=1)
    count = tf.maximum(tf.reduce_sum(weights, axis=1), tf.ones([], sequence.dtype))
    return total / count


class MeanPooledClassifier(tf_keras.Model):
  """Encoder -> masked mean of the sequence output -> dropout -> dense logits."""

  def __init__(self, network: tf_keras.Model, num_classes: int, initializer,
               dropout_rate: float, **kwargs):
    # A last layer sliced to [CLS] would broadcast against the mask and average [CLS] alone.
    output_range = _output_range(network)
    if output_range:
      raise ValueError(
          f'task.model.pooling=mean averages every token, but the encoder\'s last layer '
          f'computes only {output_range} (output_range): build it with output_range None')
    inputs = network.inputs
    outputs = network(inputs)
    sequence = outputs['sequence_output'] if isinstance(outputs, dict) else outputs[0]
    mask = inputs[1] if isinstance(inputs, list) else inputs['input_mask']
    pooled = MaskedMeanPooling(name='mean_pooling')([sequence, mask])
    pooled = tf_keras.layers.Dropout(rate=dropout_rate)(pooled)
    logits = tf_keras.layers.Dense(
        num_classes, kernel_initializer=initializer, name='sentence_prediction',
        dtype=tf.float32)(pooled)
    super().__init__(inputs=inputs, outputs=logits, **kwargs)
    self._network = network

  @property
  def checkpoint_items(self):
    return dict(encoder=self._network)


def _output_range(network: tf_keras.Model):
  """The encoder's output_range, or None when its config does not say (a TF Hub encoder)."""
  try:
    return network.get_config().get('output_range')
  except (NotImplementedError, TypeError, ValueError):
    return None


def average_outputs(outputs, *, regression: bool) -> tf.Tensor:
  """What an ensemble (several models, both sentence orders) serves: for a score task the mean
  score; for classes, logits whose softmax is the mean probability (the log of that mean).

  Args:
    outputs: float32 model outputs, each [batch, num_classes] (logits) or [batch, 1] (scores).
    regression: whether they are scores.
  """
  if regression:
    return tf.add_n(list(outputs)) / len(outputs)
  mean = tf.add_n([tf.nn.softmax(logits, axis=-1) for logits in outputs]) / len(outputs)
  return tf.math.log(tf.maximum(mean, _TINY))  # Never log(0) = -inf.


def build_classifier(network: tf_keras.Model, *, num_classes: int, pooling: str,
                     dropout_rate: float, initializer) -> tf_keras.Model:
  """A classifier on `network`, which must expose `checkpoint_items['encoder']`.

  Args:
    network: the encoder (a Model Garden network with `inputs`, or a TF Hub one).
    num_classes: number of logits (1: a score).
    pooling: 'pooler' (encoder pooler, the tutorial's), 'cls' ([CLS] + a new dense-tanh
      head) or 'mean' (masked mean of the token outputs).
    dropout_rate: dropout before the output layer.
    initializer: for the new layers.
  """
  if pooling == 'mean':
    return MeanPooledClassifier(network, num_classes, initializer, dropout_rate)
  if pooling in ('pooler', 'cls'):
    return models.BertClassifier(
        network=network, num_classes=num_classes, initializer=initializer,
        dropout_rate=dropout_rate, use_encoder_pooler=pooling == 'pooler')
  raise ValueError(f'task.model.pooling={pooling!r}: must be one of {POOLINGS}')
