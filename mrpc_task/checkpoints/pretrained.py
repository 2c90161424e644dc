"""Restoring a pretrained encoder: from a checkpoint (a converted one: `cache`) or TF Hub.

A checkpoint that does not fit the encoder config must fail before training, naming what did
not match: a silently half-restored encoder trains, but to a much worse model.
"""

import json
import os

from typing import Dict, List, Tuple

from absl import logging
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from mrpc_task import errors

# Where a TF2 checkpoint keeps its object graph: it maps checkpoint keys to variable names.
_OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'

class CheckpointMismatchError(errors.InputError, ValueError):
  """The checkpoint and the encoder config disagree; the message lists the differences."""


class CheckpointReadError(errors.InputError):
  """A checkpoint is missing, damaged or not of the expected kind; the message names it."""


def encoder_from_hub(url: str, key: str = 'task.hub_module_url'):
  """A TF Hub text encoder (URL or local SavedModel folder) as a trainable Keras network.

  Model Garden's own loader (`official.nlp.tasks.utils.get_encoder_from_hub`, the one its
  sentence_prediction task uses): the module takes `input_word_ids`, `input_mask` and
  `input_type_ids` and returns `pooled_output` and `sequence_output`, as TF Hub's BERT
  encoders do.

  Raises:
    CheckpointReadError: nothing loadable there (a missing folder, no network for a URL).
  """
  from official.nlp.tasks import utils  # pylint: disable=g-import-not-at-top  (imports tf_hub)
  if '://' not in url and not tf.io.gfile.isdir(url):
    raise CheckpointReadError(f'{key}={url!r}: no such folder (a TF Hub module is a '
                              'SavedModel folder, or a https:// URL)')
  if '://' not in url and not tf.saved_model.contains_saved_model(url):
    raise CheckpointReadError(f'{key}={url!r}: holds no SavedModel (a TF Hub text encoder)')
  try:
    return utils.get_encoder_from_hub(url)
  except (OSError, ValueError, tf.errors.OpError) as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    raise CheckpointReadError(f'{key}={url!r}: could not load it as a TF Hub text encoder '
                              f'({type(e).__name__}: {first})') from e


def resolve_checkpoint(path: str, key: str = 'task.init_checkpoint') -> str:
  """A checkpoint prefix from a prefix or a directory; fails clearly when there is none."""
  prefix = tf.train.latest_checkpoint(path) if tf.io.gfile.isdir(path) else path
  if not prefix or not tf.io.gfile.exists(prefix + '.index'):
    raise CheckpointReadError(
        f'{key}={path!r}: no checkpoint there (expected PREFIX.index, or a directory '
        'with a `checkpoint` file)')
  return prefix


def damaged(key: str, prefix: str, error: Exception) -> CheckpointReadError:
  """The error for a checkpoint whose files cannot be read (cut short, overwritten...)."""
  first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
  return CheckpointReadError(
      f'{key}={prefix!r}: the checkpoint is damaged or incomplete (its .index or .data files '
      f'cannot be read: {type(error).__name__}: {first}); use another checkpoint')


def checkpoint_reader(prefix: str, key: str):
  """`tf.train.load_checkpoint`, with unreadable files reported as `damaged`."""
  try:
    return tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise damaged(key, prefix, e) from e


