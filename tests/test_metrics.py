"""Accuracy and F1 match hand-computed confusion matrices, over the whole set."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mrpc_task import metrics
from tests import two_cpus

LABELS = [1, 1, 1, 0, 0, 0, 1, 0]
PREDICTIONS = [1, 0, 1, 0, 1, 0, 1, 1]  # tp=3, fn=1, fp=2, tn=2


def _logits(predictions):
  return tf.one_hot(predictions, 2) * 4.0 - 2.0


def test_scores_on_hand_computed_confusion():
  """tp=3 fp=2 fn=1 tn=2: accuracy 5/8, precision 3/5, recall 3/4, F1 2/3."""
  got = metrics.scores(LABELS, PREDICTIONS)
  assert got['accuracy'] == pytest.approx(5 / 8)
  assert got['precision'] == pytest.approx(3 / 5)
  assert got['recall'] == pytest.approx(3 / 4)
  assert got['f1'] == pytest.approx(2 / 3)
  assert got['glue_score'] == pytest.approx((5 / 8 + 2 / 3) / 2)
  np.testing.assert_array_equal(metrics.confusion_matrix(LABELS, PREDICTIONS, 2),
                                [[2, 2], [1, 3]])


def test_f1_of_class_zero_and_degenerate_cases():
  """F1 follows positive_class_id; with no predicted and no actual positives F1 (and so
  glue_score, precision and recall) is undefined, NaN, not a score of 0; with positives on
  one side only it is a real 0."""
  assert metrics.scores(LABELS, PREDICTIONS, positive_class_id=0)['f1'] == pytest.approx(
      2 * 2 / (3 + 4))
  one_class = metrics.scores([0, 0], [0, 0])
  assert one_class['accuracy'] == 1.0
  for name in ('f1', 'glue_score', 'precision', 'recall'):
    assert math.isnan(one_class[name]), name
  missed = metrics.scores([1, 0], [0, 0])
  assert missed['f1'] == 0.0 and missed['recall'] == 0.0 and math.isnan(missed['precision'])


def test_keras_metric_accumulates_over_batches_not_averages():
  """Two batches: F1 is 2/3 from summed counts, not the 0.65 mean of per-batch F1s."""
  f1 = metrics.ConfusionScore('f1', num_classes=2, positive_class_id=1)
  for start in (0, 4):
    f1.update_state(tf.constant(LABELS[start:start + 4]),
                    _logits(PREDICTIONS[start:start + 4]))
  assert float(f1.result()) == pytest.approx(2 / 3, abs=1e-6)
  f1.reset_state()
  assert math.isnan(float(f1.result()))  # Nothing seen: undefined.


def test_keras_metric_ignores_unlabeled_rows():
  """Rows labelled -1 (unlabeled data) do not count."""
  accuracy = metrics.ConfusionScore('accuracy', num_classes=2, positive_class_id=1)
  accuracy.update_state(tf.constant([1, -1, 0]), _logits([1, 0, 1]))
  assert float(accuracy.result()) == pytest.approx(0.5)


def _mirrored_f1_case():
  strategy = two_cpus.mirrored_strategy()
  with strategy.scope():
    f1 = metrics.ConfusionScore('f1', num_classes=2, positive_class_id=1)
  labels, predictions = LABELS + [1], PREDICTIONS + [1]  # tp=4 fp=2 fn=1 tn=2
  dataset = tf.data.Dataset.from_tensor_slices((labels, _logits(predictions))).batch(4)
  for batch_labels, batch_logits in strategy.experimental_distribute_dataset(dataset):
    strategy.run(f1.update_state, (batch_labels, batch_logits))
  assert float(f1.result()) == pytest.approx(8 / 11, abs=1e-6)


def test_metric_is_exact_under_mirrored_strategy():
  """2 replicas, uneven last batch (one replica gets nothing): counts still sum exactly."""
  two_cpus.run(_mirrored_f1_case)


def test_confusion_counts_are_the_matrix_cells_and_only_at_evaluation():
  """Evaluation metrics expose each cell (true, predicted) under its tag; training ones don't."""
  evaluation = metrics.pair_classification_metrics(2, 1)
  training = metrics.pair_classification_metrics(2, 1, with_counts=False)
  assert [m.name for m in training] == ['accuracy', 'f1', 'glue_score']
  for metric in evaluation:
    metric.update_state(tf.constant(LABELS), _logits(PREDICTIONS))
  cells = {m.name: float(m.result()) for m in evaluation if m.name.startswith('confusion/')}
  assert cells == {'confusion/true0_pred0': 2.0, 'confusion/true0_pred1': 2.0,
                   'confusion/true1_pred0': 1.0, 'confusion/true1_pred1': 3.0}


def _mirrored_bfloat16_counts_case():
  import tf_keras  # pylint: disable=g-import-not-at-top
  strategy = two_cpus.mirrored_strategy()
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    with strategy.scope():
      evaluation = metrics.pair_classification_metrics(2, 1)
    dataset = tf.data.Dataset.from_tensor_slices((LABELS, _logits(PREDICTIONS))).batch(4)
    for batch_labels, batch_logits in strategy.experimental_distribute_dataset(dataset):
      for metric in evaluation:
        strategy.run(metric.update_state, (batch_labels, batch_logits))
    results = tf.function(lambda: {m.name: m.result() for m in evaluation})()
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  assert float(results['confusion/true0_pred1']) == 2.0
  assert float(results['confusion/true1_pred1']) == 3.0
  assert float(results['accuracy']) == pytest.approx(5 / 8)


def test_confusion_counts_under_mirrored_strategy_and_mixed_precision():
  """Cells read correctly in a tf.function under 2 replicas and the mixed_bfloat16 policy."""
  two_cpus.run(_mirrored_bfloat16_counts_case)


def test_validation_loss_is_per_labeled_example():
  """Mean cross-entropy over labeled rows, however the rows were batched."""
  logits = tf.constant([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, -3.0]])
  labels = tf.constant([0, 1, 0, -1])
  want = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0)), np.log(2.0)])
  loss = metrics.validation_loss_metric()
  loss.update_state(labels[:1], logits[:1])
  loss.update_state(labels[1:], logits[1:])  # Uneven batches: still per example.
  assert loss.name == 'validation_loss'
  assert float(loss.result()) == pytest.approx(want, rel=1e-6)
