"""The input pipeline: readers, packing, batching, sharding and determinism."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mrpc_task import configs
from mrpc_task import data
from mrpc_task import tsv_reader
from registry import experiments
from tests.conftest import read_mrpc, FIXTURE_MRPC, FIXTURE_VOCAB

HEADER = 'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'


def _data_config(**overrides):
  params = configs.TextDataConfig(
      source='tsv', tsv_dir=FIXTURE_MRPC, tsv_split='dev', vocab_file=FIXTURE_VOCAB,
      seq_length=16, global_batch_size=8, is_training=False, drop_remainder=False)
  return params.replace(**overrides)


def _read(path, **kwargs):
  return read_mrpc(str(path), **kwargs)


def _rows(dataset):
  """All examples of a finite dataset as (ids without padding, label) tuples."""
  rows = []
  for features, labels in dataset:
    for ids, mask, label in zip(features['input_word_ids'].numpy(),
                                features['input_mask'].numpy(), labels.numpy()):
      rows.append((tuple(ids[mask == 1]), int(label)))
  return rows


def test_tsv_reader_reads_quotes_literally(tmp_path):
  """A `"` inside a sentence stays a character; quoting never merges rows."""
  path = tmp_path / 'train.tsv'
  path.write_text(HEADER + '1\t1\t2\t" the cat\tthe " cat\n0\t3\t4\ta dog "\tran\n')
  pairs = _read(path)
  assert pairs.sentence1 == ['" the cat', 'a dog "']
  assert pairs.sentence2 == ['the " cat', 'ran']
  assert pairs.labels == [1, 0]


def test_tsv_reader_accepts_bom_and_crlf(tmp_path):
  """A UTF-8 BOM and Windows line endings read the same as a clean file."""
  path = tmp_path / 'train.tsv'
  path.write_bytes(('\ufeff' + HEADER + '1\t1\t2\tthe cat\tsat\n').replace('\n', '\r\n')
                   .encode('utf-8'))
  pairs = _read(path)
  assert (pairs.sentence1, pairs.sentence2, pairs.labels) == (['the cat'], ['sat'], [1])


def test_tsv_reader_bad_label_names_file_and_line(tmp_path):
  """A bad label fails by default with file:line; 'skip' drops it and says so."""
  path = tmp_path / 'train.tsv'
  path.write_text(HEADER + '1\t1\t2\ta\tb\nx\t3\t4\tc\td\n0\t5\t6\te\tf\n')
  with pytest.raises(tsv_reader.TsvFormatError, match=r"train\.tsv:3: label 'x'"):
    _read(path)
  pairs = _read(path, on_bad_rows='skip')
  assert pairs.labels == [1, 0]
  assert pairs.skipped == ["train.tsv:3: label 'x' is not one of ['0', '1']"]


def test_tsv_reader_ignores_trailing_blank_lines_and_header_spaces(tmp_path):
  """Blank lines at the end and spaces around header names are harmless."""
  path = tmp_path / 'train.tsv'
  path.write_text(HEADER.replace('#2 String', ' #2 String ') + '1\t1\t2\ta\tb\n\n  \n\r\n')
  assert _read(path).sentence2 == ['b']


def test_tsv_reader_rejects_repeated_header_names(tmp_path):
  """A header naming a column twice fails instead of reading the first silently."""
  path = tmp_path / 'train.tsv'
  path.write_text('Quality\t#1 String\t#1 String\t#2 String\n1\ta\tb\tc\n')
  with pytest.raises(tsv_reader.TsvFormatError, match=r"train\.tsv:1: header repeats.*#1 String"):
    _read(path)


@pytest.mark.parametrize('content, message', [
    (b'', r'train\.tsv: the file is empty'),
    (b'Quality\t#1 String\n1\ta\n', r"train\.tsv:1: header .* lacks column\(s\) \['#2 String'\]"),
    (HEADER.encode() + b'1\t1\t2\ta\n', r'train\.tsv:2: 4 columns, header has 5'),
    (HEADER.encode() + b'1\t1\t2\ta\tb\tc\n', r'train\.tsv:2: 6 columns, header has 5'),
    (HEADER.encode() + b'1\t1\t2\tcaf\xe9\tb\n', r'train\.tsv:2: not valid UTF-8 at byte 9'),
    (HEADER.encode() + b'1\t1\t2\t  \tb\n', r"train\.tsv:2: column '#1 String' is blank"),
    (HEADER.encode() + b'2\t1\t2\ta\tb\n', r"train\.tsv:2: label '2' is not one of"),
])
def test_tsv_reader_errors_name_file_and_line(tmp_path, content, message):
  """Each malformed file fails with the file, the line and what is wrong."""
  path = tmp_path / 'train.tsv'
  path.write_bytes(content)
  with pytest.raises(tsv_reader.TsvFormatError, match=message):
    _read(path)


def test_tsv_reader_skip_mode_counts_and_logs_every_bad_row(tmp_path, caplog):
  """on_bad_rows='skip' keeps good rows and logs how many were skipped and why."""
  path = tmp_path / 'train.tsv'
  path.write_bytes(HEADER.encode() + b'1\t1\t2\ta\tb\nx\t1\t2\ta\tb\n0\t1\t2\t\tb\n'
                   b'1\t1\t2\tcaf\xe9\tb\n0\t3\t4\tc\td\n')
  with caplog.at_level('WARNING'):
    pairs = _read(path, on_bad_rows='skip')
  assert pairs.labels == [1, 0] and len(pairs.skipped) == 3
  assert "skipped 3 rows: train.tsv:3: label 'x'" in caplog.text
  assert "train.tsv:4: column '#1 String' is blank" in caplog.text
  assert 'train.tsv:5: not valid UTF-8' in caplog.text


def test_tsv_reader_counts_duplicated_rows(tmp_path, caplog):
  """Repeated rows are kept (they are data) but counted and reported."""
  path = tmp_path / 'train.tsv'
  path.write_text(HEADER + '1\t1\t2\ta\tb\n1\t1\t2\ta\tb\n0\t1\t2\ta\tc\n')
  with caplog.at_level('WARNING'):
    pairs = _read(path)
  assert len(pairs) == 3 and pairs.duplicates == 1
  assert '1 rows repeat an earlier row' in caplog.text


def test_header_only_file_fails_before_training(tmp_path):
  """A split with a header and no rows fails in the pipeline, naming the file."""
  (tmp_path / 'dev.tsv').write_text(HEADER)
  with pytest.raises(tsv_reader.TsvFormatError, match='dev.tsv: no usable rows'):
    data.build_dataset(_data_config(tsv_dir=str(tmp_path)))


def test_missing_vocab_file_names_it(tmp_path):
  """A vocab path with no file fails naming it."""
  with pytest.raises(FileNotFoundError, match='nothing.txt'):
    data.build_dataset(_data_config(vocab_file=str(tmp_path / 'nothing.txt')))


def test_tsv_reader_missing_file_names_it(tmp_path):
  """A missing split file fails with its path."""
  with pytest.raises(FileNotFoundError, match='dev.tsv'):
    _read(tmp_path / 'dev.tsv')


def test_fixture_dev_split_in_order_with_exact_ids():
  """Evaluation data keeps file order; the first pair packs to its exact ids."""
  rows = _rows(data.build_dataset(_data_config()))
  pairs = _read(os.path.join(FIXTURE_MRPC, 'dev.tsv'))
  assert len(rows) == len(pairs) == 20
  assert [label for _, label in rows] == pairs.labels
  vocab = open(FIXTURE_VOCAB).read().split('\n')
  first = [2] + [vocab.index(w) for w in pairs.sentence1[0].split()][:7]
  assert rows[0][0][:len(first)] == tuple(first)


def test_static_batches_have_fixed_shape():
  """Static padding: every feature is int32 [batch, seq_length]."""
  features, labels = next(iter(data.build_dataset(_data_config())))
  for name in ('input_word_ids', 'input_mask', 'input_type_ids'):
    assert features[name].shape == (8, 16) and features[name].dtype == tf.int32
  assert labels.shape == (8,)


def test_bucketed_batches_keep_every_token_and_shrink_padding():
  """Bucketed padding yields the same examples with less padding than static."""
  static = data.build_dataset(_data_config(seq_length=40))
  bucketed = data.build_dataset(
      _data_config(seq_length=40, padding='bucketed', bucket_boundaries=[16, 24]))
  assert sorted(_rows(static)) == sorted(_rows(bucketed))
  padded = sum(int(tf.size(f['input_word_ids'])) for f, _ in bucketed)
  real = sum(int(tf.reduce_sum(f['input_mask'])) for f, _ in static)
  assert real <= padded < 20 * 40  # Less padding than static, never less than the tokens.


def test_trimmed_batches_keep_order_and_every_token():
  """Trimmed padding: same batches as static, in order, cut to their longest pair."""
  static = list(data.build_dataset(_data_config(seq_length=40)))
  trimmed = list(data.build_dataset(_data_config(seq_length=40, padding='trimmed')))
  assert _rows(static) == _rows(trimmed)
  for (full, _), (cut, _) in zip(static, trimmed):
    longest = int(tf.reduce_max(tf.reduce_sum(full['input_mask'], axis=1)))
    assert cut['input_word_ids'].shape[1] == longest
    np.testing.assert_array_equal(cut['input_word_ids'], full['input_word_ids'][:, :longest])


def test_pipelines_run_without_the_autotuner_and_stay_deterministic():
  """Training and evaluation pipelines leave tf.data's autotuner off (deleting an iterator
  otherwise waits for its next wake-up, up to 60 s once it has run a while) and keep their
  order fixed."""
  for is_training in (True, False):
    options = data.build_dataset(_data_config(is_training=is_training)).options()
    assert options.autotune.enabled is False
    assert options.deterministic is True


def test_shards_partition_the_data():
  """Two input pipelines read disjoint shards that together hold every example once."""
  params = _data_config()
  shards = []
  for index in range(2):
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index,
                                         num_replicas_in_sync=2)
    shards.append(_rows(data.build_dataset(params, context)))
  assert len(shards[0]) == len(shards[1]) == 10
  assert sorted(shards[0] + shards[1]) == sorted(_rows(data.build_dataset(params)))


def test_training_order_is_seeded():
  """Same seed, same shuffled batches; another seed, another order."""
  def first_batches(seed):
    params = _data_config(tsv_split='train', is_training=True, drop_remainder=True, seed=seed)
    return [f['input_word_ids'].numpy() for f, _ in data.build_dataset(params).take(3)]
  np.testing.assert_array_equal(first_batches(1), first_batches(1))
  assert not np.array_equal(first_batches(1), first_batches(2))


def test_tfrecord_source(tmp_path):
  """TFRecords of serialized sentence1/sentence2/label read like the TSV rows."""
  path = str(tmp_path / 'dev.tfrecord')
  pairs = _read(os.path.join(FIXTURE_MRPC, 'dev.tsv'))
  with tf.io.TFRecordWriter(path) as writer:
    for first, second, label in zip(pairs.sentence1, pairs.sentence2, pairs.labels):
      feature = {
          'sentence1': tf.train.Feature(bytes_list=tf.train.BytesList(value=[first.encode()])),
          'sentence2': tf.train.Feature(bytes_list=tf.train.BytesList(value=[second.encode()])),
          'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
      }
      writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                   .SerializeToString())
  from_records = data.build_dataset(_data_config(source='tfrecord', input_path=path))
  assert _rows(from_records) == _rows(data.build_dataset(_data_config()))


@pytest.mark.usefixtures('tfds_temporary_folders')
def test_tfds_source_with_mock_data(monkeypatch):
  """The TFDS reader maps glue/mrpc features; mocked, so no network."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(data, '_download_hosts_unreachable', lambda builder: False)  # Mocked.
  with tfds.testing.mock_data(num_examples=10):
    rows = _rows(data.build_dataset(_data_config(source='tfds', tfds_split='validation')))
  assert len(rows) == 10
  assert {label for _, label in rows} <= {0, 1}
  assert all(ids[0] == 2 and ids[-1] == 3 for ids, _ in rows)


