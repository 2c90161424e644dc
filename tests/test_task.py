"""The Task trains, restores its encoder, and rejects checkpoints that do not fit."""

import os

import numpy as np
import pytest
import tensorflow as tf
from official.core import task_factory
from official.nlp.configs import encoders

from mrpc_task import norm_gradient
from mrpc_task.checkpoints import cache
from mrpc_task.checkpoints import pretrained
from registry import experiments
from tests.conftest import tiny_encoder, tiny_experiment


def _task_and_model(params):
  task = task_factory.get_task(params.task)
  return task, task.build_model()


def _dataset_loss(task, model, params):
  """Mean loss over the whole (finite) training file, in inference mode."""
  data = params.task.train_data.replace(is_training=False, drop_remainder=False)
  losses = [float(task.build_losses(labels, model(features, training=False))) * len(labels)
            for features, labels in task.build_inputs(data)]
  return sum(losses) / 48


@pytest.mark.parametrize('pooling, output_range', [('pooler', 1), ('mean', None)])
def test_one_train_step_changes_every_trainable_variable(monkeypatch, pooling, output_range):
  """After one step every trainable variable of encoder and head has moved.

  Both the recipes' last layer on [CLS] only (pooler) and the full encoder (mean pooling).
  """
  params = tiny_experiment(monkeypatch, output_range=output_range)
  params.task.model.pooling = pooling
  params.validate()
  task, model = _task_and_model(params)
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  batch = next(iter(task.build_inputs(params.task.train_data)))
  model(batch[0])
  before = [v.numpy().copy() for v in model.trainable_variables]
  optimizer.learning_rate = 1e-3  # Past warm-up, so step 0 is not a zero-rate step.
  task.train_step(batch, model, optimizer, metrics=task.build_metrics())
  unchanged = [v.name for v, old in zip(model.trainable_variables, before)
               if np.array_equal(v.numpy(), old)]
  assert len(model.trainable_variables) > 20
  # Mean pooling does not use the encoder's own pooler layer.
  unused = ['pooler_transform/kernel:0', 'pooler_transform/bias:0'] if pooling == 'mean' else []
  assert unchanged == unused


def test_loss_falls_over_twenty_seeded_steps(monkeypatch):
  """20 seeded steps lower the loss over the training file by a clear margin."""
  params = tiny_experiment(monkeypatch, warmup_fraction=0.0, learning_rate=5e-3)
  task, model = _task_and_model(params)
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  metrics = task.build_metrics()
  step = tf.function(lambda batch: task.train_step(batch, model, optimizer, metrics))
  batches = iter(task.build_inputs(params.task.train_data))
  before = _dataset_loss(task, model, params)
  for _ in range(20):
    step(next(batches))
  after = _dataset_loss(task, model, params)
  assert after < before - 0.05, (before, after)


def test_initialize_restores_encoder_checkpoint(monkeypatch, tmp_path):
  """init_checkpoint written from a tiny encoder is restored into the classifier."""
  source = encoders.build_encoder(tiny_encoder())
  prefix = tf.train.Checkpoint(encoder=source).write(str(tmp_path / 'encoder'))
  params = tiny_experiment(monkeypatch, init_checkpoint=prefix)
  task, model = _task_and_model(params)
  task.initialize(model)
  restored = model.checkpoint_items['encoder'].variables
  assert len(restored) == len(source.variables)
  for want, got in zip(source.variables, restored):
    np.testing.assert_array_equal(want.numpy(), got.numpy())


def test_initialize_rejects_mismatched_checkpoint_naming_variables(monkeypatch, tmp_path):
  """A 3-layer checkpoint into a 2-layer encoder fails, naming the extra layer's variables."""
  source = encoders.build_encoder(tiny_encoder(num_layers=3))
  prefix = tf.train.Checkpoint(encoder=source).write(str(tmp_path / 'encoder'))
  params = tiny_experiment(monkeypatch, init_checkpoint=prefix)
  task, model = _task_and_model(params)
  with pytest.raises(pretrained.CheckpointMismatchError) as error:
    task.initialize(model)
  message = str(error.value)
  assert 'task.init_checkpoint' in message and 'transformer/layer_2/' in message


