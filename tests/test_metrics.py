"""GLUE's metrics equal independent computations on fixed inputs, over the whole set, on any
number of replicas."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sklearn_metrics
import tensorflow as tf

from mrpc_task import configs
from mrpc_task import glue
from mrpc_task import metrics
from tests import two_cpus

LABELS = [1, 1, 1, 0, 0, 0, 1, 0]
PREDICTIONS = [1, 0, 1, 0, 1, 0, 1, 1]  # tp=3, fn=1, fp=2, tn=2
# Three classes, as MNLI: rows true, columns predicted -> [[3, 1, 0], [1, 2, 1], [0, 2, 2]].
LABELS_3 = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
PREDICTIONS_3 = [0, 0, 0, 1, 0, 1, 1, 2, 1, 1, 2, 2]
# Scores with ties on both sides, as STS-B's gold scores have.
GOLD = [0.0, 1.2, 1.2, 2.5, 3.0, 3.0, 4.4, 5.0, 2.5, 0.4]
PREDICTED = [0.3, 1.0, 1.9, 2.2, 3.1, 2.9, 4.0, 4.0, 1.9, 0.1]


def _logits(predictions, num_classes=2):
  return tf.one_hot(predictions, num_classes) * 4.0 - 2.0


def test_scores_on_hand_computed_confusion():
  """tp=3 fp=2 fn=1 tn=2: accuracy 5/8, precision 3/5, recall 3/4, F1 2/3, Matthews
  (3*2 - 2*1) / sqrt(5*4*4*3)."""
  got = metrics.scores(LABELS, PREDICTIONS)
  assert got['accuracy'] == pytest.approx(5 / 8)
  assert got['precision'] == pytest.approx(3 / 5)
  assert got['recall'] == pytest.approx(3 / 4)
  assert got['f1'] == pytest.approx(2 / 3)
  assert got['matthews'] == pytest.approx(4 / math.sqrt(240), rel=1e-6)
  assert got['glue_score'] == pytest.approx((5 / 8 + 2 / 3) / 2)
  np.testing.assert_array_equal(metrics.confusion_matrix(LABELS, PREDICTIONS, 2),
                                [[2, 2], [1, 3]])


def test_matthews_equals_scikit_learn_for_two_and_three_classes():
  """Binary and 3-class Matthews from the confusion matrix equal scikit-learn's; a model
  that predicts one class scores 0, as scikit-learn (and GLUE's CoLA scorer) say."""
  assert metrics.scores(LABELS, PREDICTIONS, metrics=['matthews'])['matthews'] == (
      pytest.approx(sklearn_metrics.matthews_corrcoef(LABELS, PREDICTIONS), rel=1e-6))
  three = metrics.scores(LABELS_3, PREDICTIONS_3, num_classes=3, metrics=['accuracy'])
  assert three['matthews'] == pytest.approx(
      sklearn_metrics.matthews_corrcoef(LABELS_3, PREDICTIONS_3), rel=1e-6)
  assert three['accuracy'] == pytest.approx(7 / 12) and three['glue_score'] == three['accuracy']
  assert metrics.scores([0, 1, 1], [1, 1, 1], metrics=['matthews'])['matthews'] == 0.0


def test_correlations_equal_scipy_and_hand_values():
  """Pearson and Spearman (ties averaged) equal scipy's; a perfect monotone but non-linear
  prediction has Spearman 1 and Pearson below 1; constant predictions are undefined (NaN)."""
  got = metrics.correlation_scores(PREDICTED, GOLD, ['pearson', 'spearman'])
  assert got['pearson'] == pytest.approx(stats.pearsonr(PREDICTED, GOLD)[0], rel=1e-9)
  assert got['spearman'] == pytest.approx(stats.spearmanr(PREDICTED, GOLD)[0], rel=1e-9)
  assert got['glue_score'] == pytest.approx((got['pearson'] + got['spearman']) / 2)
  cubes = metrics.correlation_scores([1, 8, 27, 64], [1, 2, 3, 4], ['pearson', 'spearman'])
  assert cubes['spearman'] == pytest.approx(1.0) and cubes['pearson'] < 0.99
  assert metrics.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(
      stats.spearmanr([1, 2, 2, 3], [1, 2, 3, 4])[0])
  assert math.isnan(metrics.pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
  labeled = metrics.correlation_scores([1.0, 2.0, 9.0, 3.0], [1.0, 2.0, float('nan'), 3.0],
                                       ['pearson'])
  assert labeled['pearson'] == pytest.approx(1.0)  # The unlabeled (NaN) row is left out.


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


def test_keras_metric_ignores_unlabeled_rows_and_counts_only_its_split():
  """Rows labelled -1 (unlabeled data) do not count; a sample weight (a split's rows) keeps
  only the rows it marks."""
  accuracy = metrics.ConfusionScore('accuracy', num_classes=2, positive_class_id=1)
  accuracy.update_state(tf.constant([1, -1, 0]), _logits([1, 0, 1]))
  assert float(accuracy.result()) == pytest.approx(0.5)
  accuracy.reset_state()
  accuracy.update_state(tf.constant([1, 1, 0]), _logits([1, 0, 1]),
                        sample_weight=tf.constant([1.0, 0.0, 0.0]))
  assert float(accuracy.result()) == 1.0


def _task(name, **overrides):
  from tests.conftest import tiny_experiment  # pylint: disable=g-import-not-at-top
  return tiny_experiment(spec=glue.TASKS[name], **overrides).task


def test_each_task_reports_its_declared_metrics_per_split():
  """MRPC: accuracy, F1, glue_score, cells and loss; CoLA: Matthews; MNLI: each score twice,
  prefixed by its split; STS-B: only the loss here (correlations need every prediction)."""
  mrpc = metrics.task_metrics(_task('mrpc'), training=False)
  assert [m.name for m in mrpc] == ['accuracy', 'f1', 'glue_score', 'confusion/true0_pred0',
                                    'confusion/true0_pred1', 'confusion/true1_pred0',
                                    'confusion/true1_pred1', 'validation_loss']
  assert [m.name for m in metrics.task_metrics(_task('mrpc'), training=True)] == [
      'accuracy', 'f1', 'glue_score']
  assert [m.name for m in metrics.task_metrics(_task('cola'), training=True)] == [
      'matthews', 'glue_score']
  mnli = metrics.task_metrics(_task('mnli'), training=False)
  names = [m.name for m in mnli]
  assert names[:2] == ['dev_matched/accuracy', 'dev_matched/glue_score']
  assert 'dev_mismatched/confusion/true2_pred1' in names and len(names) == 2 * (2 + 9 + 1)
  assert {m.split_index for m in mnli} == {0, 1}
  assert [m.name for m in metrics.task_metrics(_task('stsb'), training=False)] == [
      'validation_loss']


def test_confusion_counts_are_the_matrix_cells_and_only_at_evaluation():
  """Evaluation metrics expose each cell (true, predicted) under its tag."""
  evaluation = metrics.task_metrics(_task('mrpc'), training=False)
  metrics.update_metrics(evaluation, tf.constant(LABELS), _logits(PREDICTIONS))
  cells = {m.name: float(m.result()) for m in evaluation if m.name.startswith('confusion/')}
  assert cells == {'confusion/true0_pred0': 2.0, 'confusion/true0_pred1': 2.0,
                   'confusion/true1_pred0': 1.0, 'confusion/true1_pred1': 3.0}


def test_split_ids_route_rows_to_their_split_metrics():
  """MNLI's two dev sets in one batch: each split's accuracy counts its own rows only."""
  evaluation = metrics.task_metrics(_task('mnli'), training=False)
  split_ids = tf.constant([0] * 4 + [1] * 8)  # 4 matched rows, then 8 mismatched.
  metrics.update_metrics(evaluation, tf.constant(LABELS_3), _logits(PREDICTIONS_3, 3),
                         split_ids)
  results = {m.name: float(m.result()) for m in evaluation}
  assert results['dev_matched/accuracy'] == pytest.approx(3 / 4)
  assert results['dev_mismatched/accuracy'] == pytest.approx(4 / 8)
  assert results['dev_mismatched/confusion/true2_pred1'] == 2.0


def _mirrored_f1_and_matthews_case():
  strategy = two_cpus.mirrored_strategy()
  with strategy.scope():
    f1 = metrics.ConfusionScore('f1', num_classes=2, positive_class_id=1)
    matthews = metrics.ConfusionScore('matthews', num_classes=2, positive_class_id=1)
  labels, predictions = LABELS + [1], PREDICTIONS + [1]  # tp=4 fp=2 fn=1 tn=2
  dataset = tf.data.Dataset.from_tensor_slices((labels, _logits(predictions))).batch(4)
  for batch_labels, batch_logits in strategy.experimental_distribute_dataset(dataset):
    strategy.run(f1.update_state, (batch_labels, batch_logits))
    strategy.run(matthews.update_state, (batch_labels, batch_logits))
  assert float(f1.result()) == pytest.approx(8 / 11, abs=1e-6)
  assert float(matthews.result()) == pytest.approx(
      sklearn_metrics.matthews_corrcoef(labels, predictions), abs=1e-6)


def _mirrored_bfloat16_counts_case():
  import tf_keras  # pylint: disable=g-import-not-at-top
  strategy = two_cpus.mirrored_strategy()
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    with strategy.scope():
      evaluation = metrics.task_metrics(_task('mrpc'), training=False)
    dataset = tf.data.Dataset.from_tensor_slices((LABELS, _logits(PREDICTIONS))).batch(4)
    for batch_labels, batch_logits in strategy.experimental_distribute_dataset(dataset):
      strategy.run(lambda l, p: metrics.update_metrics(evaluation, l, p),
                   (batch_labels, batch_logits))
    results = tf.function(lambda: {m.name: m.result() for m in evaluation})()
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  assert float(results['confusion/true0_pred1']) == 2.0
  assert float(results['confusion/true1_pred1']) == 3.0
  assert float(results['accuracy']) == pytest.approx(5 / 8)


def _stsb_evaluation(strategy):
  """A tiny STS-B model evaluated through the Task's hooks (each replica's predictions
  gathered): the logs, the gathered predictions and labels, the batch count, the loss, and
  the same model's predictions and labels made in one batch."""
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from tests.conftest import FIXTURE_GLUE  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  params = _task('stsb', tsv_dir=os.path.join(FIXTURE_GLUE(), 'STS-B'), eval_batch_size=6)
  with strategy.scope():
    task = task_factory.get_task(params)
    model = task.build_model()
    evaluation = task.build_metrics(training=False)
  dataset = strategy.distribute_datasets_from_function(
      lambda context: task.build_inputs(params.validation_data, context))
  step = tf.function(lambda batch: strategy.run(
      lambda b: task.validation_step(b, model, evaluation), (batch,)))
  state = None
  batches = 0
  for batch in dataset:
    outputs = step(batch)
    state = task.aggregate_logs(state, tf.nest.map_structure(
        strategy.experimental_local_results, outputs))
    batches += 1
  logs = task.reduce_aggregated_logs(state)
  gathered = {name: np.concatenate(values) for name, values in state.items()}
  whole = task.build_inputs(params.validation_data.replace(global_batch_size=1000))
  features, labels = next(iter(whole))
  single = model(features, training=False).numpy().reshape(-1)
  return (logs, gathered, batches, float(evaluation[0].result()), single, labels.numpy())


def _check_gathered(logs, gathered, single, gold):
  """Every dev row was gathered once, in order; the logs are scipy's over them."""
  np.testing.assert_array_equal(gathered['labels'], gold)
  np.testing.assert_allclose(gathered['predictions'], single, rtol=1e-5, atol=1e-6)
  predicted, gold = gathered['predictions'].astype(np.float64), gold.astype(np.float64)
  assert logs['pearson'] == pytest.approx(stats.pearsonr(predicted, gold)[0], abs=1e-9)
  assert logs['spearman'] == pytest.approx(stats.spearmanr(predicted, gold)[0], abs=1e-9)
  assert logs['glue_score'] == pytest.approx((logs['pearson'] + logs['spearman']) / 2)


def _mirrored_correlations_case():
  logs, gathered, batches, loss, single, gold = _stsb_evaluation(two_cpus.mirrored_strategy())
  assert len(gold) == 20 and batches == 4  # 20 rows in batches of 6: the last one uneven.
  _check_gathered(logs, gathered, single, gold)
  assert loss == pytest.approx(np.mean((single - gold) ** 2), rel=1e-5)


def _mirrored_cases():
  _mirrored_f1_and_matthews_case()
  _mirrored_bfloat16_counts_case()
  _mirrored_correlations_case()


def test_metrics_are_exact_across_two_replicas():
  """In one 2-CPU child: (1) 2 replicas, uneven last batch (one replica gets nothing): the
  counts sum exactly, and F1 and Matthews equal the single-device values; (2) confusion cells
  read correctly in a tf.function under 2 replicas and the mixed_bfloat16 policy; (3) STS-B,
  batches of 6 over 20 dev rows (the last one uneven): every prediction is gathered once, in
  order, Pearson and Spearman equal scipy's over them, and the squared-error loss numpy's."""
  two_cpus.run(_mirrored_cases)


def test_correlations_on_one_device_are_those_of_every_prediction():
  """The same on the one CPU device a user has."""
  logs, gathered, _, _, single, gold = _stsb_evaluation(tf.distribute.get_strategy())
  _check_gathered(logs, gathered, single, gold)


def test_validation_loss_is_per_labeled_example():
  """Mean cross-entropy over labeled rows, however the rows were batched."""
  logits = tf.constant([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, -3.0]])
  labels = tf.constant([0, 1, 0, -1])
  want = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0)), np.log(2.0)])
  loss = metrics.MeanCrossEntropy(name=configs.VALIDATION_LOSS)
  loss.update_state(labels[:1], logits[:1])
  loss.update_state(labels[1:], logits[1:])  # Uneven batches: still per example.
  assert float(loss.result()) == pytest.approx(want, rel=1e-6)
  squared = metrics.MeanSquaredError()
  squared.update_state(tf.constant([1.0, float('nan'), 3.0]), tf.constant([[2.0], [9.0], [3.0]]))
  assert float(squared.result()) == pytest.approx(0.5)  # (1 + 0) / 2: the NaN row is out.


def test_every_glue_task_declares_glues_own_metrics():
  """Each GLUE task declares GLUE's metric(s): their mean is the task's GLUE score."""
  declared = {name: spec.metrics for name, spec in glue.TASKS.items()}
  assert declared == {'cola': ('matthews',), 'sst2': ('accuracy',), 'mrpc': ('accuracy', 'f1'),
                      'stsb': ('pearson', 'spearman'), 'qqp': ('accuracy', 'f1'),
                      'mnli': ('accuracy',), 'qnli': ('accuracy',), 'rte': ('accuracy',),
                      'wnli': ('accuracy',)}
