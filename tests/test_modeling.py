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
