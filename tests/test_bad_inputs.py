"""Bad input of every new kind gets one line naming the file and line, key or flag: labels and
scores outside the task's, a test file given for training, a file of the other number of
sentences than the export takes, an unknown split, a GLUE_DIR without the task's folder, and
the edges that used to end in a traceback."""

import os
import shutil

import pytest

from mrpc_task import data
from mrpc_task import glue
from mrpc_task import predict
from mrpc_task import runs
from mrpc_task import tsv_reader
from mrpc_task.export import TaskInfo
from mrpc_task.tuning import evaluation
from tests import cli_batch
from tests.conftest import FIXTURE_GLUE, tiny_experiment

STSB = TaskInfo(name='stsb', label_kind='score', score_range=[0.0, 5.0],
                metrics=['pearson', 'spearman'], text_columns=['sentence1', 'sentence2'],
                label_column='score')
SST2 = TaskInfo(name='sst2', class_names=['negative', 'positive'], label_vocabulary=['0', '1'],
                metrics=['accuracy'], inputs=['sentence'], text_columns=['sentence'])


def _read(text, info, name='in.tsv'):
  return list(predict.read_examples(text.encode().splitlines(keepends=True), name, info))


@pytest.mark.parametrize('text, message', [
    ('sentence1\tsentence2\tscore\na\tb\t5.5\n',
     r"in\.tsv:2: score 5\.5 is outside the task's range \[0, 5\] \(task\.score_range\)"),
    ('sentence1\tsentence2\tscore\na\tb\thigh\n', r"in\.tsv:2: score 'high' is not a number"),
    ('sentence1\tsentence2\tscore\na\tb\tnan\n', r"in\.tsv:2: score 'nan' is not a finite"),
])
def test_scores_outside_the_range_or_not_numbers_name_file_and_line(text, message):
  with pytest.raises(tsv_reader.TsvFormatError, match=message):
    _read(text, STSB)


def test_a_label_outside_the_tasks_labels_names_file_and_line(tmp_path):
  """RTE's files spell labels out: a 0/1 label (another task's) is refused with the line."""
  path = tmp_path / 'train.tsv'
  path.write_text('index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\t1\n')
  with pytest.raises(tsv_reader.TsvFormatError,
                     match=r"train\.tsv:3: label '1' is not one of \['entailment', "
                           r"'not_entailment'\]"):
    tsv_reader.read_examples(str(path), text_columns=['sentence1', 'sentence2'],
                             label_column='label', labels=tsv_reader.LabelSpec.classes(
                                 {'entailment': 0, 'not_entailment': 1}))


def test_a_test_file_given_for_training_says_it_is_unlabeled(tmp_path, monkeypatch):
  """GLUE's test.tsv (index and texts, no label) as training data, with a header or in
  CoLA's headerless layout: the message says what the file looks like."""
  folder = tmp_path / 'MRPC'
  shutil.copytree(os.path.join(FIXTURE_GLUE(), 'MRPC'), folder)
  shutil.copy(folder / 'test.tsv', folder / 'train.tsv')
  params = tiny_experiment(monkeypatch, tsv_dir=str(folder))
  with pytest.raises(tsv_reader.TsvFormatError,
                     match=r"train\.tsv:1: header .* has no label column 'Quality': it looks "
                           r"like an unlabeled file \(GLUE's test\.tsv\)"):
    data.build_dataset(params.task.train_data)
  cola = tmp_path / 'CoLA'
  shutil.copytree(os.path.join(FIXTURE_GLUE(), 'CoLA'), cola)
  shutil.copy(cola / 'test.tsv', cola / 'train.tsv')
  params = tiny_experiment(monkeypatch, spec=glue.TASKS['cola'], tsv_dir=str(cola))
  with pytest.raises(tsv_reader.TsvFormatError,
                     match=r'train\.tsv:1: 2 columns, expected 4: this file starts with a header '
                           r"line \(GLUE's test\.tsv\?\)"):
    data.build_dataset(params.task.train_data)


