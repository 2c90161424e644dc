"""Every GLUE task end to end on small files in GLUE's own layouts (tests/glue_layout.py):
registration and data folders, reading, a few training steps with a tiny encoder, evaluation
with the task's own metrics (checked against scikit-learn and scipy on the export's
predictions), export, predict and the leaderboard file."""

import collections
import dataclasses
import io
import os

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sklearn_metrics
from official.core import exp_factory

from mrpc_task import configs
from mrpc_task import export as export_lib
from mrpc_task import glue
from mrpc_task import predict
from mrpc_task import tsv_reader
from tests import glue_layout
from tests import tiny_runs
from tests import cli_batch
from tests.conftest import FIXTURE_GLUE

TASKS = sorted(glue.TASKS)


@pytest.mark.parametrize('task', TASKS)
def test_every_task_is_registered_with_its_data_folders(task, monkeypatch, tmp_path):
  """bert_<task> (BERT-base, the tutorial's recipe) and bert_<task>_minilm exist; data comes
  from TFDS glue/<task>, from GLUE_DIR/<Folder>, or from <TASK>_DATA_DIR, which wins."""
  spec = glue.TASKS[task]
  for variable in [spec.data_dir_env, glue.GLUE_DIR_ENV]:
    monkeypatch.delenv(variable, raising=False)
  for name in (f'bert_{task}', f'bert_{task}_minilm'):
    params = exp_factory.get_exp_config(name)
    params.validate()
    assert params.task.name == task
    assert (params.task.train_data.source, params.task.train_data.tfds_name) == (
        'tfds', f'glue/{task}')
  assert exp_factory.get_exp_config(f'bert_{task}').task.init_checkpoint.startswith('gs://')
  monkeypatch.setenv(glue.GLUE_DIR_ENV, str(tmp_path))
  params = exp_factory.get_exp_config(f'bert_{task}_minilm')
  assert params.task.validation_data.source == 'tsv'
  assert params.task.validation_data.tsv_dir == os.path.join(str(tmp_path), spec.glue_folder)
  monkeypatch.setenv(spec.data_dir_env, '/data/own')
  assert exp_factory.get_exp_config(f'bert_{task}').task.train_data.tsv_dir == '/data/own'


def _examples(info, path, labeled=True):
  """A file of the task read as the export's task info says (no TensorFlow needed)."""
  return tsv_reader.read_examples(
      path, text_columns=info.text_columns, label_column=info.label_column if labeled else '',
      labels=predict.label_spec(info), header=info.header if labeled else ())


@pytest.mark.parametrize('task', TASKS)
def test_each_task_reads_every_row_of_its_files(task):
  """Every file of the task's GLUE layout reads whole with its own columns: training and
  evaluation files with labels in the task's range (CoLA's without a header line; MNLI's two
  dev sets), test files without labels."""
  spec = glue.TASKS[task]
  params = exp_factory.get_exp_config(f'bert_{task}_minilm')
  info = export_lib.TaskInfo.of(params.task)
  folder = os.path.join(FIXTURE_GLUE(), spec.glue_folder)
  train = _examples(info, os.path.join(folder, 'train.tsv'))
  assert len(train) == glue_layout.ROWS['train'] and len(train.texts) == len(spec.text_columns)
  for split in spec.eval_splits:
    dev = _examples(info, os.path.join(folder, f'{split}.tsv'))
    assert len(dev) == (glue_layout.MNLI_DEV_ROWS if task == 'mnli' else glue_layout.ROWS['dev'])
    if spec.kind == 'score':
      assert all(0.0 <= label <= 5.0 for label in dev.labels) and len(set(dev.labels)) > 10
    else:
      assert set(dev.labels) <= set(range(len(spec.class_names)))
  for stem, _ in glue.SUBMISSION_FILES[task]:
    test = _examples(info, os.path.join(folder, f'{stem}.tsv'), labeled=False)
    assert len(test) == glue_layout.ROWS['test'] and test.labels is None


@dataclasses.dataclass
class Run:
  params: configs.TextExperimentConfig
  scores: dict
  model_dir: str
  export_dir: str
  serve: object
  info: export_lib.TaskInfo


