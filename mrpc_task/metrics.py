"""GLUE's metrics, computed over the whole evaluation set, exact on any number of replicas.

Classification scores (accuracy, F1 of the positive class, Matthews correlation) are not
averages of per-batch values: each metric keeps a [num_classes, num_classes] count matrix in
a Keras metric variable, which a distribution strategy sums across replicas and workers, and
the score is computed once from the totals. Correlations (Pearson, Spearman) need every
prediction: the Task gathers them across replicas and `correlation_scores` computes them
once per evaluation. `scores_from_confusion` and `correlation_scores` are the one place each
formula lives, used in training, `tfm evaluate`, `tfm predict` and the tests.

A task's `glue_score` is the mean of the metrics it declares (MRPC: accuracy and F1; STS-B:
Pearson and Spearman; CoLA: Matthews; most others: accuracy), GLUE's score for that task.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from mrpc_task import configs

# Metrics are traced into every training and evaluation step; their code has no Python
# control flow on tensors, and AutoGraph's conversion of it cost ~0.9 s per run.
_not_converted = tf.autograph.experimental.do_not_convert

CONFUSION_SCORES = ('accuracy', 'f1', 'precision', 'recall', 'matthews', configs.GLUE_SCORE)
DEFAULT_METRICS = ('accuracy', 'f1')


def _ratio(numerator: tf.Tensor, denominator: tf.Tensor) -> tf.Tensor:
  """numerator / denominator, NaN when the denominator is 0."""
  return tf.where(denominator > 0, tf.math.divide_no_nan(numerator, denominator),
                  tf.constant(float('nan'), tf.float32))


def glue_score(scores: Dict[str, tf.Tensor], metrics: Sequence[str]):
  """The mean of the declared metrics: GLUE's score for the task."""
  return sum(scores[name] for name in metrics) / len(metrics)


def scores_from_confusion(confusion, positive_class_id: int = 1,
                          metrics: Sequence[str] = DEFAULT_METRICS) -> Dict[str, tf.Tensor]:
  """Scores from a confusion matrix (rows: true class, columns: predicted class).

  Args:
    confusion: [num_classes, num_classes] counts (tensor or array).
    positive_class_id: the class precision, recall and F1 are about.
    metrics: the task's declared metrics, averaged into glue_score.

  Returns:
    accuracy; precision, recall and f1 of the positive class; matthews (the multi-class
    Matthews correlation, which for two classes is the usual one); glue_score. A ratio with
    a zero denominator is undefined: NaN, not 0 (F1 when the positive class is neither in the
    labels nor in the predictions), so it is never mistaken for a real score. Matthews is 0
    there instead (nothing predicted beyond chance), as scikit-learn and GLUE's scorer define
    it.
  """
  confusion = tf.cast(confusion, tf.float32)  # Exact for counts below 2**24.
  total = tf.reduce_sum(confusion)
  true_positives = confusion[positive_class_id, positive_class_id]
  predicted = tf.reduce_sum(confusion, axis=0)
  actual = tf.reduce_sum(confusion, axis=1)
  correct = tf.linalg.trace(confusion)
  scores = {
      'accuracy': _ratio(correct, total),
      'precision': _ratio(true_positives, predicted[positive_class_id]),
      'recall': _ratio(true_positives, actual[positive_class_id]),
      'f1': _ratio(2 * true_positives, predicted[positive_class_id] + actual[positive_class_id]),
  }
  # In float64: the products of counts pass 2**24 (float32's exact range) from ~4k examples.
  wide = tf.cast(confusion, tf.float64)
  total64, predicted64, actual64 = (tf.cast(x, tf.float64) for x in (total, predicted, actual))
  covariance = tf.linalg.trace(wide) * total64 - tf.reduce_sum(predicted64 * actual64)
  spread = ((total64 ** 2 - tf.reduce_sum(predicted64 ** 2)) *
            (total64 ** 2 - tf.reduce_sum(actual64 ** 2)))
  scores['matthews'] = tf.cast(
      tf.where(spread > 0, covariance / tf.sqrt(tf.maximum(spread, 1e-300)),
               tf.constant(0.0, tf.float64)), tf.float32)
  scores[configs.GLUE_SCORE] = glue_score(scores, metrics)
  return scores


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
  """Counts of (true, predicted) class pairs, as int64 numpy."""
  return tf.math.confusion_matrix(
      labels, predictions, num_classes=num_classes, dtype=tf.int64).numpy()