def test_a_data_folder_that_is_a_file_is_named(tmp_path):
  """MRPC_DATA_DIR pointing at train.tsv itself names the key and says it must be the folder
  (not '.../train.tsv/dev.tsv: no such file')."""
  (tmp_path / 'train.tsv').write_text(HEADER)
  with pytest.raises(data.DataSourceError,
                     match=r"task\.validation_data\.tsv_dir='.*train\.tsv': is a file, not a "
                           r'folder; it must be the GLUE folder holding dev\.tsv'):
    data.build_dataset(_data_config(tsv_dir=str(tmp_path / 'train.tsv')))


def test_cr_only_training_file_says_so(tmp_path):
  """A training file with classic-Mac line endings fails on its header, saying why."""
  (tmp_path / 'dev.tsv').write_bytes(HEADER.replace('\n', '\r').encode() + b'1\t1\t2\ta\tb\r')
  with pytest.raises(tsv_reader.TsvFormatError, match=r'dev\.tsv:1: lines end in CR only'):
    data.build_dataset(_data_config(tsv_dir=str(tmp_path)))


def test_one_class_dev_set_warns_up_front(tmp_path, caplog):
  """A dev file whose pairs all have one label warns, when it is read, that F1 cannot pick
  the best checkpoint; a training file of one class does not."""
  (tmp_path / 'dev.tsv').write_text(HEADER + '0\t1\t2\ta b\tc d\n0\t3\t4\te f\tg h\n')
  data.build_dataset(_data_config(tsv_dir=str(tmp_path)))
  warnings = [r.getMessage() for r in caplog.records if 'best-checkpoint' in r.getMessage()]
  assert len(warnings) == 1
  assert "every one of its 2 examples has label '0'" in warnings[0]
  caplog.clear()
  (tmp_path / 'train.tsv').write_text(HEADER + '0\t1\t2\ta b\tc d\n')
  data.build_dataset(_data_config(tsv_dir=str(tmp_path), tsv_split='train', is_training=True))
  assert not [r for r in caplog.records if 'best-checkpoint' in r.getMessage()]