@pytest.fixture(scope='session')
def glue_runs(tmp_path_factory):
  """Every GLUE task (bert_<task>_minilm shrunk to a tiny encoder) trained 2 steps on its
  generated folder, evaluated and exported: {task: Run}."""
  from tests.conftest import build_once_per_run  # pylint: disable=g-import-not-at-top
  build_once_per_run(tmp_path_factory, 'glue_runs')
  base = tmp_path_factory.mktemp('glue_runs')
  runs = {}
  for task in TASKS:
    params = tiny_runs.tiny_params(
        f'bert_{task}_minilm', os.path.join(FIXTURE_GLUE(), glue.TASKS[task].glue_folder))
    model_dir, export_dir = str(base / task), str(base / f'{task}_export')
    scores = tiny_runs.train(params, model_dir)
    tiny_runs.export(params, model_dir, export_dir)
    runs[task] = Run(params, scores, model_dir, export_dir, *predict.load_export(export_dir))
  return runs


def _sklearn_scores(metrics, predicted, gold, positive_class_id):
  """Each GLUE metric by scikit-learn / scipy, independently of mrpc_task.metrics."""
  found = {}
  for name in metrics:
    if name == 'accuracy':
      found[name] = sklearn_metrics.accuracy_score(gold, predicted)
    elif name == 'f1':
      found[name] = sklearn_metrics.f1_score(gold, predicted, pos_label=positive_class_id)
    elif name == 'matthews':
      found[name] = sklearn_metrics.matthews_corrcoef(gold, predicted)
    elif name == 'pearson':
      found[name] = stats.pearsonr(np.float64(predicted), np.float64(gold))[0]
    elif name == 'spearman':
      found[name] = stats.spearmanr(np.float64(predicted), np.float64(gold))[0]
  found['glue_score'] = np.mean([found[name] for name in metrics])
  return found


def _predict(run, path, output_format='rows'):
  """The export's rows for a file, through `tfm predict`'s reader and writer."""
  out = io.StringIO()
  with open(path, 'rb') as f:
    stats = predict.predict(run.serve, predict.read_examples(f, path, run.info), out, run.info,
                            output_format=output_format)
  return stats, out.getvalue().splitlines()


@pytest.mark.parametrize('task', TASKS)
def test_each_task_evaluates_with_its_own_metrics(task, glue_runs):
  """The trainer's last evaluation reports exactly the task's scores (per split for MNLI),
  equal to scikit-learn's or scipy's on the predictions it made; the export predicts what
  the trained model did, and `tfm predict` scores labeled input the same way."""
  run = glue_runs[task]
  spec = glue.TASKS[task]
  assert set(configs.score_names(run.params.task)) <= set(run.scores)
  cells = [n for n in run.scores if n.split('/')[-2:-1] == ['confusion']]
  assert len(cells) == (0 if spec.kind == 'score' else
                        len(spec.eval_splits) * len(spec.class_names) ** 2)
  if spec.kind == 'score':  # The trainer saved its gathered predictions for tfm report.
    saved = np.load(os.path.join(run.model_dir, 'eval_predictions.npz'))
    trained = saved['predictions']
    np.testing.assert_allclose(saved['labels'], _examples(
        run.info, os.path.join(FIXTURE_GLUE(), spec.glue_folder, 'dev.tsv')).labels, rtol=1e-6)
  for split in spec.eval_splits:
    path = os.path.join(FIXTURE_GLUE(), spec.glue_folder, f'{split}.tsv')
    gold = _examples(run.info, path).labels
    stats_, rows = _predict(run, path)
    columns = rows[0].split('\t')
    values = [dict(zip(columns, row.split('\t'))) for row in rows[1:]]
    if spec.kind == 'score':
      served = [float(row['score']) for row in values]
      np.testing.assert_allclose(served, trained, atol=1e-5)  # Export = trained model.
      predicted = trained
    else:
      predicted = [run.info.class_names.index(row['class']) for row in values]
      # Each split's confusion cells are this split's predictions counted.
      prefix = configs.split_prefix(split, spec.eval_splits)
      cells = collections.Counter(zip(gold, predicted))
      for (true, guess), count in cells.items():
        assert run.scores[f'{prefix}confusion/true{true}_pred{guess}'] == count
    expected = _sklearn_scores(spec.metrics, predicted, gold, spec.positive_class_id)
    prefix = configs.split_prefix(split, spec.eval_splits)
    for name, value in expected.items():
      assert run.scores[prefix + name] == pytest.approx(value, abs=1e-6), (split, name)
    if spec.kind != 'score':
      for name, value in expected.items():
        assert stats_.scores()[name] == pytest.approx(value, abs=1e-6), (split, name)