def scores(labels, predictions, num_classes: int = 2, positive_class_id: int = 1,
           metrics: Sequence[str] = DEFAULT_METRICS) -> Dict[str, float]:
  """`scores_from_confusion` on label and predicted-class arrays, as Python floats."""
  confusion = confusion_matrix(labels, predictions, num_classes)
  return {name: float(value) for name, value in
          scores_from_confusion(confusion, positive_class_id, metrics).items()}


def _ranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks, ties sharing the mean of their ranks (as Spearman's rho needs)."""
  order = np.argsort(values, kind='stable')
  ordered = values[order]
  ranks = np.empty(len(values), np.float64)
  start = 0
  while start < len(values):
    end = start
    while end + 1 < len(values) and ordered[end + 1] == ordered[start]:
      end += 1
    ranks[order[start:end + 1]] = (start + end) / 2 + 1
    start = end + 1
  return ranks


def pearson(x, y) -> float:
  """Pearson's r of two equally long sequences; NaN when either is constant or too short."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < 2:
    return float('nan')
  dx, dy = x - x.mean(), y - y.mean()
  spread = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
  return float(np.sum(dx * dy) / spread) if spread > 0 else float('nan')


def spearman(x, y) -> float:
  """Spearman's rho: Pearson's r of the ranks (ties averaged)."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  return pearson(_ranks(x), _ranks(y))


def correlation_scores(predictions, labels, metrics: Sequence[str]) -> Dict[str, float]:
  """pearson, spearman and glue_score (the mean of `metrics`) of every prediction at once.

  Rows whose label is NaN (unlabeled) are left out.
  """
  predictions = np.asarray(predictions, np.float64).reshape(-1)
  labels = np.asarray(labels, np.float64).reshape(-1)
  labeled = ~np.isnan(labels)
  predictions, labels = predictions[labeled], labels[labeled]
  result = {'pearson': pearson(predictions, labels), 'spearman': spearman(predictions, labels)}
  result[configs.GLUE_SCORE] = float(glue_score(result, metrics))
  return result


def _row_weights(labels: tf.Tensor, sample_weight) -> tf.Tensor:
  """1 for labeled rows (class >= 0, or a score that is not NaN) that count, else 0."""
  labels = tf.reshape(labels, [-1])
  if labels.dtype.is_floating:
    weights = tf.cast(tf.logical_not(tf.math.is_nan(labels)), tf.float32)
  else:
    weights = tf.cast(labels >= 0, tf.float32)
  if sample_weight is not None:
    weights *= tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
  return weights


class ConfusionScore(tf_keras.metrics.Metric):
  """One score (by name) from a confusion matrix accumulated over every batch seen.

  `sample_weight` selects rows (a split's, when an evaluation holds several); rows labelled
  < 0 (unlabeled) never count.
  """

  def __init__(self, score: str, *, num_classes: int, positive_class_id: int,
               metrics: Sequence[str] = DEFAULT_METRICS, **kwargs):
    if score not in CONFUSION_SCORES:
      raise ValueError(f'score={score!r}: must be one of {CONFUSION_SCORES}')
    super().__init__(name=kwargs.pop('name', score), **kwargs)
    self.score = score
    self.num_classes = num_classes
    self.positive_class_id = positive_class_id
    self.glue_metrics = list(metrics)
    self.confusion = self.add_weight(
        'confusion', shape=(num_classes, num_classes), initializer='zeros',
        dtype=tf.float32)  # float32: exact counts to 2**24, and TPUs lack float64.

  @_not_converted
  def update_state(self, labels, logits, sample_weight=None):
    """Adds a batch: int labels [batch], logits [batch, num_classes]."""
    weights = _row_weights(labels, sample_weight)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
    # Weights, not a boolean mask, so shapes stay static (TPU/XLA).
    self.confusion.assign_add(tf.math.confusion_matrix(
        tf.maximum(labels, 0), predictions, num_classes=self.num_classes,
        weights=weights, dtype=tf.float32))

  @_not_converted
  def result(self):
    return tf.cast(scores_from_confusion(self.confusion, self.positive_class_id,
                                         self.glue_metrics)[self.score], tf.float32)

  def reset_state(self):
    self.confusion.assign(tf.zeros_like(self.confusion))

  def get_config(self):
    return {**super().get_config(), 'score': self.score, 'num_classes': self.num_classes,
            'positive_class_id': self.positive_class_id, 'metrics': self.glue_metrics}


CONFUSION_PREFIX = 'confusion'


def confusion_count_name(true_id: int, predicted_id: int, prefix: str = '') -> str:
  """Summary tag of one confusion-matrix cell, e.g. `confusion/true1_pred0` (a split's:
  `dev_matched/confusion/true1_pred0`)."""
  return f'{prefix}{CONFUSION_PREFIX}/true{true_id}_pred{predicted_id}'


class ConfusionCount(ConfusionScore):
  """One cell of the accumulated confusion matrix, so TensorBoard (and `tfm report`) see it."""

  def __init__(self, true_id: int, predicted_id: int, *, num_classes: int, **kwargs):
    super().__init__('accuracy', num_classes=num_classes, positive_class_id=0,
                     name=kwargs.pop('name', confusion_count_name(true_id, predicted_id)),
                     **kwargs)
    self.true_id = true_id
    self.predicted_id = predicted_id

  @_not_converted
  def result(self):
    # Read the whole variable first: under mixed precision it is an AutoCastVariable, whose
    # slicing is not allowed in a distribution strategy's sync-on-read context.
    return tf.cast(self.confusion, tf.float32)[self.true_id, self.predicted_id]

  def get_config(self):
    config = super().get_config()
    for key in ('score', 'positive_class_id', 'metrics'):
      del config[key]
    return {**config, 'true_id': self.true_id, 'predicted_id': self.predicted_id}


class MeanCrossEntropy(tf_keras.metrics.Mean):
  """Cross-entropy per example, averaged over every labeled example seen.

  Its total and count are summed across replicas, so the value does not depend on how
  batches were split (Model Garden's own validation loss averages per-replica batch means).
  Rows labelled < 0 (unlabeled) are ignored, as in `ConfusionScore`.
  """

  @_not_converted
  def update_state(self, labels, logits, sample_weight=None):
    weights = _row_weights(labels, sample_weight)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    losses = tf_keras.losses.sparse_categorical_crossentropy(
        tf.maximum(labels, 0), tf.cast(logits, tf.float32), from_logits=True)
    return super().update_state(losses, sample_weight=weights)


class MeanSquaredError(tf_keras.metrics.Mean):
  """Squared error per example of a score task, averaged over every labeled example seen
  (summed across replicas, as `MeanCrossEntropy`); NaN labels (unlabeled) are ignored."""

  @_not_converted
  def update_state(self, labels, outputs, sample_weight=None):
    weights = _row_weights(labels, sample_weight)
    labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
    predictions = tf.reshape(tf.cast(outputs, tf.float32), [-1])
    errors = tf.math.squared_difference(predictions, tf.where(weights > 0, labels, 0.0))
    return super().update_state(errors, sample_weight=weights)


def task_metrics(task: configs.TextTaskConfig, *, training: bool) -> List[tf_keras.metrics.Metric]:
  """The Keras metrics of a task's training or evaluation steps.

  Training: the classification scores of the batches seen (none for score tasks). Evaluation:
  for each evaluation split (names prefixed `SPLIT/` when there are several), the declared
  classification scores, glue_score, the confusion-matrix cells and the loss; score tasks get
  only their loss here (their correlations need every prediction: `correlation_scores`).
  Each metric's `split_index` says which split's rows it counts (None: all).
  """
  splits = [None] if training else list(task.eval_splits)
  found = []
  for index, split in enumerate(splits):
    prefix = '' if split is None else configs.split_prefix(split, splits)
    split_index = None if split is None or len(splits) == 1 else index
    if task.is_regression:
      group = [] if training else [MeanSquaredError(name=prefix + configs.VALIDATION_LOSS)]
    else:
      num_classes = task.model.num_classes
      group = [ConfusionScore(name, num_classes=num_classes,
                              positive_class_id=task.positive_class_id,
                              metrics=task.metrics, name=prefix + name)
               for name in list(task.metrics) + [configs.GLUE_SCORE]]
      if not training:
        group += [ConfusionCount(t, p, num_classes=num_classes,
                                 name=confusion_count_name(t, p, prefix))
                  for t in range(num_classes) for p in range(num_classes)]
        group.append(MeanCrossEntropy(name=prefix + configs.VALIDATION_LOSS))
    for metric in group:
      metric.split_index = split_index
    found += group
  return found


def update_metrics(metrics: Sequence[tf_keras.metrics.Metric], labels, outputs,
                   split_ids: Optional[tf.Tensor] = None):
  """Adds a batch to each metric, counting only its split's rows when it has a split."""
  for metric in metrics:
    index = getattr(metric, 'split_index', None)
    weights = None
    if index is not None and split_ids is not None:
      weights = tf.cast(tf.equal(split_ids, index), tf.float32)
    metric.update_state(labels, outputs, sample_weight=weights)
