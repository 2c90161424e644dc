"""Converts pretrained BERT checkpoints into Model Garden encoder checkpoints.

Model Garden fine-tuning tasks restore their encoder from an object-based TF2
checkpoint written as `tf.train.Checkpoint(encoder=encoder)`. Pretrained BERT
weights usually come in one of two other layouts:

* Hugging Face (`config.json` + `model.safetensors`): PyTorch-style names such
  as `encoder.layer.0.attention.self.query.weight`, linear weights stored as
  `[out, in]`, and `hidden_act: gelu` meaning the *exact* erf GELU.
* Original google-research/bert TF1 checkpoints: names such as
  `bert/encoder/layer_0/attention/self/query/kernel`, kernels stored as
  `[in, out]`, and `hidden_act: gelu` meaning the *tanh approximation*.

Both are first normalized into one canonical dict of numpy arrays (TF1 names
without the `bert/` scope, kernels `[in, out]`), which a single function maps
onto the Model Garden variables, using Model Garden's own TF1 -> V2 name table
(`tf1_bert_checkpoint_converter_lib.BERT_V2_NAME_REPLACEMENTS`) and reshaping
the attention projections into the `EinsumDense` layouts. Every encoder
variable must be assigned exactly once and every source tensor must be used
(apart from a short list of known non-encoder tensors), so a checkpoint that
does not match its config fails loudly instead of silently leaving randomly
initialized weights behind.

The activation matters: Model Garden's `hidden_activation: gelu` is the tanh
approximation, so Hugging Face configs are converted to the exact GELU
registered in `mrpc_task.activations` (`EXACT_GELU`), while TF1 configs keep
Model Garden's `gelu`.

Model Garden's own TF1 converter (`tf2_bert_encoder_checkpoint_converter`) is
not called directly: it writes an intermediate TF1 checkpoint through a
`tf.compat.v1` graph session, restores it by variable name with
`assert_existing_objects_matched()` (which does not notice unused checkpoint
tensors), saves with `Checkpoint.save` (numbered prefix) and cannot serve the
Hugging Face path. Only its name table is reused.
"""

import json
import math
import os
import re
from typing import Any, Dict, Mapping, Optional, Tuple

from absl import logging
import numpy as np
from official.nlp.configs import encoders
from official.nlp.tools import tf1_bert_checkpoint_converter_lib
import safetensors.numpy
import tensorflow as tf
import tf_keras

from mrpc_task import activations
from mrpc_task import errors
from mrpc_task.checkpoints import pretrained
from mrpc_task import safe_output


class ConversionError(errors.InputError, ValueError):
  """The source checkpoint or its config cannot become a Model Garden BERT encoder."""

# Keys of a BERT config.json (Hugging Face and google-research/bert share them)
# that size the network and have no sensible default.
_REQUIRED_SIZE_KEYS = ('vocab_size', 'hidden_size', 'num_hidden_layers',
                       'num_attention_heads', 'intermediate_size')

# Defaults of `transformers.BertConfig` for keys an HF config.json may omit.
_HF_DEFAULTS = {
    'hidden_act': 'gelu',
    'hidden_dropout_prob': 0.1,
    'attention_probs_dropout_prob': 0.1,
    'max_position_embeddings': 512,
    'type_vocab_size': 2,
    'initializer_range': 0.02,
    'layer_norm_eps': 1e-12,
    'position_embedding_type': 'absolute',
}

# Defaults of google-research/bert `modeling.BertConfig`.
_TF1_DEFAULTS = {
    'hidden_act': 'gelu',
    'hidden_dropout_prob': 0.1,
    'attention_probs_dropout_prob': 0.1,
    'max_position_embeddings': 512,
    'type_vocab_size': 16,
    'initializer_range': 0.02,
}

# HF `hidden_act` -> Model Garden `hidden_activation`. HF 'gelu' is the exact
# erf form; 'gelu_new' and 'gelu_pytorch_tanh' are the tanh approximation,
# which is what Model Garden calls 'gelu'.
_HF_ACTIVATIONS = {
    'gelu': activations.EXACT_GELU,
    'gelu_new': 'gelu',
    'gelu_pytorch_tanh': 'gelu',
    'relu': 'relu',
}

# google-research/bert `hidden_act` -> Model Garden `hidden_activation`. Its
# `modeling.gelu` is the tanh approximation, i.e. Model Garden's 'gelu'.
_TF1_ACTIVATIONS = {
    'gelu': 'gelu',
    'relu': 'relu',
}

