"""A SavedModel that takes raw sentence pairs and returns logits, probabilities and classes.

Tokenization is inside the graph (its vocab saved as an asset), so a client sends strings and
needs nothing of this package; only `import tensorflow_text` before loading, for its ops.
"""

import json
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras
from official.core import export_base

from mrpc_task import configs
from mrpc_task import pretrained
from mrpc_task import tokenization

SIGNATURE_KEY = 'serving_default'
EXTRA_ASSETS = 'assets.extra'
CLASSES_FILE = 'classes.json'
DEFAULT_SORT_CHUNK_SIZE = 8
_TINY = 1.1754944e-38  # The smallest normal float32: log() of it is finite.


class SentencePairServingModule(export_base.ExportModule):
  """`serve(sentence1, sentence2)` -> logits, probabilities, class_id, class.

  One model returns its own logits. Several models (a probability ensemble) or both sentence
  orders averaged return the mean of their probabilities, and as logits its logarithm (so
  softmax(logits) is that mean): clients read the same four outputs either way.
  """

  def __init__(self, params: configs.SentencePairTaskConfig, model: tf_keras.Model,
               *, trim_padding: bool = True, sort_chunk_size: int = DEFAULT_SORT_CHUNK_SIZE,
               members: Sequence[tf_keras.Model] = (), average_orders: bool = False):
    """Wraps a classifier with the task's tokenizer.

    Args:
      params: the task config (vocab, seq_length, class names).
      model: the classifier; its weights are read from a checkpoint by `export_base.export`.
      trim_padding: pad each request batch only to its longest pair instead of seq_length;
        masking makes the logits the same, and short pairs cost less.
      sort_chunk_size: with trim_padding, order a request's pairs by length and run them in
        chunks of this many, each padded only to its own longest pair (rows come back in
        request order). Batches of 64 MRPC dev pairs then run 1.6x faster than padded to
        their longest (docs/PERFORMANCE.md). 0 runs the request as one batch.
      members: further classifiers of the same task whose probabilities are averaged with
        `model`'s (each one's serving cost is added).
      average_orders: also run each pair with its sentences swapped and average the two
        probabilities (twice the cost); only for tasks with `symmetric_pairs`.

    Raises:
      ValueError: sort_chunk_size is negative, or average_orders on an order-sensitive task.
    """
    if sort_chunk_size < 0:
      raise ValueError(f'sort_chunk_size={sort_chunk_size}: must be >= 0 (0 = off)')
    if average_orders and not params.symmetric_pairs:
      raise configs.ConfigError(
          'average_orders: the task is not declared order-free (task.symmetric_pairs=false), '
          'so swapping its sentences changes what the label means')
    data = params.validation_data
    super().__init__(
        params, model,
        inference_step=lambda features, model: model(features, training=False),
        preprocessor=tokenization.SentencePairPreprocessor(
            vocab_file=data.vocab_file, lower_case=data.lower_case,
            seq_length=data.seq_length))
    self.trim_padding = trim_padding
    self.sort_chunk_size = sort_chunk_size
    self.num_classes = params.model.num_classes
    self.class_names = tf.constant(list(params.class_names))
    self.members = list(members)
    self.average_orders = average_orders

  def encode(self, sentence1: tf.Tensor, sentence2: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The packed model inputs for a request, after checking the two batches match."""
    tf.debugging.assert_equal(
        tf.size(sentence1), tf.size(sentence2),
        message='sentence1 and sentence2 must have the same number of elements')
    features = self.preprocessor(sentence1, sentence2)
    return tokenization.trim_to_longest(features) if self.trim_padding else features

  def logits(self, features: Dict[str, tf.Tensor],
             model: Optional[tf_keras.Model] = None) -> tf.Tensor:
    """float32 logits of packed features (by `model`, default the main one), in
    length-sorted chunks when configured."""
    model = model or self.model
    if not (self.trim_padding and self.sort_chunk_size):
      return tf.cast(self.inference_step(features, model=model), tf.float32)
    lengths = tf.reduce_sum(tf.cast(features['input_mask'], tf.int32), axis=-1)
    order = tf.argsort(lengths, stable=True)
    ordered = {name: tf.gather(value, order) for name, value in features.items()}
    size = self.sort_chunk_size
    chunks = (tf.size(lengths) + size - 1) // size

    def run_chunk(index, outputs):
      chunk = {name: value[index * size:(index + 1) * size] for name, value in ordered.items()}
      logits = self.inference_step(tokenization.trim_to_longest(chunk), model=model)
      return index + 1, outputs.write(index, tf.cast(logits, tf.float32))

    _, outputs = tf.while_loop(
        lambda index, _: index < chunks, run_chunk,
        [tf.constant(0), tf.TensorArray(tf.float32, size=chunks, infer_shape=False,
                                        element_shape=[None, self.num_classes])])
    return tf.gather(outputs.concat(), tf.math.invert_permutation(order))

  def averaged_logits(self, sentence1: tf.Tensor, sentence2: tf.Tensor) -> tf.Tensor:
    """One model's logits, or the log of the mean probability over models and orders."""
    if not self.members and not self.average_orders:
      return self.logits(self.encode(sentence1, sentence2))
    orders = [(sentence1, sentence2)] + ([(sentence2, sentence1)] if self.average_orders
                                         else [])
    probabilities = []
    for first, second in orders:
      features = self.encode(first, second)
      for model in [self.model] + self.members:
        probabilities.append(tf.nn.softmax(self.logits(features, model), axis=-1))
    mean = tf.add_n(probabilities) / len(probabilities)
    return tf.math.log(tf.maximum(mean, _TINY))  # Never log(0) = -inf.

  @tf.function
  def serve(self, sentence1: tf.Tensor, sentence2: tf.Tensor) -> Mapping[str, tf.Tensor]:
    logits = self.averaged_logits(sentence1, sentence2)
    class_id = tf.argmax(logits, axis=-1, output_type=tf.int32)  # Per row, not over the batch.
    return {
        'logits': logits,
        'probabilities': tf.nn.softmax(logits, axis=-1),
        'class_id': class_id,
        'class': tf.gather(self.class_names, class_id),
    }

  def get_inference_signatures(self, function_keys: Dict[str, str]):
    signatures = {}
    for key, signature_name in function_keys.items():
      if key != 'serve_text':
        raise ValueError(f'unknown function key {key!r}; this module exports serve_text')
      signatures[signature_name] = self.serve.get_concrete_function(
          sentence1=tf.TensorSpec([None], tf.string, name='sentence1'),
          sentence2=tf.TensorSpec([None], tf.string, name='sentence2'))
    return signatures


def restore_classifier(model: tf_keras.Model, checkpoint_path: str, *,
                       key: str = '--checkpoint_path', model_name: str = 'the model') -> str:
  """Reads a training checkpoint (`tf.train.Checkpoint(model=...)`) into `model`.

  Returns:
    The checkpoint prefix read.

  Raises:
    pretrained.CheckpointReadError: no checkpoint there, or its files are damaged.
    pretrained.CheckpointMismatchError: it holds no classifier (e.g. an encoder-only
      checkpoint), or one of another architecture; the message names the checkpoint.
  """
  prefix = pretrained.resolve_checkpoint(checkpoint_path, key)
  names = pretrained.checkpoint_reader(prefix, key).get_variable_to_shape_map()
  if not any(name.startswith('model/') for name in names):
    roots = sorted({name.split('/')[0] for name in names if not name.startswith('_')})
    raise pretrained.CheckpointMismatchError(
        f'{key}={prefix!r} holds no classifier (no model/... values; it has {roots}): give a '
        'training checkpoint, e.g. MODEL_DIR/ckpt-N or MODEL_DIR/best_ckpt')
  try:
    status = tf.train.Checkpoint(model=model).read(prefix)
  except (tf.errors.DataLossError, IndexError) as e:
    raise pretrained.damaged(key, prefix, e) from e
  except (ValueError, tf.errors.OpError) as e:
    first = (str(e).strip().splitlines() or [''])[0][:300]
    raise pretrained.CheckpointMismatchError(
        f'{key}={prefix!r} does not fit {model_name} ({first})') from e
  try:
    status.assert_existing_objects_matched().expect_partial()
  except AssertionError as e:
    missing = str(e).count('Unresolved object')
    raise pretrained.CheckpointMismatchError(
        f'{key}={prefix!r} does not fit {model_name}: {missing or "some"} of its objects '
        'have no value in the checkpoint') from e
  return prefix


def export_model(params: configs.SentencePairTaskConfig, model: tf_keras.Model,
                 export_dir: str, checkpoint_path: Optional[str] = None,
                 trim_padding: bool = True,
                 sort_chunk_size: int = DEFAULT_SORT_CHUNK_SIZE,
                 model_name: str = 'the model',
                 members: Sequence[Tuple[tf_keras.Model, str]] = (),
                 average_orders: bool = False) -> str:
  """Writes the SavedModel to `export_dir` (not timestamped) and returns that path.

  Args:
    params: the task config the model was trained with.
    model: a built classifier (`task.build_model()`).
    export_dir: where to write; `tfm export` passes a fresh folder (safe_output).
    checkpoint_path: a training checkpoint (prefix or directory) to read the weights from;
      None exports `model` as it is.
    trim_padding, sort_chunk_size: see `SentencePairServingModule`.
    model_name: how errors name the model the checkpoint must fit.
    members: (built classifier, its checkpoint) of further runs of the same model: the
      export averages their probabilities with `model`'s (see SentencePairServingModule).
    average_orders: average each pair's probabilities over both sentence orders.

  Raises:
    See `restore_classifier`; configs.ConfigError for average_orders on an order-sensitive
    task.
  """
  if checkpoint_path:
    restore_classifier(model, checkpoint_path, model_name=model_name)
  for member, member_checkpoint in members:
    restore_classifier(member, member_checkpoint, key='--members', model_name=model_name)
  module = SentencePairServingModule(params, model, trim_padding=trim_padding,
                                     sort_chunk_size=sort_chunk_size,
                                     members=[member for member, _ in members],
                                     average_orders=average_orders)
  path = export_base.export(
      module, {'serve_text': SIGNATURE_KEY}, export_dir, checkpoint_path=None,
      timestamped=False)
  write_classes(path, list(params.class_names), params.positive_class_id,
                list(params.validation_data.label_vocabulary))
  return path


def write_classes(export_dir: str, class_names: List[str], positive_class_id: int,
                  label_vocabulary: List[str]):
  """Saves the classes beside the SavedModel (`assets.extra/`, TF Serving's place for files
  the server ignores), so `tfm predict` reads labels as the training files spell them and
  scores labeled input as training did (F1 of positive_class_id)."""
  folder = os.path.join(export_dir, EXTRA_ASSETS)
  tf.io.gfile.makedirs(folder)
  with tf.io.gfile.GFile(os.path.join(folder, CLASSES_FILE), 'w') as f:
    json.dump({'class_names': class_names, 'positive_class_id': positive_class_id,
               'label_vocabulary': label_vocabulary}, f)


def read_classes(export_dir: str) -> Optional[Dict[str, object]]:
  """What `write_classes` saved, or None for exports made without it."""
  path = os.path.join(export_dir, EXTRA_ASSETS, CLASSES_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)
