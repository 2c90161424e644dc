"""Tokenization and packing reproduce the tutorial and keep the stated truncation rule."""

import numpy as np
import tensorflow as tf

from mrpc_task import tokenization
from tests.conftest import FIXTURE_VOCAB


def test_tutorial_word_pieces(bert_vocab):
  """'Hello TensorFlow!' gives the tutorial's ids with the bert-base-uncased vocab."""
  pre = tokenization.TextPreprocessor(vocab_file=bert_vocab, lower_case=True,
                                              seq_length=12)
  assert pre.tokenize(tf.constant(['Hello TensorFlow!'])).to_list() == [
      [[7592], [23435, 12314], [999]]]


def test_tutorial_packing(bert_vocab):
  """Packing 'hello tensorflow' + 'goodbye tensorflow' gives the tutorial's three rows."""
  pre = tokenization.TextPreprocessor(vocab_file=bert_vocab, lower_case=True,
                                              seq_length=12)
  out = pre(tf.constant(['hello tensorflow']), tf.constant(['goodbye tensorflow']))
  np.testing.assert_array_equal(out['input_word_ids'][0],
                                [101, 7592, 23435, 12314, 102, 9119, 23435, 12314, 102, 0, 0, 0])
  np.testing.assert_array_equal(out['input_mask'][0], [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])
  np.testing.assert_array_equal(out['input_type_ids'][0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
  assert pre.special_tokens == {'vocab_size': 30522, 'start_of_sequence_id': 101,
                                'end_of_segment_id': 102, 'padding_id': 0, 'mask_id': 103}


def test_fixture_vocab_ids_and_unknown():
  """The small vocab maps words, word pieces and unknown words to their exact ids."""
  pre = tokenization.TextPreprocessor(vocab_file=FIXTURE_VOCAB, lower_case=True,
                                              seq_length=10)
  out = pre(tf.constant(['The cats zebra']), tf.constant(['goodbye']))
  # [CLS] the cat ##s [UNK] [SEP] good ##bye [SEP] [PAD]
  np.testing.assert_array_equal(out['input_word_ids'][0], [2, 5, 6, 22, 1, 3, 20, 21, 3, 0])
  np.testing.assert_array_equal(out['input_type_ids'][0], [0, 0, 0, 0, 0, 0, 1, 1, 1, 0])


def test_truncation_keeps_both_segments_and_separators():
  """Too-long pairs are trimmed round-robin: both keep a share, [CLS] and both [SEP] stay."""
  pre = tokenization.TextPreprocessor(vocab_file=FIXTURE_VOCAB, lower_case=True,
                                              seq_length=9)
  long = ' '.join(['cat'] * 20)
  out = pre(tf.constant([long, 'dog']), tf.constant([' '.join(['mat'] * 20), long]))
  # Budget 6 pieces: 3 + 3 for two long segments; a 1-piece segment keeps it, the other 5.
  np.testing.assert_array_equal(out['input_word_ids'][0], [2, 6, 6, 6, 3, 9, 9, 9, 3])
  np.testing.assert_array_equal(out['input_word_ids'][1], [2, 11, 3, 6, 6, 6, 6, 6, 3])
  np.testing.assert_array_equal(out['input_mask'], np.ones((2, 9)))


def test_trim_to_longest_drops_shared_padding_only():
  """Trimming keeps every real token and cuts the columns no row uses."""
  pre = tokenization.TextPreprocessor(vocab_file=FIXTURE_VOCAB, lower_case=True,
                                              seq_length=16)
  out = pre(tf.constant(['the cat', 'a dog ran']), tf.constant(['sat', 'in the park']))
  trimmed = tokenization.trim_to_longest(out)
  assert trimmed['input_word_ids'].shape == (2, 9)
  np.testing.assert_array_equal(trimmed['input_word_ids'], out['input_word_ids'][:, :9])
  assert int(tf.reduce_sum(out['input_mask'][:, 9:])) == 0
  # Rounded up to a multiple, never past the packed width.
  assert tokenization.trim_to_longest(out, 4)['input_word_ids'].shape == (2, 12)
  assert tokenization.trim_to_longest(out, 9)['input_word_ids'].shape == (2, 9)
  assert tokenization.trim_to_longest(out, 10)['input_word_ids'].shape == (2, 10)
  assert tokenization.trim_to_longest(out, 32)['input_word_ids'].shape == (2, 16)
