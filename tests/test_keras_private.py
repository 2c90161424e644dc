"""Guards of every private Keras, Model Garden and TensorFlow API in mrpc_task/keras_private.py:
what layer decay, dense embedding updates, fast dropout, serving layers and frozen exports
rely on.

When an upgrade of tf-keras or Model Garden changes one of them, the test named after it fails
here, instead of layer decay silently training every layer at the head's rate.
"""

import inspect

import numpy as np
from official.modeling.optimization import ema_optimizer
import pytest
import tensorflow as tf
import tf_keras

from mrpc_task import keras_private


def _zero_rate(apply_state_entry):
  return {k: (v * 0 if k in ('lr_t', 'lr') else v) for k, v in apply_state_entry.items()}


@pytest.mark.parametrize('sparse', [False, True])
def test_apply_methods_are_the_per_variable_update_and_read_the_rate_from_apply_state(sparse):
  """Replacing the instance's apply methods reroutes apply_gradients, dense and sparse, and
  the rate they apply is the one in `apply_state` (zeroed here: the variable stays put)."""
  optimizer = tf_keras.optimizers.legacy.Adam(learning_rate=0.1)
  variable = tf.Variable(np.ones((4, 3), np.float32))
  dense, sparse_fn = keras_private.apply_methods(optimizer)
  calls = []

  def apply_dense(grad, var, apply_state=None):
    calls.append('dense')
    key = (var.device, var.dtype.base_dtype)
    return dense(grad, var, apply_state={key: _zero_rate(apply_state[key])})

  def apply_sparse(grad, var, indices, apply_state=None):
    calls.append('sparse')
    key = (var.device, var.dtype.base_dtype)
    return sparse_fn(grad, var, indices, apply_state={key: _zero_rate(apply_state[key])})

  for name in ('apply_state', 'grad', 'var'):
    assert name in inspect.signature(dense).parameters
    assert name in inspect.signature(sparse_fn).parameters
  keras_private.set_apply_methods(optimizer, apply_dense, apply_sparse)
  assert type(optimizer)._resource_apply_dense is not apply_dense  # The class is untouched.  pylint: disable=protected-access
  if sparse:
    gradient = tf.IndexedSlices(tf.ones((2, 3)), tf.constant([0, 2]), tf.constant([4, 3]))
  else:
    gradient = tf.ones((4, 3))
  optimizer.apply_gradients([(gradient, variable)])
  assert calls == ['sparse' if sparse else 'dense']
  np.testing.assert_array_equal(variable.numpy(), np.ones((4, 3)))
  # Without the wrapper, the same step moves the variable: the zero rate was what held it.
  fresh = tf_keras.optimizers.legacy.Adam(learning_rate=0.1)
  fresh.apply_gradients([(gradient, variable)])
  assert np.abs(variable.numpy() - 1).max() > 0.05


def test_fallback_apply_state_holds_the_rates_the_apply_methods_read():
  optimizer = tf_keras.optimizers.legacy.Adam(learning_rate=0.25)
  variable = tf.Variable(1.0)
  optimizer.apply_gradients([(tf.constant(1.0), variable)])  # Creates the slots and iterations.
  state = keras_private.fallback_apply_state(optimizer, variable.device, tf.float32)
  # The rate, read by the dense path (its fused kernel applies the bias correction) ...
  assert float(state['lr_t']) == pytest.approx(0.25)
  # ... and the bias-corrected rate of the next step (the 2nd), read by the sparse path.
  assert float(state['lr']) == pytest.approx(0.25 * (1 - 0.999**2)**0.5 / (1 - 0.9**2), rel=1e-4)


def test_wrapped_optimizer_finds_model_gardens_ema_and_loss_scale_inner_optimizers():
  adam = tf_keras.optimizers.legacy.Adam()
  ema = ema_optimizer.ExponentialMovingAverage(adam, trainable_weights_only=True)
  assert keras_private.wrapped_optimizer(ema) is adam
  scaled = tf_keras.mixed_precision.LossScaleOptimizer(adam)
  assert keras_private.wrapped_optimizer(scaled) is adam
  assert keras_private.wrapped_optimizer(adam) is None


def test_sparse_apply_receives_every_indexed_slices_gradient_with_its_repeated_rows():
  """apply_gradients sends an IndexedSlices gradient, repeated rows and all, to the method
  set_sparse_apply replaces; what it returns is the update."""
  optimizer = tf_keras.optimizers.legacy.SGD(learning_rate=1.0)
  variable = tf.Variable(np.zeros((4, 2), np.float32))
  seen = []

  def apply_sparse(grad, var, indices, apply_state=None):
    del apply_state
    seen.append(indices.numpy().tolist())
    return var.scatter_add(tf.IndexedSlices(-grad, indices))

  keras_private.set_sparse_apply(optimizer, apply_sparse)
  gradient = tf.IndexedSlices(tf.ones((3, 2)), tf.constant([1, 1, 3]), tf.constant([4, 2]))
  optimizer.apply_gradients([(gradient, variable)])
  assert seen == [[1, 1, 3]]  # Not summed first: the replaced method gets the raw rows.
  np.testing.assert_array_equal(variable.numpy(), [[0, 0], [-2, -2], [0, 0], [-1, -1]])