def test_a_file_of_the_other_number_of_sentences_names_the_signature():
  """A pair file sent to a one-sentence export, and the reverse, in TSV and JSON lines: the
  message names the inputs the export takes."""
  with pytest.raises(predict.PredictInputError,
                     match=r'in\.tsv:1: the export takes 1 text\(s\), serving_default\(sentence\), '
                           r"but the input has 2: \['sentence1', 'sentence2'\]"):
    _read('sentence1\tsentence2\na\tb\n', SST2)
  with pytest.raises(predict.PredictInputError,
                     match=r'the export takes 2 text\(s\), serving_default\(sentence1, '
                           r"sentence2\), but the input has 1: \['sentence'\]"):
    _read('index\tsentence\n0\ta b\n', STSB)
  with pytest.raises(predict.PredictInputError, match=r'serving_default\(sentence\)'):
    _read('{"sentence1": "a", "sentence2": "b"}\n', SST2)
  with pytest.raises(predict.PredictInputError, match=r'serving_default\(sentence1, sentence2\)'):
    _read('{"sentence": "a"}\n', STSB)


def test_an_unknown_split_lists_the_tasks(monkeypatch):
  params = tiny_experiment(monkeypatch, spec=glue.TASKS['mnli'], tsv_dir='/x')
  with pytest.raises(evaluation.UnknownDataError,
                     match="data 'dev': this task has dev_matched, dev_mismatched, selection, "
                           'train'):
    evaluation.named_data(params.task, 'dev')


def test_a_glue_dir_without_the_tasks_folder_is_named(tmp_path, monkeypatch):
  """GLUE_DIR set, but no MNLI/ in it: the folder is named, with GLUE's layout."""
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('MNLI_DATA_DIR', raising=False)
  monkeypatch.setenv(glue.GLUE_DIR_ENV, str(tmp_path))
  params = exp_factory.get_exp_config('bert_mnli_minilm').task.train_data
  with pytest.raises(data.DataSourceError,
                     match=rf"task\.train_data\.tsv_dir='{tmp_path}/MNLI': no such folder .*a "
                           r'GLUE_DIR must hold the task\'s GLUE folder'):
    data.build_dataset(params)


def test_a_training_file_that_is_a_folder_is_named(tmp_path):
  (tmp_path / 'train.tsv').mkdir()
  with pytest.raises(tsv_reader.TsvFormatError, match=r'train\.tsv: is a folder, not a TSV file'):
    tsv_reader.read_examples(str(tmp_path / 'train.tsv'), text_columns=['a'], label_column='',
                             labels=tsv_reader.LabelSpec.scores())


@pytest.mark.parametrize('content, message', [
    ('task: [1, 2\n', r'params\.yaml: not valid YAML'),
    ('- a list\n', r'params\.yaml: not a config \(a YAML mapping of keys\)'),
])
def test_a_damaged_params_yaml_is_named(tmp_path, content, message):
  (tmp_path / 'params.yaml').write_text(content)
  runs.record_experiment(str(tmp_path), 'bert_mrpc_tiny')
  with pytest.raises(runs.ModelDirError, match=message):
    runs.load_run_config(str(tmp_path))


@pytest.mark.slow
def test_edges_that_ended_in_a_traceback_are_one_line(tmp_path):
  """`tfm`: a negative --sort_chunk_size, a damaged params.yaml and an unclosed bracket in a
  gin file each end in one line, exit 2 or 1, no traceback."""
  run = tmp_path / 'run'
  run.mkdir()
  (run / 'params.yaml').write_text('task: [1, 2\n')
  (tmp_path / 'bad.gin').write_text('a.b = [1, 2\n')
  cases = [
      (['export', f'--model_dir={run}', f'--export_dir={tmp_path}/e', '--sort_chunk_size=-1'],
       2, 'tfm export: error: flag --sort_chunk_size=-1: -1 is not a non-negative integer'),
      (['export', '--experiment=bert_mrpc_tiny', f'--model_dir={run}',
        f'--export_dir={tmp_path}/e'], 1, f'tfm export: error: {run}/params.yaml: not valid YAML'),
      (['train_experiment', '--experiment=bert_mrpc_tiny', '--mode=train',
        f'--model_dir={tmp_path}/m', f'--gin_file={tmp_path}/bad.gin'], 1,
       f'tfm train_experiment: error: gin file {tmp_path}/bad.gin: '),
  ]
  results = cli_batch.run([{'argv': argv} for argv, _, _ in cases])
  for (argv, code, start), result in zip(cases, results):
    assert 'Traceback' not in result['stderr'], result['stderr'][-3000:]
    assert result['code'] == code and result['stderr'].strip().splitlines()[-1].startswith(
        start), (argv, result['stderr'][-1000:])
