"""New tasks in a few lines: one registered here trains with `tfm train_experiment`; the
registered GLUE tasks (RTE, QQP) build, and read TFDS through `tfds.testing.mock_data`."""

import json
import os

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from official.core import exp_factory

from mrpc_task import configs
from mrpc_task import data
from registry import experiments
from tests.conftest import FIXTURE_MRPC, FIXTURE_VOCAB, TFM, run_tfm, scalars, tiny_encoder

# --- The recipe of docs/EXTENDING.md, for a made-up task whose TSV files have the columns
# `premise  hypothesis  verdict`, with labels spelled `different` / `same`.
PAIRS_DATA_DIR_ENV = 'SAME_OR_NOT_DATA_DIR'


def same_or_not_data() -> configs.SentencePairDataConfig:
  return configs.SentencePairDataConfig(
      tsv_columns=configs.TsvColumns(sentence1='premise', sentence2='hypothesis',
                                     label='verdict'),
      label_vocabulary=['different', 'same'])


@exp_factory.register_config_factory('tiny_same_or_not')
def tiny_same_or_not() -> configs.SentencePairExperimentConfig:
  return experiments.sentence_pair_experiment(
      encoder=tiny_encoder(), vocab_file=FIXTURE_VOCAB, data=same_or_not_data(),
      class_names=['different', 'same'], train_examples=48, train_batch_size=8,
      eval_batch_size=8, epochs=0.5, learning_rate=1e-3, seq_length=32,
      data_dir_env=PAIRS_DATA_DIR_ENV)
# --- End of the recipe.


def _write_same_or_not_folder(folder):
  """The MRPC fixture rows rewritten in the new task's layout."""
  for split in ('train', 'dev'):
    with open(os.path.join(FIXTURE_MRPC, f'{split}.tsv')) as f:
      rows = [line.rstrip('\n').split('\t') for line in f][1:]
    with open(os.path.join(folder, f'{split}.tsv'), 'w') as f:
      f.write('verdict\tpremise\thypothesis\n')
      for row in rows:
        f.write(f'{["different", "same"][int(row[0])]}\t{row[3]}\t{row[4]}\n')


def test_a_task_registered_in_this_file_trains_with_tfm(tmp_path):
  """`tfm train_experiment --import=tests.test_extending` finds it, trains 3 steps, evaluates."""
  folder = tmp_path / 'same_or_not'
  folder.mkdir()
  _write_same_or_not_folder(str(folder))
  model_dir = tmp_path / 'model'
  os.environ[PAIRS_DATA_DIR_ENV] = str(folder)
  try:
    result = run_tfm([TFM, 'train_experiment', '--import=tests.test_extending',
                      '--experiment=tiny_same_or_not', '--mode=train_and_eval',
                      f'--model_dir={model_dir}'])
  finally:
    del os.environ[PAIRS_DATA_DIR_ENV]
  assert tf.train.latest_checkpoint(str(model_dir)).endswith('ckpt-3')
  evals = scalars(str(model_dir / 'validation'))
  assert set(evals['accuracy']) == {3}
  cells = sum(evals[f'confusion/true{t}_pred{p}'][3] for t in (0, 1) for p in (0, 1))
  assert cells == 20  # Every dev row was read with the new columns and labels.
  assert 'progress | step 3/3 (100%)' in result.stdout
  with open(model_dir / 'params.yaml') as f:
    assert 'verdict' in f.read()


GLUE_TASKS = {
    'bert_rte': ('glue/rte', experiments.RTE_DATA_DIR_ENV, ['entailment', 'not_entailment'], 0),
    'bert_rte_minilm': ('glue/rte', experiments.RTE_DATA_DIR_ENV,
                        ['entailment', 'not_entailment'], 0),
    'bert_qqp': ('glue/qqp', experiments.QQP_DATA_DIR_ENV, ['not_duplicate', 'duplicate'], 1),
    'bert_qqp_minilm': ('glue/qqp', experiments.QQP_DATA_DIR_ENV,
                        ['not_duplicate', 'duplicate'], 1),
}


@pytest.mark.parametrize('name', sorted(GLUE_TASKS))
def test_glue_pair_tasks_are_registered_with_their_data(name, monkeypatch):
  """RTE/QQP: TFDS name, class names, positive class; their own data variable selects TSV."""
  tfds_name, env, classes, positive = GLUE_TASKS[name]
  monkeypatch.delenv(env, raising=False)
  monkeypatch.setenv(experiments.DATA_DIR_ENV, '/not/for/this/task')
  params = exp_factory.get_exp_config(name)
  params.validate()
  assert params.task.train_data.source == 'tfds'  # MRPC's variable does not leak in.
  assert params.task.train_data.tfds_name == tfds_name
  assert list(params.task.class_names) == classes
  assert params.task.positive_class_id == positive
  monkeypatch.setenv(env, '/data/glue/TASK')
  params = exp_factory.get_exp_config(name)
  assert params.task.validation_data.source == 'tsv'
  assert params.task.validation_data.tsv_dir == '/data/glue/TASK'


def test_overriding_one_split_leaves_the_other():
  """Nested data configs are not shared between train_data and validation_data."""
  params = exp_factory.get_exp_config('bert_rte')
  params.override({'task': {'train_data': {'tsv_columns': {'label': 'gold'}}}})
  assert params.task.validation_data.tsv_columns.label == 'label'


@pytest.mark.parametrize('name, keys', [
    ('bert_mrpc_minilm', ('sentence1', 'sentence2')),
    ('bert_rte_minilm', ('sentence1', 'sentence2')),
    ('bert_qqp_minilm', ('question1', 'question2')),
])
def test_tfds_sources_read_through_mock_data(name, keys, monkeypatch):
  """TFDS-backed input (never the network): packed batches with labels in the class range."""
  for env in (experiments.DATA_DIR_ENV, experiments.RTE_DATA_DIR_ENV,
              experiments.QQP_DATA_DIR_ENV):
    monkeypatch.delenv(env, raising=False)
  params = exp_factory.get_exp_config(name).task.validation_data
  assert (params.sentence1_key, params.sentence2_key) == keys
  params.override({'global_batch_size': 4, 'seq_length': 24})
  # Mocked TFDS serves data without any server: nothing to reach.
  monkeypatch.setattr(data, '_download_hosts_unreachable', lambda builder: False)
  with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE):
    batches = list(data.build_dataset(params))
  assert sum(int(labels.shape[0]) for _, labels in batches) == 10
  features, labels = batches[0]
  assert set(features) == {'input_word_ids', 'input_mask', 'input_type_ids'}
  assert features['input_word_ids'].shape[1] <= 24
  assert features['input_word_ids'][0, 0] == 101  # [CLS]
  assert tf.reduce_all((labels >= 0) & (labels < 2))