def test_recast_layer_keeps_a_dropout_instance_whole_and_refuses_a_stateful_subclass():
  """A built Dropout recast to a call-only subclass keeps its name, config and rate; the
  Dropout constructor still sets every attribute FastDropout.call reads; a subclass with
  its own __init__ (state the instance lacks) or of another class is refused."""
  from mrpc_task import fast_dropout  # pylint: disable=g-import-not-at-top
  layer = tf_keras.layers.Dropout(0.25, name='drop')
  config = layer.get_config()
  keras_private.recast_layer(layer, fast_dropout.FastDropout)
  assert type(layer) is fast_dropout.FastDropout
  assert layer.name == 'drop' and layer.get_config() == config
  source = inspect.getsource(fast_dropout.FastDropout.call)
  for attribute in ('rate', 'noise_shape'):
    assert f'self.{attribute}' in source and hasattr(layer, attribute)

  class Stateful(tf_keras.layers.Dropout):

    def __init__(self, rate):
      super().__init__(rate)
      self.extra = 1

  with pytest.raises(TypeError, match='without an __init__'):
    keras_private.recast_layer(tf_keras.layers.Dropout(0.1), Stateful)
  with pytest.raises(TypeError, match='must subclass'):
    keras_private.recast_layer(tf_keras.layers.Dense(1), fast_dropout.FastDropout)


def test_block_parts_are_the_sublayers_model_gardens_call_runs():
  """The private attributes of Model Garden's TransformerEncoderBlock that serving_layers
  reads: each sublayer exists with the type it relies on, Model Garden's call reads each
  one, and the structural flags tell a post-norm block from a pre-norm or linformer one."""
  from official.nlp.modeling import layers as nlp_layers  # pylint: disable=g-import-not-at-top
  block = nlp_layers.TransformerEncoderBlock(num_attention_heads=2, inner_dim=8,
                                             inner_activation='relu', output_range=1)
  block([tf.ones((1, 3, 4)), tf.ones((1, 3, 3))])
  parts = keras_private.block_parts(block)
  assert isinstance(parts.intermediate, tf_keras.layers.EinsumDense)
  assert isinstance(parts.output, tf_keras.layers.EinsumDense)
  assert isinstance(parts.activation, tf_keras.layers.Activation)
  for norm in (parts.attention_norm, parts.output_norm):
    assert isinstance(norm, tf_keras.layers.LayerNormalization)
  source = inspect.getsource(nlp_layers.TransformerEncoderBlock.call)
  for attribute in ('_attention_layer', '_attention_dropout', '_attention_layer_norm',
                    '_intermediate_dense', '_intermediate_activation_layer',
                    '_inner_dropout_layer', '_output_dense', '_output_dropout',
                    '_output_layer_norm', '_norm_first', '_use_query_residual',
                    '_linformer_dim', '_return_attention_scores', '_output_range'):
    assert f'self.{attribute}' in source, attribute
  assert keras_private.block_output_range(block) == 1
  assert keras_private.block_is_post_norm_self_attention(block)
  for other in (dict(norm_first=True), dict(linformer_dim=2), dict(use_bias=False),
                dict(use_query_residual=False)):
    variant = nlp_layers.TransformerEncoderBlock(num_attention_heads=2, inner_dim=8,
                                                 inner_activation='relu', **other)
    assert not keras_private.block_is_post_norm_self_attention(variant), other


def test_frozen_function_reads_each_variable_once_and_keeps_no_variable():
  """convert_variables_to_constants_v2: the frozen function answers as the traced one did
  when frozen, captures nothing, and does not follow later assignments."""
  variable = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
  traced = tf.function(lambda x: tf.matmul(x, variable)).get_concrete_function(
      tf.TensorSpec([None, 2], tf.float32))
  frozen = keras_private.frozen_function(traced)
  assert not frozen.captured_inputs
  x = tf.constant([[1.0, 1.0]])
  np.testing.assert_array_equal(tf.nest.flatten(frozen(x))[0], [[4.0, 6.0]])
  variable.assign(tf.zeros((2, 2)))
  np.testing.assert_array_equal(tf.nest.flatten(frozen(x))[0], [[4.0, 6.0]])
