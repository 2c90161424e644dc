"""The serving module in-process: length-sorted chunks give the same logits in request order."""

import numpy as np
import pytest
import tensorflow as tf
from official.core import task_factory

from mrpc_task import configs
from mrpc_task import export
from mrpc_task import tsv_reader
from tests.conftest import read_mrpc, FIXTURE_MRPC, tiny_experiment


@pytest.fixture(scope='module')
def task_and_model():
  with pytest.MonkeyPatch.context() as monkeypatch:
    params = tiny_experiment(monkeypatch, seq_length=48)
  task = task_factory.get_task(params.task)
  return params, task.build_model()


def _dev_pairs():
  dev = read_mrpc(f'{FIXTURE_MRPC}/dev.tsv')
  # Stretch some pairs so the request mixes short and long rows.
  first = [s * (1 + i % 3) for i, s in enumerate(dev.sentence1)]
  return tf.constant(first), tf.constant(dev.sentence2)


_MODULES = {}


def _logits(params, model, first, second, **kwargs):
  """Logits from a serving module built once per model and options (tracing is the cost)."""
  key = (id(model), tuple(sorted(kwargs.items())))
  if key not in _MODULES:
    _MODULES[key] = export.TextServingModule(params.task, model, **kwargs)
  return _MODULES[key].serve(first, second)['logits'].numpy()


def test_sorted_chunks_match_one_padded_batch_row_for_row(task_and_model):
  """Chunks of 3 (sorted by length), one trimmed batch and full padding agree to 1e-5."""
  params, model = task_and_model
  first, second = _dev_pairs()
  lengths = tf.reduce_sum(
      export.TextServingModule(params.task, model).encode(first, second)['input_mask'],
      axis=-1).numpy()
  assert len(set(lengths)) > 5  # The rows really do have different lengths.
  chunked = _logits(params, model, first, second, sort_chunk_size=3)
  whole = _logits(params, model, first, second, sort_chunk_size=0)
  padded = _logits(params, model, first, second, trim_padding=False)
  exact = _logits(params, model, first, second, sort_chunk_size=3, pad_multiple=1)
  assert chunked.shape == (20, 2)
  np.testing.assert_allclose(chunked, whole, atol=1e-5)
  np.testing.assert_allclose(chunked, padded, atol=1e-5)
  np.testing.assert_allclose(chunked, exact, atol=1e-5)
  # Each row is its own pair's answer, not a neighbour's.
  for i in (0, 7, 19):
    alone = _logits(params, model, first[i:i + 1], second[i:i + 1], sort_chunk_size=3)
    np.testing.assert_allclose(chunked[i], alone[0], atol=1e-5)


@pytest.mark.parametrize('rows', [0, 1, 3, 4])
def test_chunking_handles_empty_exact_and_partial_chunks(task_and_model, rows):
  """0 rows, fewer than a chunk, exactly one chunk and one more than a chunk all answer."""
  params, model = task_and_model
  first, second = _dev_pairs()
  out = _logits(params, model, first[:rows], second[:rows], sort_chunk_size=3)
  assert out.shape == (rows, 2)
  np.testing.assert_allclose(
      out, _logits(params, model, first[:rows], second[:rows], sort_chunk_size=0), atol=1e-5)


def test_bad_chunk_size_or_pad_multiple_fails_naming_it(task_and_model):
  """sort_chunk_size < 0 and pad_multiple < 1 are rejected with their names."""
  params, model = task_and_model
  with pytest.raises(ValueError, match='sort_chunk_size=-1'):
    export.TextServingModule(params.task, model, sort_chunk_size=-1)
  with pytest.raises(ValueError, match='pad_multiple=0'):
    export.TextServingModule(params.task, model, pad_multiple=0)


