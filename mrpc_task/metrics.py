"""Accuracy and F1 from a confusion matrix summed over the whole evaluation set.

F1 is not an average of per-batch F1s: each metric keeps a [num_classes, num_classes] count
matrix in a Keras metric variable, which a distribution strategy sums across replicas and
workers, and the score is computed once from the totals. `scores_from_confusion` is the one
formula, used by the metrics in training and by plain numpy callers (predict, tests).
"""

from typing import Dict, List

import numpy as np
import tensorflow as tf
import tf_keras

SCORE_NAMES = ('accuracy', 'f1', 'precision', 'recall', 'glue_score')


def _ratio(numerator: tf.Tensor, denominator: tf.Tensor) -> tf.Tensor:
  """numerator / denominator, NaN when the denominator is 0."""
  return tf.where(denominator > 0, tf.math.divide_no_nan(numerator, denominator),
                  tf.constant(float('nan'), tf.float32))


def scores_from_confusion(confusion, positive_class_id: int = 1) -> Dict[str, tf.Tensor]:
  """Scores from a confusion matrix (rows: true class, columns: predicted class).

  Args:
    confusion: [num_classes, num_classes] counts (tensor or array).
    positive_class_id: the class precision, recall and F1 are about.

  Returns:
    accuracy, precision, recall and f1 of the positive class, and glue_score (the mean of
    accuracy and F1, GLUE's MRPC score). A ratio with a zero denominator is undefined: NaN,
    not 0 (F1 when the positive class is neither in the labels nor in the predictions, e.g.
    a dev set of one class predicted right), so it is never mistaken for a real score.
  """
  confusion = tf.cast(confusion, tf.float32)  # Exact for counts below 2**24.
  total = tf.reduce_sum(confusion)
  true_positives = confusion[positive_class_id, positive_class_id]
  predicted_positives = tf.reduce_sum(confusion[:, positive_class_id])
  actual_positives = tf.reduce_sum(confusion[positive_class_id, :])
  accuracy = _ratio(tf.linalg.trace(confusion), total)
  precision = _ratio(true_positives, predicted_positives)
  recall = _ratio(true_positives, actual_positives)
  f1 = _ratio(2 * true_positives, predicted_positives + actual_positives)
  return {
      'accuracy': accuracy,
      'f1': f1,
      'precision': precision,
      'recall': recall,
      'glue_score': (accuracy + f1) / 2,
  }


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
  """Counts of (true, predicted) class pairs, as int64 numpy."""
  return tf.math.confusion_matrix(
      labels, predictions, num_classes=num_classes, dtype=tf.int64).numpy()


def scores(labels, predictions, num_classes: int = 2,
           positive_class_id: int = 1) -> Dict[str, float]:
  """`scores_from_confusion` on label and predicted-class arrays, as Python floats."""
  confusion = confusion_matrix(labels, predictions, num_classes)
  return {name: float(value)
          for name, value in scores_from_confusion(confusion, positive_class_id).items()}


class ConfusionScore(tf_keras.metrics.Metric):
  """One score (by name) from a confusion matrix accumulated over every batch seen."""

  def __init__(self, score: str, *, num_classes: int, positive_class_id: int, **kwargs):
    if score not in SCORE_NAMES:
      raise ValueError(f'score={score!r}: must be one of {SCORE_NAMES}')
    super().__init__(name=kwargs.pop('name', score), **kwargs)
    self.score = score
    self.num_classes = num_classes
    self.positive_class_id = positive_class_id
    self.confusion = self.add_weight(
        'confusion', shape=(num_classes, num_classes), initializer='zeros',
        dtype=tf.float32)  # float32: exact counts to 2**24, and TPUs lack float64.

  def update_state(self, labels, logits, sample_weight=None):
    """Adds a batch: int labels [batch], logits [batch, num_classes]; labels < 0 are ignored."""
    del sample_weight
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    # Weights, not a boolean mask, so shapes stay static (TPU/XLA).
    self.confusion.assign_add(tf.math.confusion_matrix(
        tf.maximum(labels, 0), predictions, num_classes=self.num_classes,
        weights=tf.cast(labels >= 0, tf.float32), dtype=tf.float32))

  def result(self):
    return tf.cast(
        scores_from_confusion(self.confusion, self.positive_class_id)[self.score], tf.float32)

  def reset_state(self):
    self.confusion.assign(tf.zeros_like(self.confusion))

  def get_config(self):
    return {**super().get_config(), 'score': self.score, 'num_classes': self.num_classes,
            'positive_class_id': self.positive_class_id}


CONFUSION_PREFIX = 'confusion'


def confusion_count_name(true_id: int, predicted_id: int) -> str:
  """Summary tag of one confusion-matrix cell, e.g. `confusion/true1_pred0`."""
  return f'{CONFUSION_PREFIX}/true{true_id}_pred{predicted_id}'


class ConfusionCount(ConfusionScore):
  """One cell of the accumulated confusion matrix, so TensorBoard (and `tfm report`) see it."""

  def __init__(self, true_id: int, predicted_id: int, *, num_classes: int, **kwargs):
    super().__init__('accuracy', num_classes=num_classes, positive_class_id=0,
                     name=kwargs.pop('name', confusion_count_name(true_id, predicted_id)),
                     **kwargs)
    self.true_id = true_id
    self.predicted_id = predicted_id

  def result(self):
    # Read the whole variable first: under mixed precision it is an AutoCastVariable, whose
    # slicing is not allowed in a distribution strategy's sync-on-read context.
    return tf.cast(self.confusion, tf.float32)[self.true_id, self.predicted_id]

  def get_config(self):
    config = super().get_config()
    del config['score'], config['positive_class_id']
    return {**config, 'true_id': self.true_id, 'predicted_id': self.predicted_id}


def pair_classification_metrics(num_classes: int, positive_class_id: int, *,
                                with_counts: bool = True) -> List[ConfusionScore]:
  """Accuracy, F1, their mean and (with_counts) the matrix cells, for every evaluation."""
  scores = [ConfusionScore(name, num_classes=num_classes, positive_class_id=positive_class_id)
            for name in ('accuracy', 'f1', 'glue_score')]
  cells = [ConfusionCount(true_id, predicted_id, num_classes=num_classes)
           for true_id in range(num_classes) for predicted_id in range(num_classes)]
  return scores + (cells if with_counts else [])


class MeanCrossEntropy(tf_keras.metrics.Mean):
  """Cross-entropy per example, averaged over every labeled example seen.

  Its total and count are summed across replicas, so the value does not depend on how
  batches were split (Model Garden's own validation loss averages per-replica batch means).
  Rows labelled < 0 (unlabeled) are ignored, as in `ConfusionScore`.
  """

  def update_state(self, labels, logits, sample_weight=None):
    del sample_weight
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    losses = tf_keras.losses.sparse_categorical_crossentropy(
        tf.maximum(labels, 0), tf.cast(logits, tf.float32), from_logits=True)
    return super().update_state(losses, sample_weight=tf.cast(labels >= 0, tf.float32))


def validation_loss_metric() -> tf_keras.metrics.Metric:
  """The `validation_loss` reported at every evaluation (see `MeanCrossEntropy`)."""
  return MeanCrossEntropy(name='validation_loss')
