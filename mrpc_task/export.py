"""A SavedModel that takes raw text (one sentence or a pair) and returns classes or a score.

Tokenization is inside the graph (the tokenizer's model is a constant of it), so a client
sends strings and needs nothing of this package; only `import tensorflow_text` before loading,
for its ops.
The signature follows the task: `sentence` for one-sentence tasks, `sentence1` and
`sentence2` for pairs; classification returns `logits`, `probabilities`, `class_id` and
`class`, a score task returns `score`. What the export answers (its inputs, classes, labels
as the training files spell them, metrics) is saved beside it in `assets.extra/task.json`.
"""

import dataclasses
import json
import os
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import tensorflow as tf
import tf_keras
from official.core import export_base

from mrpc_task import choices
from mrpc_task import configs
from mrpc_task import keras_private
from mrpc_task import modeling
from mrpc_task import serving_layers
from mrpc_task import serving_dtype as dtypes
from mrpc_task import tokenization
from mrpc_task.checkpoints import pretrained

SIGNATURE_KEY = 'serving_default'
EXTRA_ASSETS = 'assets.extra'
TASK_FILE = 'task.json'
_OLD_CLASSES_FILE = 'classes.json'  # What exports made before task.json hold.
DEFAULT_SORT_CHUNK_SIZE = choices.DEFAULT_SORT_CHUNK_SIZE
DEFAULT_PAD_MULTIPLE = choices.DEFAULT_PAD_MULTIPLE
# Protocol buffers stop at 2 GiB; a frozen graph holds its weights and more.
_MAX_GRAPH_MIB = 1536
PAIR_INPUTS = ('sentence1', 'sentence2')
ONE_INPUT = ('sentence',)


def text_inputs(num_texts: int) -> Tuple[str, ...]:
  """The serving signature's input names for a task of 1 or 2 texts."""
  return ONE_INPUT if num_texts == 1 else PAIR_INPUTS


class _Untracked:
  """Holds Keras models and the tokenizer out of the SavedModel's object graph (a plain object
  is not tracked): saving Keras layers there lists and traces each one for Keras' own
  reloading, most of an export's time, while the signatures need only the variables (tracked
  as such) and the tokenizer's model, a constant its graph captures."""

  def __init__(self, models: Sequence[Callable[..., tf.Tensor]],
               preprocessor: tokenization.TextPreprocessor):
    self.models = list(models)
    self.preprocessor = preprocessor


def _holds_hub_layer(model: tf_keras.Model) -> bool:
  """Whether `model` runs a TF Hub layer: the functions of the SavedModel it restores are
  not frozen faithfully (after a training step, frozen logits moved by 1e-4), so exports of
  such models keep their variables."""
  return any(type(layer).__module__.startswith('tensorflow_hub') for layer in model.submodules)


