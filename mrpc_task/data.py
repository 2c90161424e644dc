"""The input pipeline: a source of sentence pairs -> packed BERT inputs, batched.

read (TSV / TFDS / TFRecord) -> keep one side of the selection split (if asked) -> shard per
input pipeline -> tokenize + pack (each pair in both orders, if asked) -> cache -> shuffle +
repeat (training) -> one order per pair (`random` order) -> batch (static, or bucketed by
length and trimmed) -> prefetch.

Pure functions of a `SentencePairDataConfig`; nothing here knows about the Task or the model.
"""

from typing import Optional

from absl import logging
import tensorflow as tf

from mrpc_task import configs
from mrpc_task import errors
from mrpc_task import selection
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


class DataSourceError(errors.InputError):
  """The configured data cannot be read (no network for TFDS, a folder that is a file...)."""


def _read_tsv(params):
  if tf.io.gfile.exists(params.tsv_dir) and not tf.io.gfile.isdir(params.tsv_dir):
    key = f'task.{"train" if params.is_training else "validation"}_data.tsv_dir'
    raise DataSourceError(
        f'{key}={params.tsv_dir!r}: is a file, not a folder; it must be the GLUE folder '
        f'holding {params.tsv_split}.tsv (e.g. MRPC_DATA_DIR=/path/to/MRPC)')
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
  if not params.is_training and pairs.labels is not None and len(set(pairs.labels)) < 2:
    (only,) = set(pairs.labels)
    logging.warning(
        '%s: every one of its %d pairs has label %r: F1 of the other class is undefined or 0 '
        'on it, so best-checkpoint selection by F1 means nothing (set '
        'trainer.best_checkpoint_eval_metric=accuracy, or evaluate on both classes)', path,
        len(pairs), params.label_vocabulary[only])
  return tf.data.Dataset.from_tensor_slices({
      'sentence1': tf.constant(pairs.sentence1, tf.string),
      'sentence2': tf.constant(pairs.sentence2, tf.string),
      'label': tf.constant(labels, tf.int32),
  })


# Exceptions that mean the download could not reach its server.
_NETWORK_ERROR_NAMES = ('ConnectionError', 'ConnectTimeout', 'NameResolutionError',
                        'MaxRetryError', 'NewConnectionError', 'gaierror', 'timeout',
                        'TimeoutError', 'URLError')