# Model Garden's BertEncoder hard-codes this LayerNorm epsilon.
_MODEL_GARDEN_LAYER_NORM_EPS = 1e-12

# Source tensors that are not part of the encoder and are skipped on purpose.
_HF_UNUSED_TENSORS = ('embeddings.position_ids',)  # A buffer, not a weight.
_HF_UNUSED_PREFIXES = ('cls.',)  # BertForPreTraining MLM / NSP heads.
_TF1_UNUSED_TENSORS = ('global_step',)
_TF1_UNUSED_PREFIXES = ('cls/',)  # Pretraining MLM / NSP heads.
_TF1_UNUSED_SUBSTRINGS = ('adam', 'Adam')  # Optimizer slots, as Model Garden.

_QKV_RE = re.compile(r'/self_attention/(query|key|value)/(kernel|bias)$')
_ATTENTION_OUTPUT_KERNEL_RE = re.compile(
    r'/self_attention/attention_output/kernel$')



def _encoder_config_from_bert_json(
    config: Mapping[str, Any], hidden_activation: str,
    defaults: Mapping[str, Any], source: str) -> encoders.EncoderConfig:
  """Builds the Model Garden config from keys shared by HF and TF1 BERT."""
  missing = [key for key in _REQUIRED_SIZE_KEYS if key not in config]
  if missing:
    raise ConversionError(f'{source} is missing required key(s) {missing}.')
  if config['hidden_size'] % config['num_attention_heads']:
    raise ConversionError(
        f'{source}: hidden_size={config["hidden_size"]} is not divisible by '
        f'num_attention_heads={config["num_attention_heads"]}.')

  def get(key):
    return config.get(key, defaults[key])

  return encoders.EncoderConfig(
      type='bert',
      bert=encoders.BertEncoderConfig(
          vocab_size=config['vocab_size'],
          hidden_size=config['hidden_size'],
          num_layers=config['num_hidden_layers'],
          num_attention_heads=config['num_attention_heads'],
          intermediate_size=config['intermediate_size'],
          hidden_activation=hidden_activation,
          dropout_rate=get('hidden_dropout_prob'),
          attention_dropout_rate=get('attention_probs_dropout_prob'),
          max_position_embeddings=get('max_position_embeddings'),
          type_vocab_size=get('type_vocab_size'),
          initializer_range=get('initializer_range')))


def _map_activation(config: Mapping[str, Any], table: Mapping[str, str],
                    defaults: Mapping[str, Any], source: str) -> str:
  """Maps `hidden_act` through `table`, raising ValueError if unsupported."""
  hidden_act = config.get('hidden_act', defaults['hidden_act'])
  if hidden_act not in table:
    raise ConversionError(
        f'{source}: unsupported hidden_act={hidden_act!r}; supported values '
        f'are {sorted(table)}.')
  return table[hidden_act]


def hf_encoder_config(hf_config: Mapping[str, Any],
                      source: str = 'HF config.json') -> encoders.EncoderConfig:
  """Maps a Hugging Face BERT `config.json` dict to a Model Garden config.

  Args:
    hf_config: The parsed `config.json` of a Hugging Face BERT model.

  Returns:
    An `EncoderConfig` of type 'bert'. HF `hidden_act: gelu` (exact erf GELU)
    becomes `hidden_activation: mrpc_task>exact_gelu`; 'gelu_new' and
    'gelu_pytorch_tanh' become Model Garden's tanh-approximate 'gelu'.

  Raises:
    ValueError: If a `config.json` key has a value the Model Garden
      `BertEncoder` cannot represent (`model_type` other than 'bert',
      `position_embedding_type` other than 'absolute', `layer_norm_eps` other
      than 1e-12, `is_decoder` true, an unsupported `hidden_act`), or a
      required size key is missing. The message names the key.
  """
  model_type = hf_config.get('model_type')
  if model_type != 'bert':
    raise ConversionError(
        f'{source}: model_type={model_type!r} is not supported; only '
        "'bert' maps onto the Model Garden BertEncoder.")
  position_embedding_type = hf_config.get(
      'position_embedding_type', _HF_DEFAULTS['position_embedding_type'])
  if position_embedding_type != 'absolute':
    raise ConversionError(
        f'{source}: position_embedding_type={position_embedding_type!r} is '
        "not supported; the Model Garden BertEncoder only has 'absolute' "
        'position embeddings.')
  layer_norm_eps = hf_config.get('layer_norm_eps',
                                 _HF_DEFAULTS['layer_norm_eps'])
  if not math.isclose(layer_norm_eps, _MODEL_GARDEN_LAYER_NORM_EPS,
                      rel_tol=1e-6):
    raise ConversionError(
        f'{source}: layer_norm_eps={layer_norm_eps!r} is not supported; the '
        f'Model Garden BertEncoder hard-codes {_MODEL_GARDEN_LAYER_NORM_EPS}.')
  if hf_config.get('is_decoder', False):
    raise ConversionError(
        f'{source}: is_decoder=true (causal attention) is not supported by '
        'the bidirectional Model Garden BertEncoder.')
  hidden_activation = _map_activation(hf_config, _HF_ACTIVATIONS,
                                      _HF_DEFAULTS, source)
  return _encoder_config_from_bert_json(hf_config, hidden_activation,
                                        _HF_DEFAULTS, source)


