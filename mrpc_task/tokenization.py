"""Raw texts (one sentence or a pair) -> BERT inputs, in the TensorFlow graph.

One `TextPreprocessor` serves both the input pipeline and the exported SavedModel, so
training and serving cannot tokenize differently. It is Model Garden's
`FastWordpieceBertTokenizer` (tensorflow-text's fast WordPiece) followed by `BertPackInputs`.

Truncation: `BertPackInputs` trims round-robin, one word piece at a time from each segment in
turn, so when a pair is too long both sentences keep a share (the shorter one keeps all of its
pieces if it fits in half the budget) and `[CLS]`, both `[SEP]`s are always kept.
"""

import functools
from typing import Callable

import tensorflow as tf
from official.nlp.modeling import layers

# What `TextPreprocessor` returns and BERT models read: int32 [batch, seq] each.
FEATURE_NAMES = ('input_word_ids', 'input_mask', 'input_type_ids')


class TextPreprocessor(tf.Module):
  """Tokenizes and packs batches of one sentence, or of (sentence1, sentence2) pairs."""

  def __init__(self, *, vocab_file: str, lower_case: bool, seq_length: int):
    """Builds the tokenizer and packer.

    Args:
      vocab_file: WordPiece vocab, one token per line; must hold [CLS], [SEP], [PAD], [MASK].
      lower_case: lower-case and strip accents before WordPiece (uncased models).
      seq_length: length of every packed sequence, special tokens included.

    Raises:
      FileNotFoundError: `vocab_file` does not exist.
    """
    super().__init__(name='text_preprocessor')
    if not tf.io.gfile.exists(vocab_file):
      raise FileNotFoundError(f'vocab_file={vocab_file!r} does not exist')
    self.tokenizer = layers.FastWordpieceBertTokenizer(
        vocab_file=vocab_file, lower_case=lower_case)
    self.special_tokens = self.tokenizer.get_special_tokens_dict()
    self.seq_length = seq_length
    self.packer = layers.BertPackInputs(
        seq_length=seq_length, special_tokens_dict=self.special_tokens)

  def tokenize(self, sentences: tf.Tensor) -> tf.RaggedTensor:
    """Strings [batch] -> word-piece ids, ragged [batch, words, pieces]."""
    return self.tokenizer(sentences)

  @tf.autograph.experimental.do_not_convert  # See `traced`.
  def __call__(self, *texts: tf.Tensor) -> dict:
    """Strings [batch], one tensor per text (1 or 2) -> `input_word_ids`, `input_mask`,
    `input_type_ids`, int32 [batch, seq]; a second text gets segment id 1."""
    return self.packer([self.tokenize(text) for text in texts])

  @functools.lru_cache(maxsize=None)
  def traced(self, num_texts: int) -> Callable[..., dict]:
    """`self(*texts)` as one `tf.function` for `num_texts` string vectors, traced once.

    Tracing the tokenizer and packer takes 1-2 s (tensorflow-text's ragged checks); an input
    pipeline that calls this instead of `self` inside its `map` reuses the trace, so every
    pipeline of a process after the first starts at once. `__call__` is never converted by
    AutoGraph (here or inside an export's serving function): it has no Python control flow on
    tensors, and converting Model Garden's tokenizer layers tripled the trace.
    """
    return tf.function(self.__call__,
                       input_signature=[tf.TensorSpec([None], tf.string)] * num_texts)


@functools.lru_cache(maxsize=8)
def _shared(vocab_file: str, lower_case: bool, seq_length: int, stamp) -> TextPreprocessor:
  del stamp  # Part of the key only: a vocab file rewritten in place gets a new preprocessor.
  return TextPreprocessor(vocab_file=vocab_file, lower_case=lower_case, seq_length=seq_length)


def shared_preprocessor(*, vocab_file: str, lower_case: bool,
                        seq_length: int) -> TextPreprocessor:
  """One `TextPreprocessor` per (vocab file as it is now, casing, length) in this process:
  the input pipelines of a run (training, evaluation, each evaluated split) share its
  tokenizer and its traced function (`traced`)."""
  if not tf.io.gfile.exists(vocab_file):
    raise FileNotFoundError(f'vocab_file={vocab_file!r} does not exist')
  stat = tf.io.gfile.stat(vocab_file)
  return _shared(vocab_file, lower_case, seq_length, (stat.length, stat.mtime_nsec))


def count_vocab(vocab_file: str) -> int:
  """Number of tokens (lines) in a WordPiece vocab file."""
  with tf.io.gfile.GFile(vocab_file) as f:
    return sum(1 for _ in f)


def trim_to_longest(features: dict, multiple: int = 1) -> dict:
  """Drops the padding columns every row of a packed batch shares, keeping a width that is a
  multiple of `multiple` (or the packed width).

  The encoder masks padding, so logits do not change; a batch of short pairs then costs only
  its own length. Keeps at least 3 columns, so an empty batch still has a valid shape.
  Features that are not per-token (rank 1, e.g. a split id) are left as they are.
  """
  lengths = tf.reduce_sum(tf.cast(features['input_mask'], tf.int32), axis=-1)
  longest = tf.maximum(tf.reduce_max(tf.concat([lengths, [3]], axis=0)), 3)
  longest = (longest + multiple - 1) // multiple * multiple
  return {name: value[:, :longest] if value.shape.rank == 2 else value
          for name, value in features.items()}