def test_initialize_names_missing_checkpoint(monkeypatch, tmp_path):
  """A checkpoint path with nothing there fails naming the key and path."""
  params = tiny_experiment(monkeypatch, init_checkpoint=str(tmp_path / 'nothing'))
  task, model = _task_and_model(params)
  with pytest.raises(pretrained.CheckpointReadError, match='init_checkpoint=.*nothing'):
    task.initialize(model)


def test_init_from_hf_converts_once_and_checks_activation(monkeypatch, tmp_path):
  """The packaged MiniLM is converted into the cache once; a wrong activation is refused."""
  monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
  params = tiny_experiment(monkeypatch, encoder=experiments.minilm_encoder(),
                           init_from_hf=experiments.minilm_dir(),
                           vocab_file=os.path.join(experiments.minilm_dir(), 'vocab.txt'))
  task, model = _task_and_model(params)
  task.initialize(model)
  entries = [e for e in os.listdir(tmp_path) if not e.startswith('.')]
  assert len(entries) == 1
  index = tmp_path / entries[0] / 'encoder.index'
  written = index.stat().st_mtime_ns
  task.initialize(model)
  assert index.stat().st_mtime_ns == written  # Reused, not converted again.
  params.task.model.encoder.bert.hidden_activation = 'gelu'
  task, model = _task_and_model(params)
  with pytest.raises(pretrained.CheckpointMismatchError, match='hidden_activation'):
    task.initialize(model)


def test_vocab_size_must_match_encoder(monkeypatch):
  """A 41-token vocab with a 30,522-row encoder fails naming the key and both sizes."""
  params = tiny_experiment(monkeypatch, encoder=tiny_encoder(vocab_size=30522))
  with pytest.raises(ValueError, match=r'task\.train_data\.vocab_file=.*41 tokens.*30522'):
    task_factory.get_task(params.task)


def test_batch_not_divisible_by_replicas_fails_naming_key(monkeypatch):
  """A global batch of 9 over 2 replicas fails in the input pipeline, naming the key."""
  params = tiny_experiment(monkeypatch, train_batch_size=9)
  task = task_factory.get_task(params.task)
  context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                       num_replicas_in_sync=2)
  with pytest.raises(ValueError, match='global_batch_size=9.*2'):
    task.build_inputs(params.task.train_data, context)


def test_initialize_accepts_checkpoints_with_more_than_the_encoder(monkeypatch, tmp_path):
  """A `.save()` checkpoint (save_counter) with a pretraining head beside the encoder restores."""
  source = encoders.build_encoder(tiny_encoder())
  head = tf.Variable(tf.ones([3]))
  prefix = tf.train.Checkpoint(encoder=source, masked_lm=tf.train.Checkpoint(w=head)).save(
      str(tmp_path / 'pretrain'))
  params = tiny_experiment(monkeypatch, init_checkpoint=prefix)
  task, model = _task_and_model(params)
  task.initialize(model)
  np.testing.assert_array_equal(source.variables[0].numpy(),
                                model.checkpoint_items['encoder'].variables[0].numpy())