@pytest.mark.parametrize('task', TASKS)
def test_each_task_writes_its_leaderboard_file(task, glue_runs):
  """`tfm predict --output_format=glue` on the task's unlabeled test file(s): `index` and
  `prediction`, one row per test row in order, labels spelled as GLUE's files spell them
  (a score in range for STS-B)."""
  run = glue_runs[task]
  spec = glue.TASKS[task]
  for stem, _ in glue.SUBMISSION_FILES[task]:
    path = os.path.join(FIXTURE_GLUE(), spec.glue_folder, f'{stem}.tsv')
    _, lines = _predict(run, path, 'glue')
    assert lines[0] == 'index\tprediction'
    with open(path) as f:
      indexes = [line.split('\t')[0] for line in f.read().splitlines()[1:]]
    assert [line.split('\t')[0] for line in lines[1:]] == indexes
    predictions = [line.split('\t')[1] for line in lines[1:]]
    if spec.kind == 'score':
      assert all(0.0 <= float(p) <= 5.0 and len(p.split('.')[1]) == 3 for p in predictions)
    else:
      assert set(predictions) <= set(spec.vocabulary)


@pytest.mark.slow
def test_glue_submission_writes_the_whole_set(glue_runs, tmp_path):
  """`tfm glue_submission` with the nine exports: the ten task files and AX (from MNLI's
  export), each one row per test row; run again, it refuses to replace the folder."""
  exports = ','.join(f'{glue.TASKS[task].glue_folder}={run.export_dir}'
                     for task, run in glue_runs.items())
  out = tmp_path / 'submission'
  args = {'argv': ['glue_submission', f'--glue_dir={FIXTURE_GLUE()}',
                   f'--export_dirs={exports}', f'--output_dir={out}']}
  result, again = cli_batch.run([args, args])
  assert result['code'] == 0, result['stderr'][-3000:]
  expected = sorted(name for files in glue.SUBMISSION_FILES.values() for _, name in files)
  assert sorted(os.listdir(out)) == sorted(expected + ['AX.tsv'])
  for name in expected:
    rows = (out / name).read_text().splitlines()
    assert rows[0] == 'index\tprediction' and len(rows) == 1 + glue_layout.ROWS['test'], name
  assert len((out / 'AX.tsv').read_text().splitlines()) == 1 + 10
  assert 'Missing for a complete GLUE submission' not in result['stdout']
  assert again['code'] == 1 and again['stderr'].strip().splitlines()[-1] == (
      f"tfm glue_submission: error: --output_dir='{out}' already exists; pass --overwrite to "
      'replace it, or choose another --output_dir')


@pytest.mark.parametrize('task, plots', [
    ('stsb', ['scatter.png']),
    ('mnli', ['confusion_matrix_dev_matched.png', 'confusion_matrix_dev_mismatched.png']),
])
def test_report_plots_each_tasks_own_evaluation(task, plots, glue_runs, tmp_path):
  """`tfm report`: the task's scores per evaluation, then STS-B's predicted-vs-gold scatter of
  its last evaluation (every dev prediction), or MNLI's confusion matrix of each dev set."""
  from mrpc_task import report  # pylint: disable=g-import-not-at-top
  run = glue_runs[task]
  result = report.write_report(run.model_dir, str(tmp_path / 'report'))
  assert [os.path.basename(p) for p in result.written] == (
      ['loss.png', 'learning_rate.png', 'scores.png'] + plots)
  assert result.problems == []
  if task == 'stsb':
    (step, found), why = report.last_predictions(run.model_dir)
    assert why == '' and step == 2 and len(found['dev'][0]) == glue_layout.ROWS['dev']
  else:
    validation = report.read_scalars(os.path.join(run.model_dir, 'validation'))
    (step, matrix), _ = report.last_confusion_matrix(validation, 'dev_mismatched/')
    assert step == 2 and matrix.shape == (3, 3) and matrix.sum() == glue_layout.MNLI_DEV_ROWS