class _FrozenForward:
  """A model's forward pass on packed features, its weights made constants of the graph.

  oneDNN keeps a constant weight matrix in the layout its kernels read (an AMX tile layout,
  say) across calls, where a variable's values are laid out again on every call: one MRPC
  pair about 25% faster, batches of 64 about 1.5x (docs/PERFORMANCE.md). The SavedModel then
  holds the weights inside its graph instead of its variables/ folder.
  """

  def __init__(self, model: tf_keras.Model):
    specs = {name: tf.TensorSpec([None, None], tf.int32, name=name)
             for name in tokenization.FEATURE_NAMES}

    def forward(features):
      return model(features, training=False)

    try:  # Model Garden's encoders need no AutoGraph; converting one costs ~0.7 s of an export.
      traced = tf.function(forward, autograph=False).get_concrete_function(specs)
    except TypeError:  # Python control flow, len() or range() on tensors: AutoGraph's to do.
      traced = tf.function(forward).get_concrete_function(specs)
    self._outputs = traced.structured_outputs
    self._frozen = keras_private.frozen_function(traced)

  def __call__(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    del training  # Inference only.
    return tf.nest.pack_sequence_as(self._outputs, self._frozen(**features))


class TextServingModule(export_base.ExportModule):
  """`serve(sentence1, sentence2)` (or `serve_one(sentence)`) -> the task's outputs.

  One model returns its own outputs. Several models (an ensemble) or both sentence orders
  averaged return the mean probability (its logarithm as logits, so softmax(logits) is that
  mean) or the mean score: clients read the same outputs either way. The SavedModel holds
  the models' variables (or their frozen graph) and the tokenizer's model, not the Keras
  layers themselves (see `_Untracked`): it is loaded for its signatures, as TF Serving and
  `tfm predict` do.
  """

  def __init__(self, params: configs.TextTaskConfig, model: tf_keras.Model,
               *, trim_padding: bool = True, sort_chunk_size: int = DEFAULT_SORT_CHUNK_SIZE,
               pad_multiple: int = DEFAULT_PAD_MULTIPLE,
               members: Sequence[tf_keras.Model] = (), average_orders: bool = False,
               freeze_weights: bool = False):
    """Wraps a model with the task's tokenizer.

    Args:
      params: the task config (vocab, seq_length, texts, label kind, class names).
      model: the model; its weights are read from a checkpoint by `export_model`.
      trim_padding: pad each request batch only to its longest example instead of
        seq_length; masking makes the outputs the same, and short inputs cost less.
      sort_chunk_size: with trim_padding, order a request's examples by length and run them
        in chunks of this many, each padded only to its own longest (rows come back in
        request order). Batches of 64 MRPC dev pairs then run 1.6x faster than padded to
        their longest (docs/PERFORMANCE.md). 0 runs the request as one batch.
      pad_multiple: with trim_padding, pad to a multiple of this many tokens: fewer distinct
        shapes, so a server meets most lengths already compiled (oneDNN builds kernels per
        shape); one MRPC pair's first request of its length ran 25% faster at 8 (1: exact).
      members: further models of the same task whose outputs are averaged with `model`'s
        (each one's serving cost is added).
      average_orders: also run each pair with its sentences swapped and average the two
        (twice the cost); only for tasks with `symmetric_pairs`.
      freeze_weights: serve the weights' current values as constants of the graph
        (`_FrozenForward`: faster on oneDNN CPUs; later changes to the variables are not
        seen); the module then tracks no variables. Models with a TF Hub encoder keep
        their variables (`_holds_hub_layer`).

    Raises:
      configs.ConfigError: sort_chunk_size is negative, or average_orders on a task whose
        sentence order matters.
    """
    if sort_chunk_size < 0:
      raise configs.ConfigError(
          f'sort_chunk_size={sort_chunk_size}: must be >= 0 (0 = one batch per request)')
    if pad_multiple < 1:
      raise configs.ConfigError(f'pad_multiple={pad_multiple}: must be >= 1 (1 = no rounding)')
    if average_orders:
      configs.check_order_free(params, 'average_orders')
    data = params.validation_data
    super().__init__(
        params, None,
        inference_step=lambda features, model: model(features, training=False))
    self.trim_padding = trim_padding
    self.pad_multiple = pad_multiple
    self.sort_chunk_size = sort_chunk_size
    self.num_outputs = params.model.num_classes
    self.regression = params.is_regression
    self.input_names = text_inputs(params.num_texts)
    self.class_names = tf.constant(list(params.class_names) or [''])
    models = [model] + list(members)
    self.frozen = freeze_weights and not any(map(_holds_hub_layer, models))
    if self.frozen:
      models = [_FrozenForward(m) for m in models]
    else:
      self.model_variables = [list(m.variables) for m in models]
    self._untracked = _Untracked(models, tokenization.TextPreprocessor(
        vocab_file=data.vocab_file, lower_case=data.lower_case, seq_length=data.seq_length))
    self.average_orders = average_orders

  @property
  def models(self) -> List[Callable[..., tf.Tensor]]:
    """The main model, then the ensemble's members (as `_FrozenForward`s if frozen)."""
    return self._untracked.models

  def encode(self, *texts: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The packed model inputs for a request, after checking its batches match."""
    for name, text in zip(self.input_names[1:], texts[1:]):
      tf.debugging.assert_equal(
          tf.size(texts[0]), tf.size(text),
          message=f'{self.input_names[0]} and {name} must have the same number of elements')
    features = self._untracked.preprocessor(*texts)
    return (tokenization.trim_to_longest(features, self.pad_multiple) if self.trim_padding
            else features)

  def outputs(self, features: Dict[str, tf.Tensor],
              model: Optional[tf_keras.Model] = None) -> tf.Tensor:
    """float32 outputs of packed features (by `model`, default the main one), in
    length-sorted chunks when configured."""
    model = model or self.models[0]
    if not (self.trim_padding and self.sort_chunk_size):
      return tf.cast(self.inference_step(features, model=model), tf.float32)
    lengths = tf.reduce_sum(tf.cast(features['input_mask'], tf.int32), axis=-1)
    order = tf.argsort(lengths, stable=True)
    ordered = {name: tf.gather(value, order) for name, value in features.items()}
    size = self.sort_chunk_size
    chunks = (tf.size(lengths) + size - 1) // size

    def run_chunk(index, outputs):
      chunk = {name: value[index * size:(index + 1) * size] for name, value in ordered.items()}
      values = self.inference_step(tokenization.trim_to_longest(chunk, self.pad_multiple),
                                   model=model)
      return index + 1, outputs.write(index, tf.cast(values, tf.float32))

    _, outputs = tf.while_loop(
        lambda index, _: index < chunks, run_chunk,
        [tf.constant(0), tf.TensorArray(tf.float32, size=chunks, infer_shape=False,
                                        element_shape=[None, self.num_outputs])])
    return tf.gather(outputs.concat(), tf.math.invert_permutation(order))

  def combined_outputs(self, *texts: tf.Tensor) -> tf.Tensor:
    """One model's outputs, or their average over models and sentence orders."""
    if len(self.models) == 1 and not self.average_orders:
      return self.outputs(self.encode(*texts))
    orders = [texts] + ([texts[::-1]] if self.average_orders else [])
    outputs = []
    for order in orders:
      features = self.encode(*order)
      outputs += [self.outputs(features, model) for model in self.models]
    return modeling.average_outputs(outputs, regression=self.regression)

  def _serve(self, *texts: tf.Tensor) -> Mapping[str, tf.Tensor]:
    values = self.combined_outputs(*texts)
    if self.regression:
      return {'score': tf.reshape(values, [-1])}
    class_id = tf.argmax(values, axis=-1, output_type=tf.int32)  # Per row, not the batch.
    return {
        'logits': values,
        'probabilities': tf.nn.softmax(values, axis=-1),
        'class_id': class_id,
        'class': tf.gather(self.class_names, class_id),
    }

  @tf.function
  def serve(self, sentence1: tf.Tensor, sentence2: tf.Tensor) -> Mapping[str, tf.Tensor]:
    """A pair task's serving function."""
    return self._serve(sentence1, sentence2)

  @tf.function
  def serve_one(self, sentence: tf.Tensor) -> Mapping[str, tf.Tensor]:
    """A one-sentence task's serving function."""
    return self._serve(sentence)

  def get_inference_signatures(self, function_keys: Dict[str, str]):
    signatures = {}
    for key, signature_name in function_keys.items():
      if key != 'serve_text':
        raise ValueError(f'unknown function key {key!r}; this module exports serve_text')
      specs = {name: tf.TensorSpec([None], tf.string, name=name) for name in self.input_names}
      function = self.serve if len(self.input_names) == 2 else self.serve_one
      signatures[signature_name] = function.get_concrete_function(**specs)
    return signatures


def restore_classifier(model: tf_keras.Model, checkpoint_path: str, *,
                       key: str = 'checkpoint', model_name: str = 'the model') -> str:
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


class Exported(NamedTuple):
  """What `export_model` wrote."""
  path: str
  frozen: bool


def export_model(params: configs.TextTaskConfig, model: tf_keras.Model,
                 export_dir: str, checkpoint_path: Optional[str] = None,
                 trim_padding: bool = True,
                 sort_chunk_size: int = DEFAULT_SORT_CHUNK_SIZE,
                 pad_multiple: int = DEFAULT_PAD_MULTIPLE,
                 model_name: str = 'the model',
                 members: Sequence[Tuple[tf_keras.Model, str]] = (),
                 average_orders: bool = False,
                 checkpoint_key: str = 'checkpoint',
                 members_key: str = 'members',
                 serving_dtype: str = dtypes.FLOAT32,
                 build_model: Optional[Callable[[], tf_keras.Model]] = None,
                 fuse_layers: bool = True, freeze_weights: Optional[bool] = None) -> Exported:
  """Writes the SavedModel to `export_dir` (not timestamped).

  Args:
    params: the task config the model was trained with.
    model: a built model (`task.build_model()`).
    export_dir: where to write; `tfm export` passes a fresh folder (safe_output).
    checkpoint_path: a training checkpoint (prefix or directory) to read the weights from;
      None exports `model` as it is.
    trim_padding, sort_chunk_size, pad_multiple: see `TextServingModule`.
    model_name: how errors name the model the checkpoint must fit.
    members: (built model, its checkpoint) of further runs of the same model: the export
      averages their outputs with `model`'s (see TextServingModule).
    average_orders: average each pair's outputs over both sentence orders.
    checkpoint_key, members_key: how errors name the checkpoint and the members.
    serving_dtype: 'float32', or 'bfloat16' to store the weights (after reading them) as
      bfloat16 (`serving_dtype.recast`); needs `build_model`.
    build_model: builds another model like `model` (`task.build_model`).
    fuse_layers: give the models' layers their serving forms, in place (`serving_layers`:
      the same values in the ops oneDNN fuses); False exports Model Garden's layers.
    freeze_weights: store the weights as constants of the graph
      (`TextServingModule(freeze_weights=True)`): one MRPC pair 25% faster, but a served
      SavedModel then holds about 18 copies of its constants in resident memory (0.6-0.8 GB
      more for MiniLM's 45 MB of bfloat16 weights; docs/PERFORMANCE.md). None: only for
      weights of at most choices.FREEZE_AUTO_MAX_MIB MiB. False keeps them as variables.

  Returns:
    Where the SavedModel is, and whether its weights were frozen into its graph.

  Raises:
    See `restore_classifier`; configs.ConfigError for average_orders on a task whose
    sentence order matters.
  """
  if checkpoint_path:
    restore_classifier(model, checkpoint_path, key=checkpoint_key, model_name=model_name)
  for member, member_checkpoint in members:
    restore_classifier(member, member_checkpoint, key=members_key, model_name=model_name)
  if serving_dtype != dtypes.FLOAT32 and build_model is None:
    raise ValueError(f'serving_dtype={serving_dtype!r} needs build_model')
  model, *others = [dtypes.recast(m, build_model, serving_dtype)
                    for m in [model] + [member for member, _ in members]]
  if fuse_layers:
    for served in [model, *others]:
      serving_layers.use_serving_layers(served)
  mebibytes = sum(v.shape.num_elements() * v.dtype.size
                  for served in [model, *others] for v in served.variables) / 2**20
  if freeze_weights is None:
    freeze_weights = mebibytes <= choices.FREEZE_AUTO_MAX_MIB
  if freeze_weights and mebibytes > _MAX_GRAPH_MIB:
    raise configs.ConfigError(
        f'freeze_weights: the weights take {mebibytes:.0f} MiB, more than a SavedModel graph '
        f'can hold ({_MAX_GRAPH_MIB} MiB); export them as variables (--freeze_weights=false)')
  module = TextServingModule(params, model, trim_padding=trim_padding,
                             sort_chunk_size=sort_chunk_size, pad_multiple=pad_multiple,
                             members=others, average_orders=average_orders,
                             freeze_weights=freeze_weights)
  path = export_base.export(
      module, {'serve_text': SIGNATURE_KEY}, export_dir, checkpoint_path=None,
      timestamped=False)
  write_task_info(path, TaskInfo.of(params))
  return Exported(path, module.frozen)


@dataclasses.dataclass
class TaskInfo:
  """What an export answers, saved beside it, so `tfm predict` and `tfm glue_submission` read
  inputs, labels and scores as training did, with nothing but the export folder."""
  name: str = ''
  label_kind: str = 'classes'
  class_names: List[str] = dataclasses.field(default_factory=list)
  positive_class_id: int = 1
  # Class labels as the training files spell them (GLUE leaderboard files use these).
  label_vocabulary: List[str] = dataclasses.field(default_factory=list)
  score_range: List[float] = dataclasses.field(default_factory=list)
  metrics: List[str] = dataclasses.field(default_factory=lambda: ['accuracy', 'f1'])
  # The signature's inputs: ['sentence'] or ['sentence1', 'sentence2'].
  inputs: List[str] = dataclasses.field(default_factory=lambda: list(PAIR_INPUTS))
  # The task's TSV layout: its text and label columns, and the column names of its files
  # without a header line (CoLA), if any.
  text_columns: List[str] = dataclasses.field(default_factory=list)
  label_column: str = ''
  header: List[str] = dataclasses.field(default_factory=list)

  @property
  def is_regression(self) -> bool:
    return self.label_kind == 'score'

  @classmethod
  def of(cls, params: configs.TextTaskConfig) -> 'TaskInfo':
    columns = params.validation_data.tsv_columns
    return cls(name=params.name or '', label_kind=params.label_kind,
               class_names=list(params.class_names),
               positive_class_id=params.positive_class_id,
               label_vocabulary=list(params.validation_data.label_vocabulary),
               score_range=list(params.score_range), metrics=list(params.metrics),
               inputs=list(text_inputs(params.num_texts)),
               text_columns=[c for c in (columns.sentence1, columns.sentence2) if c],
               label_column=columns.label, header=list(columns.header))


def write_task_info(export_dir: str, info: TaskInfo):
  """Saves `info` in `assets.extra/` (TF Serving's place for files the server ignores)."""
  folder = os.path.join(export_dir, EXTRA_ASSETS)
  tf.io.gfile.makedirs(folder)
  with tf.io.gfile.GFile(os.path.join(folder, TASK_FILE), 'w') as f:
    json.dump(dataclasses.asdict(info), f, indent=1)


def read_task_info(export_dir: str) -> Optional[TaskInfo]:
  """What `write_task_info` saved; for an export made before it, the classes.json of the
  pair-classification exports of that time; None if neither is there."""
  folder = os.path.join(export_dir, EXTRA_ASSETS)
  for name in (TASK_FILE, _OLD_CLASSES_FILE):
    path = os.path.join(folder, name)
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path) as f:
        saved = json.load(f)
      known = {field.name for field in dataclasses.fields(TaskInfo)}
      return TaskInfo(**{key: value for key, value in saved.items() if key in known})
  return None


def export_run(model_dir: str, export_dir: str, *, experiment: Optional[str] = None,
               checkpoint_path: Optional[str] = None, pick: str = 'best',
               members: Sequence[str] = (), average_orders: bool = False,
               config_files: Sequence[str] = (), params_override: Optional[str] = None,
               trim_padding: bool = True, sort_chunk_size: int = DEFAULT_SORT_CHUNK_SIZE,
               pad_multiple: int = DEFAULT_PAD_MULTIPLE, serving_dtype: str = 'auto',
               fuse_layers: bool = True, freeze_weights: str = 'auto',
               overwrite: bool = False, known: Sequence[str] = (),
               labels: Optional[Mapping[str, str]] = None) -> Tuple[str, List[str], str, bool]:
  """Exports a training run (and its ensemble members) as `tfm export` does.

  The config is the one the run trained with (registered defaults <- params.yaml <- files
  <- override); the SavedModel is written to a temporary folder beside export_dir and renamed
  into place when complete; an existing export is replaced only with overwrite.

  Args:
    model_dir: the training folder.
    export_dir: the new SavedModel folder.
    experiment: the run's experiment; default the one recorded in model_dir.
    checkpoint_path: the checkpoint to export; default: `runs.pick_checkpoint(pick)`.
    pick: 'best' or 'final' (see `runs.pick_checkpoint`).
    members: further training folders whose outputs the export averages.
    average_orders: also average over both sentence orders.
    config_files, params_override: applied over params.yaml, as when training.
    trim_padding, sort_chunk_size, pad_multiple: see `TextServingModule`.
    serving_dtype: the weights' type: 'float32', 'bfloat16', or 'auto', the type the run
      computed in (`serving_dtype.resolve`).
    fuse_layers: see `export_model`.
    freeze_weights: 'true', 'false' or 'auto' (see `export_model`).
    overwrite: replace an existing export_dir whole.
    known: registered experiment names (for "did you mean").
    labels: how messages name model_dir, export_dir, checkpoint_path and members.

  Returns:
    (the checkpoint exported, the members' checkpoints, the weights' type, whether they
    were frozen into the graph).
  """
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import runs  # pylint: disable=g-import-not-at-top
  from mrpc_task import safe_output  # pylint: disable=g-import-not-at-top
  label = {'model_dir': 'model_dir', 'export_dir': 'export_dir',
           'checkpoint_path': 'checkpoint_path', 'members': 'members', **(labels or {})}
  inputs = {label['model_dir']: model_dir,
            label['checkpoint_path']: checkpoint_path and os.path.dirname(
                checkpoint_path.rstrip('/'))}
  inputs.update({f'{label["members"]} ({member})': member for member in members})
  safe_output.refuse_overlap(export_dir, inputs, label=label['export_dir'], allow_inside=True)
  safe_output.check_destination(export_dir, label=label['export_dir'], overwrite=overwrite,
                                folder=True)
  run = runs.select(model_dir, experiment=experiment, checkpoint_path=checkpoint_path,
                    pick=pick, members=members, average_orders=average_orders,
                    config_files=config_files, params_override=params_override, known=known,
                    labels=label)
  experiment, params, checkpoint, member_paths = (run.experiment, run.params, run.checkpoint,
                                                  run.members)
  dtype = dtypes.resolve(serving_dtype, params.runtime.mixed_precision_dtype)
  task = task_factory.get_task(params.task, logging_dir=model_dir)
  with safe_output.atomic_folder(export_dir, label=label['export_dir'],
                                 overwrite=overwrite) as folder:
    exported = export_model(params.task, task.build_model(), folder, checkpoint,
                            trim_padding=trim_padding, sort_chunk_size=sort_chunk_size,
                            pad_multiple=pad_multiple,
                            model_name=f'the model of {experiment} as configured in '
                                       f'{model_dir}/{runs.PARAMS_FILE}',
                            members=[(task.build_model(), path) for path in member_paths],
                            average_orders=average_orders, checkpoint_key=label['checkpoint_path'],
                            members_key=label['members'], serving_dtype=dtype,
                            build_model=task.build_model, fuse_layers=fuse_layers,
                            freeze_weights={'true': True, 'false': False}.get(freeze_weights))
  return checkpoint, member_paths, dtype, exported.frozen