def test_layer_decay_scales_each_variables_step_by_its_depth(monkeypatch):
  """With layer_decay 0.5 and plain SGD-like first Adam steps, each variable moves by
  rate * 0.5**(3 - depth): head 1x, layer 1 0.5x, layer 0 0.25x, embeddings 0.125x."""
  from mrpc_task import layer_decay  # pylint: disable=g-import-not-at-top
  params = tiny_experiment(monkeypatch, warmup_fraction=0.0, learning_rate=1e-3)
  moved = {}
  for decay in (1.0, 0.5):
    params.task.layer_decay = decay
    task, model = _task_and_model(params)
    batch = next(iter(task.build_inputs(params.task.train_data)))
    model(batch[0])
    model.set_weights(moved.get('start') or model.get_weights())
    moved.setdefault('start', model.get_weights())
    optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
    task.train_step(batch, model, optimizer, metrics=[])
    moved[decay] = {v.name: np.abs(v.numpy() - w).max()
                    for v, w in zip(model.trainable_variables, moved['start'])}
  # Adam's first step moves every weight by ~rate, so the ratio is the factor.
  checked = set()
  for name, full in moved[1.0].items():
    if full < 1e-4:
      continue  # Unused embedding rows etc. do not move at all.
    want = layer_decay.rate_factor(name, 2, 0.5)
    assert moved[0.5][name] / full == pytest.approx(want, rel=0.02), name
    checked.add(want)
  assert checked == {1.0, 0.5, 0.25, 0.125}  # Head, both layers and embeddings compared.
  assert layer_decay.rate_factor('word_embeddings/embeddings:0', 2, 0.5) == 0.125
  assert layer_decay.rate_factor('transformer/layer_0/output/kernel:0', 2, 0.5) == 0.25
  assert layer_decay.rate_factor('transformer/layer_1/output/kernel:0', 2, 0.5) == 0.5
  assert layer_decay.rate_factor('pooler_transform/kernel:0', 2, 0.5) == 1.0


def test_layer_decay_names_the_layers_it_found(monkeypatch):
  from mrpc_task import layer_decay  # pylint: disable=g-import-not-at-top
  params = tiny_experiment(monkeypatch)
  params.task.layer_decay = 0.5
  _, model = _task_and_model(params)
  assert layer_decay.check_layers([v.name for v in model.trainable_variables], 2, 0.5) == (
      'layer decay 0.5: embeddings: 5 variables x0.125, layer_0: 16 x0.25, layer_1: 16 x0.5, '
      'head: 4 x1')


def test_layer_decay_refuses_an_encoder_whose_layers_it_cannot_find(monkeypatch):
  """ALBERT shares one set of layer weights, named without a layer index: decay per layer
  has nothing to scale, so building the model fails, naming the key, instead of training
  without decay."""
  from mrpc_task import layer_decay  # pylint: disable=g-import-not-at-top
  albert = encoders.EncoderConfig(type='albert', albert=encoders.AlbertEncoderConfig(
      vocab_size=41, embedding_width=16, hidden_size=32, num_layers=2, num_attention_heads=2,
      intermediate_size=64, max_position_embeddings=64))
  params = tiny_experiment(monkeypatch, encoder=albert)
  params.task.layer_decay = 0.5
  with pytest.raises(layer_decay.LayerDecayError,
                     match=r'task.layer_decay=0.5: expected transformer layers 0..1 .* found '
                           r'none among \d+ variables; set task.layer_decay=1.0'):
    _task_and_model(params)
  params.task.layer_decay = 1.0
  _task_and_model(params)  # Without decay the same encoder builds.