def tf1_encoder_config(
    bert_config: Mapping[str, Any]) -> encoders.EncoderConfig:
  """Maps a google-research/bert `bert_config.json` dict to an EncoderConfig.

  Args:
    bert_config: The parsed `bert_config.json` of an original TF1 BERT
      checkpoint.

  Returns:
    An `EncoderConfig` of type 'bert'. TF1 `hidden_act: gelu` is the tanh
    approximation and stays Model Garden's 'gelu'.

  Raises:
    ValueError: If `hidden_act` is unsupported or a required size key is
      missing; the message names the key.
  """
  source = 'TF1 bert_config.json'
  hidden_activation = _map_activation(bert_config, _TF1_ACTIVATIONS,
                                      _TF1_DEFAULTS, source)
  return _encoder_config_from_bert_json(bert_config, hidden_activation,
                                        _TF1_DEFAULTS, source)


def _model_garden_name(canonical_name: str) -> str:
  """Maps a canonical (TF1-style) name to a Model Garden variable name."""
  name = canonical_name
  # Same sequential substring replacement as Model Garden's TF1 converter.
  replacements = tf1_bert_checkpoint_converter_lib.BERT_V2_NAME_REPLACEMENTS
  for source, target in replacements:
    if source in name:
      name = name.replace(source, target)
  return name