def _word_ids(features, row):
  return features['input_word_ids'][row].numpy()[features['input_mask'][row].numpy() == 1]


def _segments(ids):
  """([first sentence ids], [second sentence ids]) of one packed pair."""
  sep = [i for i, token in enumerate(ids) if token == 3]
  return tuple(ids[1:sep[0]]), tuple(ids[sep[0] + 1:sep[1]])


def _training_pairs(pair_order, epochs):
  """The (first, second) id sequences of `epochs` passes over the fixture's train split."""
  params = _data_config(tsv_split='train', is_training=True, drop_remainder=False,
                        pair_order=pair_order, seed=5, global_batch_size=4, seq_length=40)
  size = 48 * (2 if pair_order == 'both' else 1) * epochs
  pairs = []
  for features, _ in data.build_dataset(params).take(size // 4):
    pairs += [_segments(_word_ids(features, row)) for row in range(4)]
  return pairs


def test_pair_order_both_reads_every_pair_in_both_orders():
  """`both`: an epoch holds every pair once as written and once swapped."""
  as_is = _training_pairs('as_is', 1)
  both = _training_pairs('both', 1)
  assert sorted(both) == sorted(as_is + [(second, first) for first, second in as_is])


def test_pair_order_random_draws_one_order_per_pair_each_epoch():
  """`random`: each epoch holds every pair once, in one order; orders change between epochs."""
  as_is = set(_training_pairs('as_is', 1))
  random_pairs = _training_pairs('random', 2)
  epochs = [random_pairs[:48], random_pairs[48:]]
  swapped = []
  for epoch in epochs:
    unordered = sorted(tuple(sorted(pair)) for pair in epoch)
    assert unordered == sorted(tuple(sorted(pair)) for pair in as_is)
    swapped.append({pair for pair in epoch if pair not in as_is})
  assert all(10 < len(s) < 38 for s in swapped)  # About half swapped: a fair coin per pair.
  assert swapped[0] != {(b, a) for a, b in swapped[1]} and swapped[0] != swapped[1]
  assert random_pairs == _training_pairs('random', 2)  # Seeded: the same draws again.


def test_pair_order_is_for_symmetric_training_data_only(monkeypatch):
  """Swapping orders fails on evaluation data, on tasks declared order-sensitive (RTE) and on
  one-sentence tasks (SST-2)."""
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  with pytest.raises(configs.ConfigError, match=r'data.pair_order=.both.*only training data'):
    _data_config(pair_order='both').validate()
  monkeypatch.setenv('RTE_DATA_DIR', FIXTURE_MRPC)
  rte = exp_factory.get_exp_config('bert_rte_minilm')
  rte.task.train_data.pair_order = 'random'
  with pytest.raises(configs.ConfigError, match=r"task.train_data.pair_order='random'.*"
                     r'task.symmetric_pairs=false'):
    rte.task.validate()
  sst2 = exp_factory.get_exp_config('bert_sst2_minilm')
  sst2.task.train_data.pair_order = 'both'
  with pytest.raises(configs.ConfigError, match=r'pair_order=.both.: a one-sentence task'):
    sst2.task.validate()
  mrpc = exp_factory.get_exp_config('bert_mrpc_tiny')
  mrpc.task.train_data.pair_order = 'random'
  mrpc.task.validate()