def test_dense_embedding_updates_take_the_same_adam_steps(monkeypatch):
  """Densified embedding gradients (fused Adam) end 3 steps with the sparse path's weights."""
  params = tiny_experiment(monkeypatch, warmup_fraction=0.0, learning_rate=1e-2)
  params.task.layer_decay = 0.5
  weights = {}
  for dense in (False, True):
    params.task.dense_embedding_updates = dense
    task, model = _task_and_model(params)
    batches = iter(task.build_inputs(params.task.train_data))
    first = next(batches)
    model(first[0])
    model.set_weights(weights.get('start') or model.get_weights())
    weights.setdefault('start', model.get_weights())
    with tf.GradientTape() as tape:
      loss = task.build_losses(first[1], model(first[0], training=True))
    embedding = next(v for v in model.trainable_variables if 'word_embeddings' in v.name)
    # The path under test is taken only for sparse gradients, as the embedding lookup gives.
    assert isinstance(tape.gradient(loss, embedding), tf.IndexedSlices)
    start_embedding = embedding.numpy()
    optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
    for batch in (first, next(batches), next(batches)):
      task.train_step(batch, model, optimizer, metrics=[])
    weights[dense] = {v.name: v.numpy() for v in model.trainable_variables}
  moved = np.abs(weights[False][embedding.name] - start_embedding).max()
  assert moved > 1e-3  # The embeddings did train.
  for name, value in weights[False].items():
    np.testing.assert_allclose(weights[True][name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_dense_embedding_updates_never_read_the_whole_table():
  """The densified apply takes the table's row count from its static shape: a read of a
  variable that sparse ops gather from copies it whole (47 MB a step for MiniLM)."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  from mrpc_task import dense_updates  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default() as graph:
    table = tf.Variable(tf.zeros([10, 4]))

    def op_types():
      return [op.type for op in graph.get_operations() if table.handle in list(op.inputs)]

    before = op_types()
    optimizer = dense_updates.apply_sparse_as_dense(tf_keras.optimizers.legacy.Adam(0.1))
    rows = tf.IndexedSlices(tf.ones([3, 4]), tf.constant([1, 3, 1]), tf.constant([10, 4]))
    update = optimizer.apply_gradients([(rows, table)])
    added = op_types()[len(before):]
    assert 'ResourceApplyAdam' in added  # The dense kernel updates the table...
    assert 'ReadVariableOp' not in added  # ...and nothing reads it whole.
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(update)
      # Adam's first step: -lr * sign(gradient) on the batch's rows, nothing elsewhere.
      np.testing.assert_allclose(session.run(table)[[0, 2]], 0.0)
      np.testing.assert_allclose(session.run(table)[[1, 3]], -0.1, rtol=1e-4)


@pytest.mark.parametrize('switch', [True, False])
def test_xla_training_kernels_serve_training_steps_only(monkeypatch, switch):
  """With task.model.xla_training_kernels (mixed bfloat16 here) the task's train_step runs the
  GELU's one-kernel forward pass and gives its layer norms their fused gradient; its
  validation_step runs plain ops. Without the switch, neither."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  from mrpc_task import activations  # pylint: disable=g-import-not-at-top
  compiled = activations._compiled_gelu_in_float32  # pylint: disable=protected-access
  calls = []
  monkeypatch.setattr(activations, '_compiled_gelu_in_float32',
                      lambda x: calls.append(x.dtype) or compiled(x))
  params = tiny_experiment(monkeypatch, encoder=tiny_encoder(
      hidden_activation=activations.EXACT_GELU))
  params.task.model.xla_training_kernels = switch
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    task, model = _task_and_model(params)
    batch = next(iter(task.build_inputs(params.task.train_data)))
    task.validation_step(batch, model, metrics=[])
    assert not calls
    optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
    task.train_step(batch, model, optimizer, metrics=[])
    if switch:
      calls.clear()
      task.validation_step(batch, model, metrics=[])  # After training's layers changed.
      assert not calls
      task.train_step(batch, model, optimizer, metrics=[])
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  # One per layer, on the bfloat16 input itself: Model Garden's blocks run their activation
  # in float32 under mixed bfloat16, and the casts around it are the kernel's.
  assert calls == ([tf.bfloat16] * 2 if switch else [])
  activation_types = {type(layer) for layer in model.submodules
                      if isinstance(layer, tf_keras.layers.Activation)}
  assert activation_types == {activations.RoundingGeluActivation if switch
                              else tf_keras.layers.Activation}
  norm_types = [type(layer) for layer in model.submodules
                if isinstance(layer, tf_keras.layers.LayerNormalization)]
  # The embeddings' layer norm, then two per layer.
  assert norm_types == [norm_gradient.XlaGradientLayerNorm if switch
                        else tf_keras.layers.LayerNormalization] * 5
