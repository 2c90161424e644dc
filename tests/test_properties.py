"""Property-based tests (hypothesis): the TSV reader and tokenize + pack invariants."""

import functools
import os
import tempfile

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import tensorflow as tf

from mrpc_task import tokenization
from mrpc_task import tsv_reader
from tests.conftest import read_mrpc, FIXTURE_VOCAB

# Sentence text: any Unicode but the separators the format reserves (tab, newlines), and
# surrogates (not encodable in UTF-8). Leading/trailing whitespace is stripped on read.
_TEXT = st.text(
    st.characters(blacklist_categories=('Cs',), blacklist_characters='\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'),
    min_size=1, max_size=40).filter(lambda s: s.strip())
_ROWS = st.lists(st.tuples(st.sampled_from(['0', '1']), _TEXT, _TEXT), min_size=1, max_size=8)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=_ROWS, crlf=st.booleans(), bom=st.booleans())
def test_tsv_reader_round_trips_any_text(rows, crlf, bom):
  """Whatever the sentences hold (quotes included), every row reads back as written."""
  newline = '\r\n' if crlf else '\n'
  lines = ['Quality\t#1 ID\t#2 ID\t#1 String\t#2 String'] + [
      f'{label}\t{i}\t{i}\t{first}\t{second}' for i, (label, first, second) in enumerate(rows)]
  with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, 'train.tsv')
    with open(path, 'wb') as f:
      f.write((('\ufeff' if bom else '') + newline.join(lines) + newline).encode('utf-8'))
    pairs = read_mrpc(path)
  assert pairs.labels == [int(label) for label, _, _ in rows]
  assert pairs.sentence1 == [first.strip() for _, first, _ in rows]
  assert pairs.sentence2 == [second.strip() for _, _, second in rows]
  assert not pairs.skipped


@functools.lru_cache(maxsize=None)
def _preprocessor(seq_length):
  return tokenization.TextPreprocessor(
      vocab_file=FIXTURE_VOCAB, lower_case=True, seq_length=seq_length)


_WORDS = st.lists(st.sampled_from(['the', 'cat', 'cats', 'goodbye', 'zebra', '"', '.', 'É',
                                   '東', '🙂', '']), max_size=30).map(' '.join)


_SENTENCE = st.one_of(_WORDS, st.text(max_size=60))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(_SENTENCE, _SENTENCE), min_size=1, max_size=8),
       seq_length=st.integers(3, 24))
def test_packing_invariants(pairs, seq_length):
  """In every row of a batch: length is seq_length, [CLS] first, [SEP] closes each segment,
  mask and type ids agree (~700 random pairs, in batches as the input pipeline packs them)."""
  pre = _preprocessor(seq_length)
  batch = pre(tf.constant([first for first, _ in pairs]),
              tf.constant([second for _, second in pairs]))
  special = pre.special_tokens
  cls, sep, pad = (special['start_of_sequence_id'], special['end_of_segment_id'],
                   special['padding_id'])
  for row in range(len(pairs)):
    ids, mask, types = (batch[k].numpy()[row]
                        for k in ('input_word_ids', 'input_mask', 'input_type_ids'))
    assert ids.shape == mask.shape == types.shape == (seq_length,)
    length = int(mask.sum())
    assert np.array_equal(mask, np.arange(seq_length) < length)  # Ones, then zeros.
    assert ids[0] == cls and length >= 3
    real = ids[:length]
    seps = np.flatnonzero(real == sep)
    assert len(seps) == 2 and seps[1] == length - 1  # One [SEP] per segment, last one closes.
    assert np.all(types[:seps[0] + 1] == 0) and np.all(types[seps[0] + 1:length] == 1)
    assert np.all(ids[length:] == pad) and np.all(types[length:] == 0)
    assert cls not in real[1:]
