"""The input pipeline: a source of examples -> packed BERT inputs, batched.

read (TSV / TFDS / TFRecord; each evaluation split tagged with its id) -> keep one side of
the selection split (if asked) -> shard per input pipeline -> tokenize + pack (each pair in
both orders, if asked) -> cache -> shuffle + repeat (training) -> one order per pair (`random`
order) -> batch (static, or bucketed by length and trimmed) -> prefetch.

An example is one text (`sentence1`) or two (`sentence1`, `sentence2`) and a label: an int32
class id (-1: unlabeled) or a float32 score (NaN: unlabeled). Pure functions of a
`TextDataConfig`; nothing here knows about the Task or the model.
"""

import os
from typing import List, Optional

from absl import logging
import tensorflow as tf

from mrpc_task import configs
from mrpc_task import errors
from mrpc_task import tokenization
from mrpc_task import tsv_reader
from mrpc_task.tuning import selection

# Raw examples are tokenized in batches of this size: the WordPiece op is much faster per batch.
_TOKENIZE_BATCH = 256
# The feature that tells which evaluation split an example is from, when there are several.
SPLIT_ID = 'split_id'
TEXT_KEYS = ('sentence1', 'sentence2')


class DataSourceError(errors.InputError):
  """The configured data cannot be read (no network for TFDS, a folder that is a file...)."""


def label_spec(params: configs.TextDataConfig,
               score_range=()) -> tsv_reader.LabelSpec:
  """How labels are read: class ids from `label_vocabulary`, or (when it is empty) scores."""
  if params.label_vocabulary:
    return tsv_reader.LabelSpec.classes(
        {label: i for i, label in enumerate(params.label_vocabulary)})
  return tsv_reader.LabelSpec.scores(score_range)


def read_examples(params: configs.TextDataConfig, split: configs.SplitRead,
                  labels: tsv_reader.LabelSpec) -> tf.data.Dataset:
  """Unbatched dicts of one split: `sentence1` (and `sentence2`) strings and `label`."""
  if params.source == 'tsv':
    return _read_tsv(params, split.tsv_split, labels)
  if params.source == 'tfds':
    return _read_tfds(params, split.tfds_split, labels)
  if params.source == 'tfrecord':
    return _read_tfrecord(params, labels)
  raise configs.ConfigError(f'data.source={params.source!r}: must be one of {configs.SOURCES}')


def _data_key(params) -> str:
  return f'task.{"train" if params.is_training else "validation"}_data'


def _read_tsv(params, split: str, labels: tsv_reader.LabelSpec):
  key = _data_key(params)
  if not tf.io.gfile.exists(params.tsv_dir):
    raise DataSourceError(
        f'{key}.tsv_dir={params.tsv_dir!r}: no such folder (it must be the task\'s GLUE '
        f'folder holding {split}.tsv; a GLUE_DIR must hold the task\'s GLUE folder, e.g. '
        'GLUE_DIR/MNLI)')
  if not tf.io.gfile.isdir(params.tsv_dir):
    raise DataSourceError(
        f'{key}.tsv_dir={params.tsv_dir!r}: is a file, not a folder; it must be the GLUE folder '
        f'holding {split}.tsv (e.g. MRPC_DATA_DIR=/path/to/MRPC)')
  path = tsv_reader.glue_file(params.tsv_dir, split)
  columns = params.tsv_columns
  text_columns = [c for c in (columns.sentence1, columns.sentence2) if c]
  examples = tsv_reader.read_examples(
      path, text_columns=text_columns, label_column=columns.label, labels=labels,
      header=list(columns.header), on_bad_rows=params.on_bad_rows)
  if not len(examples):
    raise tsv_reader.TsvFormatError(f'{path}: no usable rows')
  if examples.labels is None:
    values = [_unlabeled(labels)] * len(examples)
  else:
    values = examples.labels
  if (not params.is_training and examples.labels is not None and not labels.is_score and
      len(set(examples.labels)) < 2):
    (only,) = set(examples.labels)
    logging.warning(
        '%s: every one of its %d examples has label %r: F1 of the other class is undefined or '
        '0 on it, so best-checkpoint selection by F1 means nothing (set '
        'trainer.best_checkpoint_eval_metric=accuracy, or evaluate on both classes)', path,
        len(examples), params.label_vocabulary[only])
  tensors = {name: tf.constant(texts, tf.string)
             for name, texts in zip(TEXT_KEYS, examples.texts)}
  tensors['label'] = tf.constant(values, _label_dtype(labels))
  return tf.data.Dataset.from_tensor_slices(tensors)


