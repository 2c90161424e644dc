"""The selection split: stable keys, exact stratified counts, the same pairs in any file order."""

import collections

import farmhash
import pytest
import tensorflow as tf
from official.core import exp_factory

from mrpc_task import configs
from mrpc_task import data
from mrpc_task.tuning import selection
from registry import experiments
from tests.conftest import FIXTURE_MRPC

_INT64_MAX = 2**63 - 1


def _reference_key(sentence1: str, sentence2: str) -> int:
  """The documented key, computed with the farmhash package instead of TensorFlow."""
  first, second = (farmhash.fingerprint64(s) % _INT64_MAX for s in (sentence1, sentence2))
  return farmhash.fingerprint64(f'{min(first, second)}:{max(first, second)}') % _INT64_MAX


def _pairs(rows):
  return tf.data.Dataset.from_tensor_slices({
      'sentence1': [r[0] for r in rows], 'sentence2': [r[1] for r in rows],
      'label': tf.constant([r[2] for r in rows], tf.int32)})


def _as_tuples(dataset):
  return [(p['sentence1'].decode(), p['sentence2'].decode(), int(p['label']))
          for p in dataset.as_numpy_iterator()]


def test_keys_are_farmhash_fingerprints_and_ignore_sentence_order():
  """Each key equals the farmhash package's Fingerprint64 recipe, in either sentence order."""
  sentence1 = ['He said the food was good.', 'a', '', 'Ünïcode — text']
  sentence2 = ['The food was good, he said.', 'b c', 'x', 'other']
  keys = selection.pair_keys(tf.constant(sentence1), tf.constant(sentence2)).numpy()
  swapped = selection.pair_keys(tf.constant(sentence2), tf.constant(sentence1)).numpy()
  assert keys.tolist() == [_reference_key(a, b) for a, b in zip(sentence1, sentence2)]
  assert swapped.tolist() == keys.tolist()


def test_split_is_stratified_exact_and_independent_of_row_order():
  """Per label, round(fraction * n) pairs are selected; shuffling the rows selects the same."""
  rows = [(f'first {i}', f'second {i}', int(i % 3 == 0)) for i in range(200)]
  only = _as_tuples(selection.carve(_pairs(rows), part='only', fraction=0.25))
  rest = _as_tuples(selection.carve(_pairs(rows), part='exclude', fraction=0.25))
  counts = collections.Counter(label for _, _, label in only)
  assert counts == {1: round(0.25 * 67), 0: round(0.25 * 133)}
  assert sorted(only + rest) == sorted(rows)
  assert rest == [row for row in rows if row not in only]  # File order is kept.
  reordered = _as_tuples(selection.carve(_pairs(rows[::-1]), part='only', fraction=0.25))
  assert sorted(reordered) == sorted(only)
  # The pairs selected are those with the smallest keys of their label.
  for label in (0, 1):
    keyed = sorted((_reference_key(a, b), (a, b, y)) for a, b, y in rows if y == label)
    assert {row for _, row in keyed[:counts[label]]} == {r for r in only if r[2] == label}


def test_duplicated_pairs_land_on_one_side():
  """A pair repeated (also with its sentences swapped) is never on both sides of the split."""
  rows = [(f'first {i}', f'second {i}', 1) for i in range(40)]
  rows += [(b, a, y) for a, b, y in rows[:20]] + rows[:20]
  only = {frozenset(r[:2]) for r in _as_tuples(selection.carve(_pairs(rows), part='only',
                                                                fraction=0.2))}
  rest = {frozenset(r[:2]) for r in _as_tuples(selection.carve(_pairs(rows), part='exclude',
                                                                fraction=0.2))}
  assert only and rest and not only & rest


def test_real_mrpc_selection_split(mrpc_data_dir, monkeypatch):
  """MRPC train: 550 of 3,668 pairs (179 + 371, 15% of each label); the rest trains."""
  monkeypatch.setenv('MRPC_DATA_DIR', mrpc_data_dir)
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  params = experiments.hyperparams.override_params_dict(
      params, experiments.template_path('selection'), is_strict=True)
  params.validate()
  counts = {}
  for name in ('train_data', 'validation_data'):
    config = getattr(params.task, name).replace(is_training=False, drop_remainder=False,
                                                global_batch_size=1024)
    labels = tf.concat([label for _, label in data.build_dataset(config)], axis=0).numpy()
    counts[name] = collections.Counter(labels.tolist())
  assert counts['validation_data'] == {0: 179, 1: 371}
  assert counts['train_data'] == {0: 1194 - 179, 1: 2474 - 371}


@pytest.mark.parametrize('key, value, message', [
    ('selection_split', 'train', "must be one of ('', 'exclude', 'only')"),
    ('selection_fraction', 1.0, 'must be in (0, 1)'),
])
def test_bad_selection_settings_name_the_key(key, value, message):
  """A bad selection value fails validation, naming the key and what is allowed."""
  config = configs.TextDataConfig(
      source='tsv', tsv_dir=FIXTURE_MRPC, vocab_file='vocab.txt', selection_split='only')
  with pytest.raises(configs.ConfigError, match=f'data.{key}=.*' + message.replace('(', r'\(')
                     .replace(')', r'\)')):
    config.replace(**{key: value}).validate()


def test_hugging_face_parity_script_holds_out_the_same_pairs(mrpc_data_dir, monkeypatch):
  """bench/hf_parity.py (farmhash, no TensorFlow) selects exactly the pairs carve() does."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from tests.conftest import REPO_ROOT  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(
      'hf_parity', os.path.join(REPO_ROOT, 'bench', 'hf_parity.py'))
  hf_parity = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(hf_parity)
  rows = hf_parity.read_mrpc(os.path.join(mrpc_data_dir, 'train.tsv'))
  rest, held_out = hf_parity.selection_split(rows, 0.15)
  monkeypatch.setenv('MRPC_DATA_DIR', mrpc_data_dir)
  config = exp_factory.get_exp_config('bert_mrpc_tiny').task.train_data.replace(
      is_training=False)
  examples = data.read_examples(config, config.reads[0], data.label_spec(config))
  ours = _as_tuples(selection.carve(examples, part='only', fraction=0.15))
  assert sorted(held_out) == sorted(ours) and len(rest) == 3668 - 550


def test_selection_fractions_of_training_and_evaluation_must_agree(monkeypatch):
  """Evaluating on a larger selection split than training left out would score trained pairs."""
  from tests.conftest import tiny_experiment  # pylint: disable=g-import-not-at-top
  params = tiny_experiment(monkeypatch)
  params.task.train_data.selection_split = 'exclude'
  params.task.validation_data.selection_split = 'only'
  params.task.validation_data.selection_fraction = 0.2
  with pytest.raises(configs.ConfigError, match=r'task.validation_data.selection_fraction=0.2: '
                     r'must equal task.train_data.selection_fraction=0.15'):
    params.task.validate()
