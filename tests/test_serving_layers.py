"""Exports' serving layers compute what Model Garden's and Keras' layers compute, in the ops
oneDNN fuses, and a frozen export serves what the variables held."""

import json
import subprocess
import sys

import numpy as np
from official.core import task_factory
from official.nlp.modeling import layers as nlp_layers
import pytest
import tensorflow as tf
from tensorflow.python.eager import context  # pylint: disable=g-direct-tensorflow-import
import tf_keras

from mrpc_task import cpu_features
from mrpc_task import export
from mrpc_task import serving_layers
from tests.conftest import (FIXTURE_MRPC, REPO_ROOT, child_env, read_mrpc, stored_weights,
                            tiny_encoder, tiny_experiment)


@pytest.mark.parametrize('equation, expected', [
    ('abc,cde->abde', 1),  # Attention's query, key and value projections.
    ('abcd,cde->abe', 2),  # Attention's output projection.
    ('abc,cd->abd', 1),  # A block's feed-forward layers.
    ('ab,bc->ac', 1),
    ('abc,dce->abde', None),  # Sums over a kernel axis that is not leading.
    ('aecd,abcd->acbe', None),  # Attention scores: no kernel-shaped operand.
    ('...b,bc->...c', None),
    ('abc,cd->adb', None),  # Output axes reordered.
    ('abc,cd', None),
])
def test_contracted_axes_recognises_matrix_multiplies_only(equation, expected):
  assert serving_layers.contracted_axes(equation) == expected


def _tiny_model(**bert):
  """A tiny model whose every weight is random: a trained model's biases and layer norms are
  not the initial zeros and ones, which TensorFlow's graph rewrites would simplify away."""
  with pytest.MonkeyPatch.context() as monkeypatch:
    params = tiny_experiment(monkeypatch, seq_length=48, encoder=tiny_encoder(**bert))
  task = task_factory.get_task(params.task)
  model = task.build_model()
  rng = np.random.default_rng(7)
  for variable in model.variables:
    variable.assign(rng.normal(0.0, 0.1, variable.shape) + variable.numpy())
  return params, task, model


def _features(params, model):
  dev = read_mrpc(f'{FIXTURE_MRPC}/dev.tsv')
  module = export.TextServingModule(params.task, model)
  return module.encode(tf.constant(dev.sentence1), tf.constant(dev.sentence2))