def _label_dtype(labels: tsv_reader.LabelSpec) -> tf.DType:
  return tf.float32 if labels.is_score else tf.int32


def _unlabeled(labels: tsv_reader.LabelSpec):
  """The label of an unlabeled example: -1 (no class) or NaN (no score)."""
  return float('nan') if labels.is_score else -1


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


def _tfds_error(params, split: str, error: Optional[BaseException], *,
                offline: bool) -> DataSourceError:
  from mrpc_task import glue  # pylint: disable=g-import-not-at-top
  where = f'tfds_name={params.tfds_name!r} split={split!r}'
  key = _data_key(params)
  local = f'override {key}.source=tsv and {key}.tsv_dir=/path'
  spec = next((spec for spec in glue.TASKS.values() if spec.tfds_name == params.tfds_name),
              None)
  if spec:  # A GLUE task: the variables its registered experiments read.
    local = (f'set {spec.data_dir_env}=/path/to/glue/{spec.glue_folder} (or {glue.GLUE_DIR_ENV}'
             f'=/path/to/glue holding the GLUE task folders), or {local}')
  if offline:
    return DataSourceError(
        f'{where}: TFDS must download it first and no download server is reachable '
        f'(offline?). Without network, read local TSV files instead: {local}')
  return DataSourceError(f'{where}: TFDS could not load it ({type(error).__name__}: {error}). '
                         f'To read local TSV files instead: {local}')


def _text_fields(params) -> List[str]:
  return [key for key in (params.sentence1_key, params.sentence2_key) if key]


def _read_tfds(params, split: str, labels: tsv_reader.LabelSpec):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top  (slow import)
  data_dir = params.tfds_data_dir or None
  try:
    builder = tfds.builder(params.tfds_name, data_dir=data_dir)
    if not builder.is_prepared() and _download_hosts_unreachable(builder):
      raise _tfds_error(params, split, None, offline=True)
    if not builder.is_prepared():
      builder.download_and_prepare()
    dataset = builder.as_dataset(split=split, shuffle_files=False)
  except DataSourceError:
    raise
  except Exception as e:  # pylint: disable=broad-except  (TFDS raises many kinds)
    raise _tfds_error(params, split, e, offline=_is_network_error(e)) from e
  keys = _text_fields(params)
  dtype = _label_dtype(labels)

  def example(features):
    out = {name: features[key] for name, key in zip(TEXT_KEYS, keys)}
    out['label'] = tf.cast(features[params.label_key], dtype)
    return out

  return dataset.map(example)


def _read_tfrecord(params, labels: tsv_reader.LabelSpec):
  files = tf.io.gfile.glob(params.input_path)
  if not files:
    raise FileNotFoundError(f'data.input_path={params.input_path!r} matches no file')
  keys = _text_fields(params)
  spec = {key: tf.io.FixedLenFeature([], tf.string) for key in keys}
  if labels.is_score:
    spec[params.label_key] = tf.io.FixedLenFeature([], tf.float32,
                                                   default_value=float('nan'))
  else:
    spec[params.label_key] = tf.io.FixedLenFeature([], tf.int64, default_value=-1)
  dtype = _label_dtype(labels)

  def parse(record):
    features = tf.io.parse_single_example(record, spec)
    out = {name: features[key] for name, key in zip(TEXT_KEYS, keys)}
    out['label'] = tf.cast(features[params.label_key], dtype)
    return out

  return tf.data.TFRecordDataset(sorted(files)).map(parse)


def _texts(example) -> List[tf.Tensor]:
  return [example[name] for name in TEXT_KEYS if name in example]


