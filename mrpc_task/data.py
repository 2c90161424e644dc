"""The input pipeline: a source of sentence pairs -> packed BERT inputs, batched.

read (TSV / TFDS / TFRecord) -> shard per input pipeline -> tokenize + pack -> cache ->
shuffle + repeat (training) -> batch (static, or bucketed by length and trimmed) -> prefetch.

Pure functions of a `SentencePairDataConfig`; nothing here knows about the Task or the model.
"""

from typing import Optional

from absl import logging
import tensorflow as tf

from mrpc_task import configs
from mrpc_task import tokenization
from mrpc_task import tsv_reader

# Raw pairs are tokenized in batches of this size: the WordPiece op is much faster per batch.
_TOKENIZE_BATCH = 256


def read_pairs(params: configs.SentencePairDataConfig) -> tf.data.Dataset:
  """Unbatched dicts {sentence1, sentence2: string, label: int32} from the configured source.

  Unlabeled inputs (GLUE test.tsv) get label -1.
  """
  if params.source == 'tsv':
    return _read_tsv(params)
  if params.source == 'tfds':
    return _read_tfds(params)
  if params.source == 'tfrecord':
    return _read_tfrecord(params)
  raise configs.ConfigError(f'data.source={params.source!r}: must be one of {configs.SOURCES}')


def _read_tsv(params):
  path = tsv_reader.glue_file(params.tsv_dir, params.tsv_split)
  columns = params.tsv_columns
  pairs = tsv_reader.read_sentence_pairs(
      path,
      sentence1_column=columns.sentence1,
      sentence2_column=columns.sentence2,
      label_column=columns.label,
      label_vocabulary=list(params.label_vocabulary),
      on_bad_rows=params.on_bad_rows)
  if not len(pairs):
    raise tsv_reader.TsvFormatError(f'{path}: no usable rows')
  labels = pairs.labels if pairs.labels is not None else [-1] * len(pairs)
  return tf.data.Dataset.from_tensor_slices({
      'sentence1': tf.constant(pairs.sentence1, tf.string),
      'sentence2': tf.constant(pairs.sentence2, tf.string),
      'label': tf.constant(labels, tf.int32),
  })


def _read_tfds(params):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  try:
    dataset = tfds.load(
        params.tfds_name,
        split=params.tfds_split,
        data_dir=params.tfds_data_dir or None,
        shuffle_files=False)
  except Exception as e:  # pylint: disable=broad-except  (TFDS raises many kinds offline)
    raise RuntimeError(
        f'tfds_name={params.tfds_name!r} split={params.tfds_split!r} could not be loaded '
        f'({type(e).__name__}: {e}). Offline, use local GLUE TSV files instead: set the '
        "experiment's folder variable (MRPC_DATA_DIR=/path/to/glue/MRPC, RTE_DATA_DIR, "
        'QQP_DATA_DIR), or override task.train_data.source=tsv and '
        'task.train_data.tsv_dir=/path (same for task.validation_data).') from e
  return dataset.map(
      lambda example: {
          'sentence1': example[params.sentence1_key],
          'sentence2': example[params.sentence2_key],
          'label': tf.cast(example[params.label_key], tf.int32),
      })


def _read_tfrecord(params):
  files = tf.io.gfile.glob(params.input_path)
  if not files:
    raise FileNotFoundError(f'data.input_path={params.input_path!r} matches no file')
  spec = {
      params.sentence1_key: tf.io.FixedLenFeature([], tf.string),
      params.sentence2_key: tf.io.FixedLenFeature([], tf.string),
      params.label_key: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
  }

  def parse(record):
    example = tf.io.parse_single_example(record, spec)
    return {
        'sentence1': example[params.sentence1_key],
        'sentence2': example[params.sentence2_key],
        'label': tf.cast(example[params.label_key], tf.int32),
    }

  return tf.data.TFRecordDataset(sorted(files)).map(parse)


def encode_pairs(pairs: tf.data.Dataset,
                 preprocessor: tokenization.SentencePairPreprocessor) -> tf.data.Dataset:
  """Pair dicts -> unbatched (features padded to seq_length, label)."""

  def encode(batch):
    return preprocessor(batch['sentence1'], batch['sentence2']), batch['label']

  return (pairs.batch(_TOKENIZE_BATCH)
          .map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .unbatch())


def batch_examples(examples: tf.data.Dataset, params: configs.SentencePairDataConfig,
                   batch_size: int) -> tf.data.Dataset:
  """Batches packed examples: [batch, seq_length], or trimmed to the longest (after bucketing)."""
  if params.padding in ('static', 'trimmed'):
    batched = examples.batch(batch_size, drop_remainder=params.drop_remainder)
    if params.padding == 'static':
      return batched
    return batched.map(lambda features, label: (tokenization.trim_to_longest(features), label))

  def length(features, label):
    del label
    return tf.reduce_sum(features['input_mask'])

  # A bucket holds lengths < its boundary; edges at or past seq_length would stay empty.
  boundaries = [b + 1 for b in params.bucket_boundaries if b < params.seq_length]
  batched = examples.bucket_by_sequence_length(
      length,
      bucket_boundaries=boundaries,
      bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
      drop_remainder=params.drop_remainder)
  return batched.map(lambda features, label: (tokenization.trim_to_longest(features), label))


def build_dataset(params: configs.SentencePairDataConfig,
                  input_context: Optional[tf.distribute.InputContext] = None,
                  preprocessor: Optional[tokenization.SentencePairPreprocessor] = None
                 ) -> tf.data.Dataset:
  """The whole pipeline for one input pipeline (worker) of a distributed run.

  Args:
    params: the data config.
    input_context: from `distribute_datasets_from_function`; selects this pipeline's shard
      and the per-replica batch size. None: one pipeline, global batch.
    preprocessor: a tokenizer + packer to reuse; built from `params` when None.

  Returns:
    A dataset of `(features, label)`; features are int32 `input_word_ids`, `input_mask`,
    `input_type_ids` of shape [batch, length], label int32 [batch].
  """
  params.validate('data')
  if preprocessor is None:
    preprocessor = tokenization.SentencePairPreprocessor(
        vocab_file=params.vocab_file, lower_case=params.lower_case,
        seq_length=params.seq_length)
  pairs = read_pairs(params)
  batch_size = params.global_batch_size
  if input_context:
    replicas = input_context.num_replicas_in_sync
    if batch_size % replicas:
      raise configs.ConfigError(
          f'data.global_batch_size={batch_size}: must be divisible by the number of replicas '
          f'({replicas})')
    batch_size = input_context.get_per_replica_batch_size(batch_size)
    if input_context.num_input_pipelines > 1:
      pairs = pairs.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
  examples = encode_pairs(pairs, preprocessor)
  if params.cache:
    examples = examples.cache()
  if params.is_training:
    examples = examples.shuffle(
        params.shuffle_buffer_size, seed=params.seed, reshuffle_each_iteration=True).repeat()
  dataset = batch_examples(examples, params, batch_size)
  options = tf.data.Options()
  options.deterministic = True
  pipeline, pipelines = ((input_context.input_pipeline_id, input_context.num_input_pipelines)
                         if input_context else (0, 1))
  logging.info('Input pipeline %d of %d: source=%s padding=%s batch=%d training=%s', pipeline,
               pipelines, params.source, params.padding, batch_size, params.is_training)
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
