"""bfloat16 exports: which runs get them, and that they answer what the run's evaluation did."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from official.core import task_factory

from mrpc_task import configs
from mrpc_task import export
from mrpc_task import serving_dtype
from tests.conftest import FIXTURE_MRPC, read_mrpc, stored_weights, tiny_encoder, tiny_experiment


@pytest.mark.parametrize('requested, trained, expected', [
    ('auto', 'bfloat16', 'bfloat16'),
    ('auto', '', 'float32'),
    ('auto', None, 'float32'),
    ('auto', 'float16', 'float32'),
    ('float32', 'bfloat16', 'float32'),
    ('bfloat16', '', 'bfloat16'),
])
def test_auto_follows_the_type_the_run_computed_in(requested, trained, expected):
  assert serving_dtype.resolve(requested, trained) == expected


def test_an_unknown_type_is_refused_with_the_choices():
  with pytest.raises(configs.ConfigError, match="serving_dtype='fp16'.*auto, float32, bfloat16"):
    serving_dtype.resolve('fp16', 'bfloat16')


@pytest.fixture(scope='module')
def trained_like():
  """A tiny model with random weights (as a checkpoint would give), its task, and a batch."""
  with pytest.MonkeyPatch.context() as monkeypatch:
    params = tiny_experiment(monkeypatch, seq_length=48)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  dev = read_mrpc(f'{FIXTURE_MRPC}/dev.tsv')
  return params, task, model, (tf.constant(dev.sentence1), tf.constant(dev.sentence2))


def test_recast_rounds_each_weight_and_keeps_layer_norms_float32(trained_like):
  params, task, model, _ = trained_like
  del params
  copy = serving_dtype.recast(model, task.build_model, 'bfloat16')
  assert serving_dtype.recast(model, task.build_model, 'float32') is model
  kinds = {}
  for source, target in zip(model.variables, copy.variables):
    kinds.setdefault(target.dtype.name, []).append(target.name)
    np.testing.assert_array_equal(tf.cast(source, target.dtype).numpy(), target.numpy())
  assert set(kinds) == {'bfloat16', 'float32'}
  assert all('norm' in name for name in kinds['float32']), kinds['float32']
  assert len(kinds['bfloat16']) > len(kinds['float32'])  # Every kernel, bias and embedding.
  assert tf_keras.mixed_precision.global_policy().name == 'float32'  # Put back.


def test_bfloat16_export_is_as_close_to_float32_as_the_runs_evaluation(trained_like, tmp_path):
  """The exported bfloat16 SavedModel stores bfloat16 weights, and its logits are no further
  from the float32 model's than those of the float32 weights run under the mixed_bfloat16
  policy (as Orbit evaluates a bfloat16 run) on the same pairs."""
  params, task, model, (first, second) = trained_like
  checkpoint = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt'))
  path, _ = export.export_model(params.task, task.build_model(), str(tmp_path / 'export'),
                                checkpoint, serving_dtype='bfloat16',
                                build_model=task.build_model)
  loaded = tf.saved_model.load(path)
  stored = stored_weights(path)
  norms = sum(v.shape.num_elements() for v in model.variables if 'norm' in v.name)
  assert stored['bfloat16'] == model.count_params() - norms  # Each kernel, bias, embedding once.
  assert stored['float32'] >= norms  # Layer norms stay float32.
  served = loaded.signatures[export.SIGNATURE_KEY](
      sentence1=first, sentence2=second)['logits'].numpy()

  float32 = export.TextServingModule(params.task, model)  # Held: serve() refers to it.
  in_float32 = float32.serve(first, second)['logits'].numpy()
  with serving_dtype.keras_policy('mixed_bfloat16'):
    mixed = task.build_model()
  mixed.set_weights(model.get_weights())
  evaluation = export.TextServingModule(params.task, mixed)
  evaluated = evaluation.serve(first, second)['logits'].numpy()

  evaluation_error = np.abs(evaluated - in_float32).max()
  assert 0 < evaluation_error < 0.1 * np.abs(in_float32).max()  # bfloat16 rounding, no more.
  assert 0 < np.abs(served - in_float32).max() <= 1.5 * evaluation_error
  assert np.abs(served - evaluated).max() <= evaluation_error


def test_bfloat16_export_needs_a_builder(trained_like, tmp_path):
  params, _, model, _ = trained_like
  with pytest.raises(ValueError, match='needs build_model'):
    export.export_model(params.task, model, str(tmp_path / 'export'),
                        serving_dtype='bfloat16')



@pytest.mark.parametrize('bert', [{'num_layers': 3}, {'intermediate_size': 48}])
def test_recast_refuses_a_builder_of_another_model(trained_like, bert):
  """A copy whose variables do not line up (more of them, or other shapes) is refused, not
  filled."""
  _, _, model, _ = trained_like
  with pytest.MonkeyPatch.context() as monkeypatch:
    other = tiny_experiment(monkeypatch, seq_length=48, encoder=tiny_encoder(**bert))
  other_task = task_factory.get_task(other.task)
  with pytest.raises(ValueError, match='does not have the float32 model'):
    serving_dtype.recast(model, other_task.build_model, 'bfloat16')
