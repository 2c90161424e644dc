"""tfm evaluate's scoring: the same numbers as the served model, ensembles and orders included."""

import numpy as np
import pytest
from official.core import task_factory

from mrpc_task.tuning import evaluation
from mrpc_task import export
from mrpc_task import metrics
from mrpc_task import tsv_reader
from tests.conftest import read_mrpc, FIXTURE_MRPC, tiny_experiment


@pytest.mark.parametrize('members, average_orders', [(0, False), (1, True)])
def test_evaluation_scores_what_the_export_serves(monkeypatch, members, average_orders):
  """Accuracy, F1 and loss on dev equal those of the serving module's probabilities."""
  params = tiny_experiment(monkeypatch, seq_length=48)
  params.task.validation_data.padding = 'bucketed'  # Reordered batches: both orders align.
  task = task_factory.get_task(params.task)
  model, *others = [task.build_model() for _ in range(1 + members)]
  scores = evaluation.evaluate(task, model, evaluation.named_data(params.task, 'dev'),
                               members=others, average_orders=average_orders)
  dev = read_mrpc(f'{FIXTURE_MRPC}/dev.tsv')
  module = export.TextServingModule(params.task, model, members=others,
                                            average_orders=average_orders)
  served = module.serve(np.array(dev.sentence1), np.array(dev.sentence2))
  probabilities = served['probabilities'].numpy()
  labels = np.array(dev.labels)
  expected = metrics.scores(labels, probabilities.argmax(-1))
  assert scores['accuracy'] == pytest.approx(expected['accuracy'], abs=1e-6)
  assert scores['f1'] == pytest.approx(expected['f1'], abs=1e-6)
  loss = -np.mean(np.log(probabilities[np.arange(len(labels)), labels]))
  assert scores['validation_loss'] == pytest.approx(loss, abs=1e-4)


def test_named_data_reads_dev_and_the_selection_split_of_train(monkeypatch):
  """'dev' is dev.tsv whole; 'selection' the train file's selection split, only for a run
  that trained without it; 'train' all of the train file; anything else names the task's."""
  params = tiny_experiment(monkeypatch)
  with pytest.raises(evaluation.configs.ConfigError,
                     match="data 'selection': this run trained on its selection split"):
    evaluation.named_data(params.task, 'selection')
  params.task.train_data.selection_split = 'exclude'
  dev = evaluation.named_data(params.task, 'dev')
  chosen = evaluation.named_data(params.task, 'selection')
  whole = evaluation.named_data(params.task, 'train')
  assert [(d.name, d.tsv_split) for d in dev.reads] == [('dev', 'dev')]
  assert [(d.name, d.tsv_split) for d in chosen.reads] == [('selection', 'train')]
  assert chosen.selection_split == 'only'
  assert [(d.name, d.tsv_split) for d in whole.reads] == [('train', 'train')]
  assert (whole.selection_split, whole.is_training) == ('', False)
  with pytest.raises(evaluation.UnknownDataError,
                     match="data 'test': this task has dev, selection, train"):
    evaluation.named_data(params.task, 'test')


def test_named_data_of_mnli_are_its_two_dev_sets(monkeypatch):
  """MNLI names its evaluation splits dev_matched and dev_mismatched, each read on its own
  (TFDS: validation_matched, validation_mismatched)."""
  from mrpc_task import glue  # pylint: disable=g-import-not-at-top
  params = tiny_experiment(monkeypatch, spec=glue.TASKS['mnli'], tsv_dir='')
  assert evaluation.data_names(params.task) == ['dev_matched', 'dev_mismatched', 'selection',
                                                'train']
  mismatched = evaluation.named_data(params.task, 'dev_mismatched')
  assert [(r.name, r.tsv_split, r.tfds_split) for r in mismatched.reads] == [
      ('dev_mismatched', 'dev_mismatched', 'validation_mismatched')]
