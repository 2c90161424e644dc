"""The selection split: a fixed share of the training examples, held out for choosing recipes.

Dev is for reporting. Choosing a recipe by its dev score flatters it on dev (408 MRPC pairs,
one pair = 0.25 points), so recipe choices are made on examples carved from the training file
instead, and dev only reports.

How an example is assigned, so that the split is the same on every run, machine and file
order:
- its key is FarmHash Fingerprint64 (`tf.strings.to_hash_bucket_fast`, a fixed function of
  the bytes) of the fingerprints of its two sentences, smaller first: a pair and its swapped
  copy get one key, and identical pairs of one label land on the same side (no duplicate
  leaks across). A one-sentence example's key is that of the pair (sentence, '');
- within each class, the `fraction` of examples with the smallest keys (rounded to the
  nearest count, at least one) form the selection split, so it holds each class in the
  proportion of the whole file. Score labels (regression) form one group. Examples whose key
  ties the last one selected are selected too.
"""

from typing import Dict

from absl import logging
import numpy as np
import tensorflow as tf

from mrpc_task import configs

_ONE_GROUP = 0  # The stratum of every example of a score task.

_KEY_BATCH = 4096
_INT64_MAX = 2**63 - 1


def _fingerprint(strings: tf.Tensor) -> tf.Tensor:
  """Fingerprint64 of each string modulo 2**63 - 1, as int64 (the same on any platform)."""
  return tf.strings.to_hash_bucket_fast(strings, _INT64_MAX)


def pair_keys(sentence1: tf.Tensor, sentence2: tf.Tensor) -> tf.Tensor:
  """The order-independent key of each pair: int64 [n] for string [n] inputs."""
  first, second = _fingerprint(sentence1), _fingerprint(sentence2)
  low, high = tf.minimum(first, second), tf.maximum(first, second)
  both = tf.stack([tf.strings.as_string(low), tf.strings.as_string(high)], axis=-1)
  return _fingerprint(tf.strings.reduce_join(both, axis=-1, separator=':'))


def _group(label: tf.Tensor) -> tf.Tensor:
  """The stratum of a label: its class id, or one group for scores."""
  if label.dtype.is_floating:
    return tf.zeros_like(label, tf.int32) + _ONE_GROUP
  return tf.cast(label, tf.int32)


def _with_keys(examples: tf.data.Dataset) -> tf.data.Dataset:
  def keyed(example):
    second = example.get('sentence2', tf.constant(''))
    key = pair_keys(example['sentence1'][tf.newaxis], second[tf.newaxis])[0]
    return dict(example, selection_key=key, selection_group=_group(example['label']))
  return examples.map(keyed)


def label_thresholds(examples: tf.data.Dataset, fraction: float) -> Dict[int, int]:
  """Per class (one group for scores), the largest key inside the selection split (reads the
  examples once)."""
  keys: Dict[int, list] = {}
  for batch in _with_keys(examples).batch(_KEY_BATCH).as_numpy_iterator():
    for group, key in zip(batch['selection_group'].tolist(), batch['selection_key'].tolist()):
      keys.setdefault(group, []).append(key)
  thresholds = {}
  for label, label_keys in keys.items():
    ordered = np.sort(np.asarray(label_keys, np.int64))
    thresholds[label] = int(ordered[max(1, int(round(fraction * len(ordered)))) - 1])
    logging.info('Selection split, group %d: %d of %d examples', label,
                 int(np.sum(ordered <= thresholds[label])), len(ordered))
  return thresholds


def carve(pairs: tf.data.Dataset, *, part: str, fraction: float) -> tf.data.Dataset:
  """The examples of one side of the selection split, in their original order.

  Args:
    pairs: dicts with `sentence1` (and `sentence2`) strings and `label` (int32 class or
      float32 score), finite.
    part: '' (all pairs, unchanged), 'exclude' (all but the selection split) or 'only'.
    fraction: share of each label's pairs in the selection split, in (0, 1).

  Raises:
    ValueError: an unknown part.
  """
  if part not in configs.SELECTION_PARTS:
    raise ValueError(f'part={part!r}: must be one of {configs.SELECTION_PARTS}')
  if not part:
    return pairs
  thresholds = label_thresholds(pairs, fraction)
  labels = tf.constant(sorted(thresholds), tf.int32)
  limits = tf.constant([thresholds[label] for label in sorted(thresholds)], tf.int64)
  wanted = part == 'only'

  def keep(pair):
    position = tf.argmax(tf.cast(tf.equal(labels, pair['selection_group']), tf.int32))
    selected = pair['selection_key'] <= limits[position]
    return tf.equal(selected, wanted)

  return (_with_keys(pairs).filter(keep)
          .map(lambda pair: {k: v for k, v in pair.items()
                             if k not in ('selection_key', 'selection_group')}))