def _is_network_error(error: BaseException) -> bool:
  """Whether an exception, or any exception it was raised from, is a failed connection."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if type(error).__name__ in _NETWORK_ERROR_NAMES:
      return True
    error = error.__cause__ or error.__context__
  return False


def _download_hosts_unreachable(builder) -> bool:
  """True when none of the dataset's download hosts resolves: offline, fail now.

  TFDS retries each download 10 times with back-off (about 3.5 minutes) before giving up.
  With a proxy configured, names are resolved by the proxy, so nothing is decided here.
  """
  import os  # pylint: disable=g-import-not-at-top
  import socket  # pylint: disable=g-import-not-at-top
  from urllib import parse  # pylint: disable=g-import-not-at-top
  if any(os.environ.get(name) for name in ('https_proxy', 'HTTPS_PROXY', 'http_proxy',
                                           'HTTP_PROXY', 'all_proxy', 'ALL_PROXY')):
    return False
  hosts = {parse.urlparse(url).hostname for url in (builder.url_infos or {})} - {None}
  for host in sorted(hosts):
    try:
      socket.getaddrinfo(host, 443)
      return False
    except OSError:
      continue
  return bool(hosts)


def _tfds_error(params, error: BaseException, *, offline: bool) -> DataSourceError:
  where = f'tfds_name={params.tfds_name!r} split={params.tfds_split!r}'
  local = ("set the experiment's folder variable (MRPC_DATA_DIR=/path/to/glue/MRPC, "
           'RTE_DATA_DIR, QQP_DATA_DIR), or override task.train_data.source=tsv and '
           'task.train_data.tsv_dir=/path (same for task.validation_data)')
  if offline:
    return DataSourceError(
        f'{where}: TFDS must download it first and no download server is reachable '
        f'(offline?). Without network, read local GLUE TSV files instead: {local}')
  return DataSourceError(f'{where}: TFDS could not load it ({type(error).__name__}: {error}). '
                         f'To read local GLUE TSV files instead: {local}')


def _read_tfds(params):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  data_dir = params.tfds_data_dir or None
  try:
    builder = tfds.builder(params.tfds_name, data_dir=data_dir)
    if not builder.is_prepared() and _download_hosts_unreachable(builder):
      raise _tfds_error(params, None, offline=True)
    if not builder.is_prepared():
      builder.download_and_prepare()
    dataset = builder.as_dataset(split=params.tfds_split, shuffle_files=False)
  except DataSourceError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (TFDS raises many kinds)
    raise _tfds_error(params, e, offline=_is_network_error(e)) from e
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


def _swapped(pair):
  return dict(pair, sentence1=pair['sentence2'], sentence2=pair['sentence1'])


def both_orders(pairs: tf.data.Dataset) -> tf.data.Dataset:
  """Each pair, then the same pair with its sentences swapped."""

  def interleave(batch):
    first, second = batch['sentence1'], batch['sentence2']
    return {'sentence1': tf.reshape(tf.stack([first, second], axis=1), [-1]),
            'sentence2': tf.reshape(tf.stack([second, first], axis=1), [-1]),
            'label': tf.repeat(batch['label'], 2)}

  return pairs.batch(_TOKENIZE_BATCH).map(interleave).unbatch()


def encode_both_orders(pairs: tf.data.Dataset,
                       preprocessor: tokenization.SentencePairPreprocessor) -> tf.data.Dataset:
  """Pair dicts -> unbatched ((features, label), (swapped features, label))."""
  return tf.data.Dataset.zip(encode_pairs(pairs, preprocessor),
                             encode_pairs(pairs.map(_swapped), preprocessor))


def pick_random_order(examples: tf.data.Dataset, seed: Optional[int]) -> tf.data.Dataset:
  """One of each example's two orders, drawn anew at every pass (seeded by `seed`)."""

  def pick(coin, both):
    (features, label), (swapped, _) = both
    keep = tf.equal(coin % 2, 0)
    return tf.nest.map_structure(lambda a, b: tf.where(keep, a, b), features, swapped), label

  return tf.data.Dataset.zip(tf.data.Dataset.random(seed=seed), examples).map(
      pick, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


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
                  preprocessor: Optional[tokenization.SentencePairPreprocessor] = None,
                  swap_sentences: bool = False) -> tf.data.Dataset:
  """The whole pipeline for one input pipeline (worker) of a distributed run.

  Args:
    params: the data config.
    input_context: from `distribute_datasets_from_function`; selects this pipeline's shard
      and the per-replica batch size. None: one pipeline, global batch.
    preprocessor: a tokenizer + packer to reuse; built from `params` when None.
    swap_sentences: read every pair with its two sentences swapped (scoring both orders).

  Returns:
    A dataset of `(features, label)`; features are int32 `input_word_ids`, `input_mask`,
    `input_type_ids` of shape [batch, length], label int32 [batch].
  """
  params.validate('data')
  if preprocessor is None:
    preprocessor = tokenization.SentencePairPreprocessor(
        vocab_file=params.vocab_file, lower_case=params.lower_case,
        seq_length=params.seq_length)
  pairs = selection.carve(read_pairs(params), part=params.selection_split,
                          fraction=params.selection_fraction)
  if swap_sentences:
    pairs = pairs.map(_swapped)
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
  if params.pair_order == 'both':
    pairs = both_orders(pairs)
  if params.pair_order == 'random':
    examples = encode_both_orders(pairs, preprocessor)
  else:
    examples = encode_pairs(pairs, preprocessor)
  if params.cache:
    examples = examples.cache()
  if params.is_training:
    examples = examples.shuffle(
        params.shuffle_buffer_size, seed=params.seed, reshuffle_each_iteration=True).repeat()
  if params.pair_order == 'random':
    examples = pick_random_order(examples, params.seed)
  dataset = batch_examples(examples, params, batch_size)
  options = tf.data.Options()
  options.deterministic = True
  pipeline, pipelines = ((input_context.input_pipeline_id, input_context.num_input_pipelines)
                         if input_context else (0, 1))
  logging.info('Input pipeline %d of %d: source=%s padding=%s batch=%d training=%s', pipeline,
               pipelines, params.source, params.padding, batch_size, params.is_training)
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
