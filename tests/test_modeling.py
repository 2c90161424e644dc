"""The classifier heads: every pooling builds, restores its encoder and ignores padding."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.nlp.configs import encoders

from mrpc_task import modeling
from tests.conftest import tiny_encoder

FEATURES = {
    'input_word_ids': tf.constant([[2, 5, 6, 3, 9, 3, 0, 0]]),
    'input_mask': tf.constant([[1, 1, 1, 1, 1, 1, 0, 0]]),
    'input_type_ids': tf.constant([[0, 0, 0, 0, 1, 1, 0, 0]]),
}

SECOND_PAIR = {
    'input_word_ids': tf.constant([[2, 7, 8, 9, 3, 10, 11, 3]]),
    'input_mask': tf.constant([[1, 1, 1, 1, 1, 1, 1, 1]]),
    'input_type_ids': tf.constant([[0, 0, 0, 0, 0, 1, 1, 1]]),
}


def _classifier(pooling):
  return modeling.build_classifier(
      encoders.build_encoder(tiny_encoder()), num_classes=2, pooling=pooling, dropout_rate=0.1,
      initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))


@pytest.mark.parametrize('pooling', ['pooler', 'cls', 'mean'])
def test_padding_does_not_change_logits(pooling):
  """Logits of a pair are the same padded to 8 or trimmed to its 6 real tokens."""
  model = _classifier(pooling)
  padded = model(FEATURES, training=False)
  trimmed = model({k: v[:, :6] for k, v in FEATURES.items()}, training=False)
  assert padded.shape == (1, 2)
  np.testing.assert_allclose(padded, trimmed, atol=1e-6)
  assert 'encoder' in model.checkpoint_items


def test_mean_pooling_averages_only_real_tokens():
  """MaskedMeanPooling is the mean over mask==1 positions, exactly."""
  sequence = tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
  pooled = modeling.MaskedMeanPooling()([sequence, tf.constant([[1, 1, 0]])])
  np.testing.assert_allclose(pooled, [[2.0, 3.0]])


def test_unknown_pooling_fails_naming_key():
  """An unknown pooling name is rejected with the config key."""
  with pytest.raises(ValueError, match='task.model.pooling'):
    _classifier('max')


@pytest.mark.parametrize('pooling', ['pooler', 'cls'])
def test_last_layer_on_cls_only_keeps_logits_and_gradients(pooling):
  """output_range=1 (the recipes' default) is exact for heads that read only [CLS].

  The last layer then computes its queries, attention output and feed-forward for one token;
  logits and every weight's gradient must match the full encoder with the same weights.
  """
  tf_keras.utils.set_random_seed(3)
  full = _classifier(pooling)
  cls_only = modeling.build_classifier(
      encoders.build_encoder(tiny_encoder(output_range=1)), num_classes=2, pooling=pooling,
      dropout_rate=0.1, initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
  cls_only.set_weights(full.get_weights())
  features = {k: tf.concat([v, SECOND_PAIR[k]], axis=0) for k, v in FEATURES.items()}
  labels = tf.constant([1, 0])

  def logits_and_gradients(model):
    with tf.GradientTape() as tape:
      logits = model(features, training=False)
      loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
    return logits, tape.gradient(loss, model.trainable_variables)

  want_logits, want_grads = logits_and_gradients(full)
  got_logits, got_grads = logits_and_gradients(cls_only)
  np.testing.assert_allclose(got_logits, want_logits, atol=1e-6)
  assert len(got_grads) == len(want_grads)
  for variable, got, want in zip(full.trainable_variables, got_grads, want_grads):
    if want is None:  # The encoder's own pooler, which the cls head does not use.
      assert got is None, variable.name
      continue
    np.testing.assert_allclose(tf.convert_to_tensor(got), tf.convert_to_tensor(want),
                               atol=1e-6, err_msg=variable.name)
  # It is a real saving: the last layer's sequence output is one position long.
  assert cls_only.checkpoint_items['encoder'](features)['sequence_output'].shape[1] == 1


def test_mean_pooling_refuses_an_encoder_that_computes_only_cls():
  """A [B, 1, H] last layer would broadcast against the mask and quietly average [CLS]."""
  with pytest.raises(ValueError, match='output_range'):
    modeling.build_classifier(
        encoders.build_encoder(tiny_encoder(output_range=1)), num_classes=2, pooling='mean',
        dropout_rate=0.1, initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))