def _model_garden_shape(model_garden_name: str, shape: Tuple[int, ...],
                        num_heads: int) -> Tuple[int, ...]:
  """Returns the `EinsumDense` shape a canonical tensor must be reshaped to.

  Args:
    model_garden_name: The target Model Garden variable name.
    shape: The canonical shape (kernels `[in, out]`, biases `[out]`).
    num_heads: The number of attention heads.

  Returns:
    `[in, heads, head_size]` / `[heads, head_size]` for the query, key and value
    kernel / bias, `[heads, head_size, out]` for the attention output kernel,
    and `shape` unchanged otherwise (or when it cannot be split into heads, so
    that the caller reports a shape mismatch).
  """
  qkv = _QKV_RE.search(model_garden_name)
  if qkv and qkv.group(2) == 'kernel' and len(shape) == 2:
    if shape[1] % num_heads == 0:
      return (shape[0], num_heads, shape[1] // num_heads)
  elif qkv and qkv.group(2) == 'bias' and len(shape) == 1:
    if shape[0] % num_heads == 0:
      return (num_heads, shape[0] // num_heads)
  elif (_ATTENTION_OUTPUT_KERNEL_RE.search(model_garden_name) and
        len(shape) == 2):
    if shape[0] % num_heads == 0:
      return (num_heads, shape[0] // num_heads, shape[1])
  return tuple(shape)


def assign_bert_weights(
    encoder: tf_keras.Model,
    weights: Mapping[str, np.ndarray],
    num_attention_heads: int,
    source_names: Optional[Mapping[str, str]] = None) -> None:
  """Assigns canonical BERT weights to every variable of a Model Garden encoder.

  This is the single assignment path shared by the Hugging Face and TF1
  converters. All checks run before any variable is modified.

  Args:
    encoder: A `BertEncoder` built by `encoders.build_encoder`.
    weights: Canonical name -> array. Canonical names are google-research/bert
      TF1 variable names without the `bert/` scope (e.g.
      `embeddings/word_embeddings`,
      `encoder/layer_0/attention/self/query/kernel`, `pooler/dense/bias`), with
      kernels laid out `[in, out]`.
    num_attention_heads: The number of attention heads, used to reshape the
      attention projections into Model Garden's `EinsumDense` layouts.
    source_names: Optional canonical name -> original source tensor name, only
      used to make error messages point at the source checkpoint.

  Raises:
    ValueError: If the encoder has duplicate variable names, or if any encoder
      variable would stay unassigned, any weight would be unused, or any shape
      does not match. The message lists all of them.
  """
  source_names = source_names or {}
  variables = {}
  for variable in encoder.variables:
    name = variable.name.split(':')[0]
    if name in variables:
      raise ConversionError(f'Encoder has two variables named {name!r}.')
    variables[name] = variable

  plan = []
  unused = []
  mismatched = []
  claimed = set()  # Variables some weight maps to, fitting or not.
  for canonical_name in sorted(weights):
    value = np.asarray(weights[canonical_name])
    label = source_names.get(canonical_name, canonical_name)
    target = _model_garden_name(canonical_name)
    if target not in variables:
      unused.append(f'{label} (-> {target}, no such variable)')
      continue
    if target in claimed:
      unused.append(f'{label} (-> {target}, already assigned)')
      continue
    claimed.add(target)
    variable = variables[target]
    shape = _model_garden_shape(target, value.shape, num_attention_heads)
    if shape != tuple(variable.shape):
      mismatched.append(f'{label} {tuple(value.shape)} -> {target} '
                        f'{tuple(variable.shape)}')
      continue
    plan.append((variable, value.reshape(shape)))
  unassigned = sorted(set(variables) - claimed)

  if unassigned or unused or mismatched:
    problems = []
    if unassigned:
      problems.append(f'unassigned encoder variables ({len(unassigned)}): '
                      + ', '.join(unassigned))
    if unused:
      problems.append(f'unused source tensors ({len(unused)}): '
                      + ', '.join(unused))
    if mismatched:
      problems.append(f'shape mismatches ({len(mismatched)}, source shapes '
                      'in canonical [in, out] kernel layout): '
                      + ', '.join(mismatched))
    raise ConversionError('Weights do not fit the Model Garden BertEncoder; '
                     + '; '.join(problems))

  for variable, value in plan:
    variable.assign(value.astype(variable.dtype.as_numpy_dtype))


def _hf_to_canonical(
    tensors: Mapping[str, np.ndarray]
) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
  """Renames HF BERT tensors to canonical names and transposes linear weights.

  Args:
    tensors: HF tensor name -> array, with or without the `bert.` prefix.

  Returns:
    A tuple (canonical name -> array, canonical name -> HF name).

  Raises:
    ValueError: If two HF tensors map to the same canonical name (e.g. both
      `bert.x` and `x` are present).
  """
  weights = {}
  source_names = {}
  skipped = []
  for hf_name, value in tensors.items():
    name = hf_name[len('bert.'):] if hf_name.startswith('bert.') else hf_name
    if name in _HF_UNUSED_TENSORS or name.startswith(_HF_UNUSED_PREFIXES):
      skipped.append(hf_name)
      continue
    name = re.sub(r'(^|\.)layer\.(\d+)\.', r'\1layer_\2.', name)
    path, _, leaf = name.rpartition('.')
    path = path.replace('.', '/')
    if path.endswith('LayerNorm') and leaf in ('weight', 'gamma'):
      canonical = path + '/gamma'
    elif path.endswith('LayerNorm') and leaf in ('bias', 'beta'):
      canonical = path + '/beta'
    elif path.endswith('_embeddings') and leaf == 'weight':
      canonical = path
    elif leaf == 'weight' and value.ndim == 2:
      canonical = path + '/kernel'
      value = value.T  # torch.nn.Linear stores [out, in].
    else:
      canonical = f'{path}/{leaf}' if path else leaf
    if canonical in weights:
      raise ConversionError(f'HF tensors {source_names[canonical]!r} and '
                       f'{hf_name!r} both map to {canonical!r}.')
    weights[canonical] = value
    source_names[canonical] = hf_name
  if skipped:
    logging.info('Skipping non-encoder HF tensors: %s', sorted(skipped))
  return weights, source_names


def _tf1_to_canonical(
    ckpt_path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
  """Reads TF1 BERT variables by name and strips the `bert/` scope.

  Args:
    ckpt_path: The TF1 checkpoint prefix.

  Returns:
    A tuple (canonical name -> array, canonical name -> TF1 variable name).
  """
  reader = pretrained.checkpoint_reader(ckpt_path, 'input')
  weights = {}
  source_names = {}
  skipped = []
  for tf1_name in reader.get_variable_to_shape_map():
    if (tf1_name in _TF1_UNUSED_TENSORS or
        tf1_name.startswith(_TF1_UNUSED_PREFIXES) or
        any(s in tf1_name for s in _TF1_UNUSED_SUBSTRINGS)):
      skipped.append(tf1_name)
      continue
    canonical = (tf1_name[len('bert/'):] if tf1_name.startswith('bert/')
                 else tf1_name)
    weights[canonical] = reader.get_tensor(tf1_name)
    source_names[canonical] = tf1_name
  if skipped:
    logging.info('Skipping non-encoder TF1 variables: %s', sorted(skipped))
  return weights, source_names


def _require(path: str):
  """Fails naming the folder when it is missing or a file (a misspelt or wrong --input), else
  the missing file."""
  if tf.io.gfile.exists(path):
    return
  folder, name = os.path.split(path)
  if folder and not tf.io.gfile.isdir(folder):
    why = (f'is a file, not a folder (name the folder holding {name})'
           if tf.io.gfile.exists(folder) else f'no such folder (the conversion reads {name} there)')
    raise FileNotFoundError(f'{folder}: {why}')
  raise FileNotFoundError(f'{path}: no such file (the conversion needs it)')


def _read_json(path: str) -> Dict[str, Any]:
  """A JSON object from a file, with errors that name the file."""
  _require(path)
  with tf.io.gfile.GFile(path) as f:
    text = f.read()
  try:
    value = json.loads(text)
  except ValueError as e:
    raise ConversionError(f'{path}: not valid JSON ({e})') from e
  if not isinstance(value, dict):
    raise ConversionError(f'{path}: expected a JSON object, got {type(value).__name__}')
  return value


def _write_outputs(encoder: tf_keras.Model,
                   encoder_config: encoders.EncoderConfig, vocab_file: str,
                   output_dir: str) -> str:
  """Writes the encoder checkpoint, `bert_config.json` and `vocab.txt`."""
  tf.io.gfile.makedirs(output_dir)
  prefix = tf.train.Checkpoint(encoder=encoder).write(
      os.path.join(output_dir, 'encoder'))
  with tf.io.gfile.GFile(os.path.join(output_dir, 'bert_config.json'),
                         'w') as f:
    json.dump(encoder_config.bert.as_dict(), f, indent=2, sort_keys=True)
  tf.io.gfile.copy(vocab_file, os.path.join(output_dir, 'vocab.txt'),
                   overwrite=True)
  logging.info('Wrote Model Garden encoder checkpoint %s', prefix)
  return prefix


def _build_and_assign(
    encoder_config: encoders.EncoderConfig, weights: Mapping[str, np.ndarray],
    source_names: Mapping[str, str]) -> tf_keras.Model:
  """Builds the encoder for `encoder_config` and assigns `weights` to it."""
  encoder = encoders.build_encoder(encoder_config)
  assign_bert_weights(encoder, weights,
                      encoder_config.bert.num_attention_heads, source_names)
  return encoder


def convert_hf(model_dir: str, output_dir: str) -> encoders.EncoderConfig:
  """Converts a Hugging Face BERT model directory to a Model Garden checkpoint.

  Reads `config.json` and `model.safetensors` (no PyTorch needed); tensor names
  may carry the `bert.` prefix (e.g. `BertForPreTraining`) or not
  (`BertModel`). `embeddings.position_ids` and `cls.*` pretraining heads are
  skipped; every other tensor must map onto an encoder variable.

  Args:
    model_dir: Directory with `config.json`, `model.safetensors`, `vocab.txt`.
    output_dir: Directory to write into; created if needed.

  Returns:
    The `EncoderConfig` the checkpoint was written for. `output_dir` then holds
    the checkpoint with prefix `<output_dir>/encoder` (written as
    `tf.train.Checkpoint(encoder=encoder)`), `bert_config.json` (the
    `BertEncoderConfig` as a dict) and `vocab.txt`.

  Raises:
    ValueError: If the config is unsupported (see `hf_encoder_config`) or the
      weights do not fit it (see `assign_bert_weights`).
  """
  model_dir = os.fspath(model_dir)
  output_dir = os.fspath(output_dir)
  safe_output.refuse_overlap(output_dir, {'the input folder': model_dir}, label='output')
  config_path = os.path.join(model_dir, 'config.json')
  encoder_config = hf_encoder_config(_read_json(config_path), source=config_path)
  weights_path = os.path.join(model_dir, 'model.safetensors')
  _require(weights_path)
  _require(os.path.join(model_dir, 'vocab.txt'))
  try:
    tensors = safetensors.numpy.load_file(weights_path)
  except Exception as e:  # pylint: disable=broad-except  (safetensors raises its own kinds)
    raise ConversionError(f'{weights_path}: not a readable safetensors file '
                          f'({type(e).__name__}: {e}); download it again') from e
  weights, source_names = _hf_to_canonical(tensors)
  encoder = _build_and_assign(encoder_config, weights, source_names)
  _write_outputs(encoder, encoder_config, os.path.join(model_dir, 'vocab.txt'),
                 output_dir)
  return encoder_config


def convert_tf1(ckpt_path: str, bert_config_json: str, vocab_file: str,
                output_dir: str) -> encoders.EncoderConfig:
  """Converts an original google-research/bert TF1 checkpoint.

  Variables are read by name with `tf.train.load_checkpoint` (e.g.
  `bert/encoder/layer_0/attention/self/query/kernel`). `global_step`, `cls/*`
  pretraining heads and Adam slots are skipped; every other variable must map
  onto an encoder variable.

  Args:
    ckpt_path: The TF1 checkpoint prefix (e.g. `.../bert_model.ckpt`).
    bert_config_json: Path of the matching `bert_config.json`.
    vocab_file: Path of the matching `vocab.txt`.
    output_dir: Directory to write into; created if needed.

  Returns:
    The `EncoderConfig` the checkpoint was written for. `output_dir` then holds
    the checkpoint with prefix `<output_dir>/encoder`, `bert_config.json` and
    `vocab.txt`, as for `convert_hf`.

  Raises:
    ValueError: If the config is unsupported (see `tf1_encoder_config`) or the
      weights do not fit it (see `assign_bert_weights`).
  """
  ckpt_path = os.fspath(ckpt_path)
  output_dir = os.fspath(output_dir)
  safe_output.refuse_overlap(output_dir, {'the input folder': os.path.dirname(ckpt_path)},
                             label='output')
  encoder_config = tf1_encoder_config(_read_json(os.fspath(bert_config_json)))
  _require(os.fspath(vocab_file))
  weights, source_names = _tf1_to_canonical(ckpt_path)
  encoder = _build_and_assign(encoder_config, weights, source_names)
  _write_outputs(encoder, encoder_config, os.fspath(vocab_file), output_dir)
  return encoder_config


def convert(source: str, input_path: str, output: str, *, overwrite: bool = False,
            labels: Tuple[str, str] = ('input', 'output')) -> encoders.EncoderConfig:
  """`tfm convert_checkpoint`: writes `encoder.*`, `bert_config.json` and `vocab.txt` into a
  temporary folder beside `output`, renamed into place when complete.

  Args:
    source: 'hf' (a folder with config.json + model.safetensors) or 'tf1' (a checkpoint
      prefix with bert_config.json and vocab.txt beside it).
    input_path: the folder or prefix.
    output: the new folder; its input's own folder is never written.
    overwrite: replace an existing output whole.
    labels: how messages name the input and the output.

  Returns:
    The encoder config the checkpoint restores into.
  """
  input_label, output_label = labels
  if source not in ('hf', 'tf1'):
    raise ConversionError(f'source {source!r}: must be hf or tf1')
  input_folder = input_path if source == 'hf' else os.path.dirname(input_path) or '.'
  safe_output.refuse_overlap(output, {input_label: input_folder}, label=output_label)
  safe_output.check_destination(output, label=output_label, overwrite=overwrite, folder=True)
  with safe_output.atomic_folder(output, label=output_label, overwrite=overwrite) as folder:
    if source == 'hf':
      return convert_hf(input_path, folder)
    return convert_tf1(input_path, os.path.join(input_folder, 'bert_config.json'),
                       os.path.join(input_folder, 'vocab.txt'), folder)