def restore_encoder(encoder: tf.Module, path: str, key: str = 'task.init_checkpoint') -> str:
  """Restores `tf.train.Checkpoint(encoder=...)` into `encoder`, every variable or nothing.

  Args:
    encoder: a built encoder (its variables exist).
    path: checkpoint prefix or directory.
    key: config key to name in errors.

  Returns:
    The checkpoint prefix that was restored.

  Raises:
    CheckpointReadError: there is no checkpoint at `path`, or its files are damaged.
    CheckpointMismatchError: a variable has no value in the checkpoint, a value has the wrong
      shape, or the checkpoint holds encoder values the encoder has no variable for; the
      message names each of them. Values outside `encoder` (pretraining heads, counters) are
      ignored.
  """
  prefix = resolve_checkpoint(path, key)
  # Compare names and shapes first: the checkpoint may hold more than the encoder (a
  # save_counter, pretraining heads), which is fine, but every encoder value must match.
  problems = _describe_mismatch(prefix, encoder, key)
  if problems:
    raise CheckpointMismatchError(
        f'{key}={prefix!r} does not fit the encoder of task.model.encoder: '
        + '; '.join(problems))
  try:
    status = tf.train.Checkpoint(encoder=encoder).read(prefix)
  except (tf.errors.OpError, IndexError) as e:
    raise damaged(key, prefix, e) from e
  status.expect_partial()
  try:
    status.assert_existing_objects_matched()
  except AssertionError as e:
    raise CheckpointMismatchError(
        f'{key}={prefix!r} does not fit the encoder of task.model.encoder: {e}') from None
  logging.info('Restored the encoder from %s', prefix)
  return prefix


def _checkpoint_variable_shapes(
    checkpoint_prefix: str, key: str) -> Dict[str, Tuple[int, ...]]:
  """Returns variable full name -> shape of `encoder` in a TF2 checkpoint."""
  reader = checkpoint_reader(checkpoint_prefix, key)
  shapes = reader.get_variable_to_shape_map()
  if _OBJECT_GRAPH_KEY not in shapes:
    return {}
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  try:
    graph.ParseFromString(reader.get_tensor(_OBJECT_GRAPH_KEY))
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise damaged(key, checkpoint_prefix, e) from e
  result = {}
  for node in graph.nodes:
    for attribute in node.attributes:
      key = attribute.checkpoint_key
      if attribute.name == 'VARIABLE_VALUE' and key.startswith('encoder/'):
        result[attribute.full_name] = tuple(shapes[key])
  return result


def _describe_mismatch(checkpoint_prefix: str, encoder: tf.Module, key: str) -> List[str]:
  """Lists variables differing in name or shape between checkpoint and model."""
  in_checkpoint = _checkpoint_variable_shapes(checkpoint_prefix, key)
  if not in_checkpoint:
    return ['the checkpoint has no object-based `encoder` variables']
  in_model = {v.name.split(':')[0]: tuple(v.shape) for v in encoder.variables}
  problems = []
  missing = sorted(set(in_model) - set(in_checkpoint))
  if missing:
    problems.append(f'encoder variables missing from the checkpoint '
                    f'({len(missing)}): ' + ', '.join(missing))
  extra = sorted(set(in_checkpoint) - set(in_model))
  if extra:
    problems.append(f'checkpoint variables not in the encoder ({len(extra)}): '
                    + ', '.join(extra))
  shapes = [f'{name} checkpoint {in_checkpoint[name]} vs encoder '
            f'{in_model[name]}' for name in sorted(in_model)
            if name in in_checkpoint and in_checkpoint[name] != in_model[name]]
  if shapes:
    problems.append(f'shape mismatches ({len(shapes)}): ' + ', '.join(shapes))
  return problems


# Encoder settings that change how a model runs, not what its weights mean: a checkpoint
# converted with one value restores correctly into an encoder with another.
_HOW_IT_RUNS = ('hidden_dropout_prob', 'attention_dropout_prob', 'dropout_rate',
                'attention_dropout_rate', 'output_range')


def check_encoder_config(checkpoint_prefix: str, encoder_config: dict):
  """Fails when a converted checkpoint's bert_config.json differs from the task's encoder.

  Shapes are caught by restoring; this catches what shapes cannot show, such as the activation
  or dropout, naming every differing key.
  """
  path = os.path.join(os.path.dirname(checkpoint_prefix), 'bert_config.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    converted = json.load(f)
  differences = [
      f'{key}: checkpoint {converted[key]!r}, config {encoder_config.get(key)!r}'
      for key in sorted(converted) if key in encoder_config and encoder_config[key] != converted[key]
      and key not in _HOW_IT_RUNS
  ]
  if differences:
    raise CheckpointMismatchError(
        f'task.model.encoder.bert differs from {path}: ' + '; '.join(differences))