def encode(examples: tf.data.Dataset,
           preprocessor: tokenization.TextPreprocessor) -> tf.data.Dataset:
  """Example dicts -> unbatched (features padded to seq_length, label); a split id, when the
  examples carry one, becomes the feature `split_id`."""

  pack = preprocessor.traced(len(_texts(examples.element_spec)))

  def encode_batch(batch):
    features = pack(*_texts(batch))
    if SPLIT_ID in batch:
      features[SPLIT_ID] = batch[SPLIT_ID]
    return features, batch['label']

  return (examples.batch(_TOKENIZE_BATCH)
          .map(encode_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
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
                       preprocessor: tokenization.TextPreprocessor) -> tf.data.Dataset:
  """Pair dicts -> unbatched ((features, label), (swapped features, label))."""
  return tf.data.Dataset.zip(encode(pairs, preprocessor),
                             encode(pairs.map(_swapped), preprocessor))


def pick_random_order(examples: tf.data.Dataset, seed: Optional[int]) -> tf.data.Dataset:
  """One of each example's two orders, drawn anew at every pass (seeded by `seed`)."""

  def pick(coin, both):
    (features, label), (swapped, _) = both
    keep = tf.equal(coin % 2, 0)
    return tf.nest.map_structure(lambda a, b: tf.where(keep, a, b), features, swapped), label

  return tf.data.Dataset.zip(tf.data.Dataset.random(seed=seed), examples).map(
      pick, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def batch_examples(examples: tf.data.Dataset, params: configs.TextDataConfig,
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


def read_splits(params: configs.TextDataConfig,
                labels: tsv_reader.LabelSpec) -> tf.data.Dataset:
  """Every split the config reads (`params.reads`), each carved to its side of the selection
  split; with several splits each example carries its split's index as `split_id`."""
  reads = params.reads
  datasets = []
  for index, split in enumerate(reads):
    examples = selection.carve(read_examples(params, split, labels),
                               part=params.selection_split,
                               fraction=params.selection_fraction)
    if len(reads) > 1:
      examples = examples.map(
          lambda example, index=index: dict(example, **{SPLIT_ID: tf.constant(index)}))
    datasets.append(examples)
  dataset = datasets[0]
  for more in datasets[1:]:
    dataset = dataset.concatenate(more)
  return dataset


def build_dataset(params: configs.TextDataConfig,
                  input_context: Optional[tf.distribute.InputContext] = None,
                  swap_sentences: bool = False,
                  labels: Optional[tsv_reader.LabelSpec] = None) -> tf.data.Dataset:
  """The whole pipeline for one input pipeline (worker) of a distributed run.

  Args:
    params: the data config.
    input_context: from `distribute_datasets_from_function`; selects this pipeline's shard
      and the per-replica batch size. None: one pipeline, global batch.
    swap_sentences: read every pair with its two sentences swapped (scoring both orders).
    labels: how labels are read (the Task passes its score range); default `label_spec`.

  Returns:
    A dataset of `(features, label)`; features are int32 `input_word_ids`, `input_mask`,
    `input_type_ids` of shape [batch, length] (and `split_id` [batch] when the config names
    several splits), label int32 (classes) or float32 (scores) [batch].
  """
  params.validate('data')
  # Shared with the process's other pipelines of the same vocab and length (traced once).
  preprocessor = tokenization.shared_preprocessor(
      vocab_file=params.vocab_file, lower_case=params.lower_case, seq_length=params.seq_length)
  pairs = read_splits(params, labels or label_spec(params))
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
    examples = encode(pairs, preprocessor)
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
  # tf.data's autotuner wakes up to 60 s apart once a pipeline has run a while, and deleting
  # the iterator waits for it: a training process lingered up to a minute after its last step
  # (about 1 run in 3). This pipeline is light after its first pass (tokenized once, cached),
  # so AUTOTUNE's fixed defaults (parallelism = cores, prefetch grown as needed) do as well.
  options.autotune.enabled = False
  pipeline, pipelines = ((input_context.input_pipeline_id, input_context.num_input_pipelines)
                         if input_context else (0, 1))
  logging.info('Input pipeline %d of %d: source=%s padding=%s batch=%d training=%s', pipeline,
               pipelines, params.source, params.padding, batch_size, params.is_training)
  return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