def test_checkpoints_that_cannot_be_exported_are_named(task_and_model, tmp_path):
  """An encoder-only checkpoint, a checkpoint cut short and one of another architecture each
  fail with the checkpoint's path and what is wrong, not a TensorFlow dump."""
  from mrpc_task.checkpoints import pretrained  # pylint: disable=g-import-not-at-top
  from tests.conftest import tiny_encoder  # pylint: disable=g-import-not-at-top
  params, model = task_and_model
  encoder_only = tf.train.Checkpoint(encoder=model.checkpoint_items['encoder']).write(
      str(tmp_path / 'encoder'))
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r"encoder' holds no classifier \(no model/\.\.\. values; it has "
                           r"\['encoder'\]\)"):
    export.restore_classifier(model, encoder_only)
  whole = tf.train.Checkpoint(model=model).write(str(tmp_path / 'ckpt'))
  data_file = tmp_path / 'ckpt.data-00000-of-00001'
  data_file.write_bytes(data_file.read_bytes()[:1000])
  with pytest.raises(pretrained.CheckpointReadError, match=r"ckpt': the checkpoint is damaged"):
    export.restore_classifier(model, whole)
  with pytest.MonkeyPatch.context() as monkeypatch:
    wider_params = tiny_experiment(monkeypatch, encoder=tiny_encoder(hidden_size=48))
  wider = task_factory.get_task(wider_params.task).build_model()
  other = tf.train.Checkpoint(model=wider).write(str(tmp_path / 'wider'))
  with pytest.raises(pretrained.CheckpointMismatchError,
                     match=r"wider' does not fit the tiny model \(.*shape \(41, 48\)"):
    export.restore_classifier(model, other, model_name='the tiny model')
  with pytest.raises(pretrained.CheckpointReadError, match='no checkpoint there'):
    export.restore_classifier(model, str(tmp_path / 'nothing'))


def _members(params, count):
  """`count` more classifiers of the task, each with its own random initialisation."""
  task = task_factory.get_task(params.task)
  return [task.build_model() for _ in range(count)]


def _probabilities(model, module, first, second):
  return tf.nn.softmax(module.outputs(module.encode(first, second), model), axis=-1).numpy()


def test_ensemble_and_order_averaging_serve_the_mean_probability(task_and_model):
  """Members and/or both orders: probabilities are the mean of each model's in each order,
  logits their log, class the argmax; the outputs keep their names, shapes and types."""
  params, model = task_and_model
  members = _members(params, 2)
  first, second = _dev_pairs()
  single = export.TextServingModule(params.task, model)
  models = [model] + members
  expected_ensemble = np.mean([_probabilities(m, single, first, second) for m in models], 0)
  ensemble = export.TextServingModule(params.task, model, members=members)
  served = ensemble.serve(first, second)
  np.testing.assert_allclose(served['probabilities'].numpy(), expected_ensemble, atol=1e-6)
  np.testing.assert_allclose(served['logits'].numpy(), np.log(expected_ensemble), atol=1e-5)
  np.testing.assert_array_equal(served['class_id'].numpy(), expected_ensemble.argmax(-1))
  plain = single.serve(first, second)
  assert {k: (v.dtype, v.shape) for k, v in served.items()} == {
      k: (v.dtype, v.shape) for k, v in plain.items()}

  both = export.TextServingModule(params.task, model, members=members[:1],
                                          average_orders=True)
  expected_both = np.mean([_probabilities(m, single, a, b) for m in (model, members[0])
                           for a, b in ((first, second), (second, first))], 0)
  forward = both.serve(first, second)['probabilities'].numpy()
  np.testing.assert_allclose(forward, expected_both, atol=1e-6)
  # Order-free by construction, while one model alone is not (its near-uniform random outputs
  # differ by ~3e-6 between orders; sums in the other order differ by float rounding only).
  np.testing.assert_allclose(both.serve(second, first)['probabilities'].numpy(), forward,
                             rtol=0, atol=2e-7)
  assert np.abs(_probabilities(model, single, second, first) -
                _probabilities(model, single, first, second)).max() > 1e-6


def test_order_averaging_is_refused_for_order_sensitive_tasks(task_and_model):
  """A task not declared symmetric_pairs (RTE) cannot average the two orders."""
  params, model = task_and_model
  task_config = params.task.replace(symmetric_pairs=False)
  with pytest.raises(configs.ConfigError, match='task.symmetric_pairs=false'):
    export.TextServingModule(task_config, model, average_orders=True)


def test_exported_ensemble_equals_the_in_process_ensemble(task_and_model, tmp_path):
  """An ensemble exported from checkpoints and loaded back serves the in-process outputs."""
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
  params, model = task_and_model
  (member,) = _members(params, 1)
  paths = []
  for index, source in enumerate((model, member)):
    paths.append(tf.train.Checkpoint(model=source).write(str(tmp_path / f'ckpt{index}')))
  first, second = _dev_pairs()
  in_process = export.TextServingModule(params.task, model, members=[member],
                                                average_orders=True)
  expected = in_process.serve(first, second)
  fresh, fresh_member = _members(params, 2)
  path, _ = export.export_model(params.task, fresh, str(tmp_path / 'export'), paths[0],
                                members=[(fresh_member, paths[1])], average_orders=True)
  served = tf.saved_model.load(path).signatures[export.SIGNATURE_KEY](
      sentence1=first, sentence2=second)
  for name in ('logits', 'probabilities', 'class_id'):
    np.testing.assert_allclose(served[name].numpy(), expected[name].numpy(), atol=1e-5)