@pytest.mark.parametrize('bert', [{}, {'output_range': 1}, {'num_layers': 3, 'hidden_size': 48}])
def test_serving_layers_compute_the_same_logits(bert):
  """Every block, EinsumDense and layer norm takes its serving form (the count is exact) and
  the logits stay those of Model Garden's layers, with or without output_range."""
  params, task, model = _tiny_model(**bert)
  del task
  features = _features(params, model)
  before = model(features, training=False).numpy()
  layers = params.task.model.encoder.bert.num_layers
  # Per block: 6 EinsumDense (query, key, value, attention output, both feed-forward) and
  # 2 layer norms; plus the embeddings' layer norm.
  assert serving_layers.use_serving_layers(model) == layers * (1 + 6 + 2) + 1
  assert serving_layers.use_serving_layers(model) == 0  # Already in serving form.
  after = model(features, training=False).numpy()
  np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_each_serving_layer_alone_matches_its_original():
  """EinsumDense of both attention equations and a layer norm, on the same weights."""
  rng = np.random.default_rng(0)
  inputs = tf.constant(rng.normal(size=(3, 7, 16)), tf.float32)
  for equation, shape, bias in (('abc,cde->abde', (None, 4, 4), 'de'),
                                ('abc,cd->abd', (None, 24), 'd')):
    dense = tf_keras.layers.EinsumDense(equation, output_shape=shape, bias_axes=bias,
                                        bias_initializer='glorot_uniform')
    expected = dense(inputs).numpy()
    serving_layers.use_serving_layers(dense)
    assert type(dense) is serving_layers.MatMulEinsumDense  # pylint: disable=unidiomatic-typecheck
    np.testing.assert_allclose(dense(inputs).numpy(), expected, rtol=1e-5, atol=1e-6)
  norm = tf_keras.layers.LayerNormalization(epsilon=1e-12, gamma_initializer='glorot_uniform',
                                            beta_initializer='glorot_uniform')
  expected = norm(inputs).numpy()
  serving_layers.use_serving_layers(norm)
  np.testing.assert_allclose(norm(inputs).numpy(), expected, rtol=1e-5, atol=1e-5)
  # A bfloat16 input: normalized in float32, of the type Keras' own layer returns.
  keras_norm = tf_keras.layers.LayerNormalization(epsilon=1e-12)
  bfloat16 = tf.cast(inputs, tf.bfloat16)
  keras_norm(bfloat16)  # Builds its weights.
  keras_norm.set_weights(norm.get_weights())
  expected = keras_norm(bfloat16)
  serving_layers.use_serving_layers(keras_norm)
  served = keras_norm(bfloat16)
  assert served.dtype == expected.dtype
  np.testing.assert_allclose(served.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_a_pre_norm_block_runs_model_gardens_own_call():
  block = nlp_layers.TransformerEncoderBlock(num_attention_heads=2, inner_dim=24,
                                             inner_activation='relu', norm_first=True)
  inputs = tf.constant(np.random.default_rng(1).normal(size=(2, 5, 8)), tf.float32)
  mask = tf.ones((2, 5, 5))
  expected = block([inputs, mask]).numpy()
  serving_layers.use_serving_layers(block)
  assert type(block) is serving_layers.ServingEncoderBlock  # pylint: disable=unidiomatic-typecheck
  # Its layer norms take their serving form: the same values up to float32 rounding.
  np.testing.assert_allclose(block([inputs, mask]).numpy(), expected, rtol=1e-5, atol=1e-6)


def _executed_op_types(function, *args):
  """Op types of the graphs TensorFlow ran for `function(*args)`, after its graph rewrites
  (eager run metadata: what the runtime executed, not what was traced)."""
  ctx = context.context()
  ctx.enable_run_metadata()
  try:
    function(*args)
    metadata = ctx.export_run_metadata()
  finally:
    ctx.disable_run_metadata()
  types = {}
  for graph in metadata.function_graphs:
    for node in graph.post_optimization_graph.node:
      types.setdefault(node.op, []).append(node)
  return types


def served_op_types():
  """({op type: count}, [fused ops of each fused MatMul]) of the frozen forward of the
  MiniLM-shaped tiny model in serving form, as this process's TensorFlow runs it."""
  params, _, model = _tiny_model(hidden_activation='mrpc_task>exact_gelu')
  features = _features(params, model)
  serving_layers.use_serving_layers(model)
  forward = export.TextServingModule(params.task, model, freeze_weights=True).models[0]
  types = _executed_op_types(tf.function(forward), features)
  fused = types.get('_MklNativeFusedMatMul', []) + types.get('_FusedMatMul', [])
  return ({op: len(nodes) for op, nodes in types.items()},
          sorted([f.decode() for f in node.attr['fused_ops'].list.s] for node in fused))


def test_the_served_forward_runs_fused_multiplies_without_einsum_or_erf():
  """What the serving forms are for: with oneDNN's graph rewrites (on in a process that
  starts TensorFlow as tfm does, on any x86 CPU: checked in a child with no
  TF_ENABLE_ONEDNN_OPTS of its own), the frozen forward of the MiniLM-shaped tiny model runs
  its dense layers as fused MatMul (+ BiasAdd, + GELU in the feed-forward layer), no dense
  einsum, no separate Erf/Erfc, and no _MklLayerNorm."""
  if not cpu_features.is_x86():
    pytest.skip('tfm leaves oneDNN to TensorFlow off x86, and only oneDNN fuses the GELU')
  env = child_env()
  env.pop('TF_ENABLE_ONEDNN_OPTS', None)
  result = subprocess.run(
      [sys.executable, '-c', 'from mrpc_task.cli import main; main.set_tensorflow_defaults(); '
       'import json; from tests import test_serving_layers as t; '
       'print(json.dumps(t.served_op_types()))'],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-4000:]
  types, fused_ops = json.loads(result.stdout.strip().splitlines()[-1])
  if not fused_ops:
    pytest.skip('this TensorFlow build does not fuse MatMul on CPU')
  layers = tiny_encoder().bert.num_layers
  assert fused_ops.count(['BiasAdd', 'GeluExact']) == layers
  assert fused_ops.count(['BiasAdd']) >= 5 * layers  # Q, K, V, attention output, output.
  assert not {'Erf', 'Erfc', '_MklLayerNorm'} & set(types)
  # The two einsums left per block are attention's scores and context.
  assert types.get('_MklEinsum', 0) + types.get('Einsum', 0) == 2 * layers


def test_a_frozen_export_serves_what_the_variables_held(tmp_path):
  """Frozen weights: the SavedModel holds them as constants, not variables, and serves the
  same logits as a plain export (Model Garden's layers, variables) and as the model in this
  process. Left to choose (None), the tiny model's few kilobytes are frozen."""
  params, task, model = _tiny_model()
  checkpoint = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt'))
  dev = read_mrpc(f'{FIXTURE_MRPC}/dev.tsv')
  served = {}
  for freeze in (None, False):
    path, frozen = export.export_model(params.task, task.build_model(),
                                       str(tmp_path / f'{freeze}'), checkpoint,
                                       fuse_layers=freeze is None, freeze_weights=freeze)
    assert frozen is (freeze is None)
    stored = stored_weights(path)
    assert stored['float32'] >= model.count_params()
    loaded = tf.saved_model.load(path)
    assert hasattr(loaded, 'model_variables') is not frozen
    served[frozen] = loaded.signatures[export.SIGNATURE_KEY](
        sentence1=tf.constant(dev.sentence1), sentence2=tf.constant(dev.sentence2))['logits']
  np.testing.assert_allclose(served[True], served[False], rtol=1e-5, atol=1e-5)
  module = export.TextServingModule(params.task, model)  # Held: serve() refers to it.
  in_process = module.serve(tf.constant(dev.sentence1), tf.constant(dev.sentence2))['logits']
  np.testing.assert_allclose(served[True], in_process, rtol=1e-5, atol=1e-5)


class _FlippedWhenUnpadded(tf_keras.Model):
  """A model's logits, negated when no row of the batch is padded: Python control flow on a
  tensor, which traces only through AutoGraph."""

  def __init__(self, model):
    super().__init__()
    self.model = model

  def call(self, features, training=False):
    logits = self.model(features, training=training)
    if tf.reduce_min(features['input_mask']) > 0:
      return -logits
    return logits


def test_a_model_branching_on_tensors_is_frozen_through_autograph():
  """Frozen serving traces Model Garden's models without AutoGraph (faster); a model whose
  call branches on a tensor is traced with it, and serves each branch as its eager call."""
  params, _, model = _tiny_model()
  # As export_model does: frozen, Keras' own layer norm would run as _MklLayerNorm (inexact).
  serving_layers.use_serving_layers(model)
  flipped = _FlippedWhenUnpadded(model)
  module = export.TextServingModule(params.task, flipped, sort_chunk_size=0, pad_multiple=1,
                                    freeze_weights=True)
  assert module.frozen
  dev = read_mrpc(f'{FIXTURE_MRPC}/dev.tsv')
  for rows, sign in ((slice(None), 1), (slice(0, 1), -1)):  # Padded rows; one unpadded pair.
    texts = tf.constant(dev.sentence1[rows]), tf.constant(dev.sentence2[rows])
    features = module.encode(*texts)
    served = module.serve(*texts)['logits']
    np.testing.assert_allclose(served, sign * model(features, training=False),
                               rtol=1e-5, atol=1e-5)


def test_weights_a_graph_cannot_hold_are_refused_by_name(tmp_path, monkeypatch):
  """Freezing weights beyond what a SavedModel graph can hold fails naming the flag and the
  way out, before anything is written; left to choose, such weights stay variables."""
  params, task, model = _tiny_model()
  monkeypatch.setattr(export, '_MAX_GRAPH_MIB', 0)
  with pytest.raises(ValueError,
                     match=r'freeze_weights: the weights take .* MiB.*--freeze_weights=false'):
    export.export_model(params.task, model, str(tmp_path / 'big'), freeze_weights=True)
  assert not (tmp_path / 'big').exists()
  monkeypatch.setattr(export.choices, 'FREEZE_AUTO_MAX_MIB', 0)
  _, frozen = export.export_model(params.task, task.build_model(), str(tmp_path / 'auto'))
  assert not frozen
