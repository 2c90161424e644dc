"""Every private Keras, Model Garden and TensorFlow API mrpc_task uses, in one place, each with why.

Model Garden's optimizers are legacy Keras optimizers, and two features need to reach inside
them, on one optimizer instance at a time (the class is never touched); three more reach into
the dropout, layer-norm and activation layers Model Garden's encoders build:
- layer decay (`layer_decay.py`): a legacy optimizer applies one learning rate to every
  variable and has no public hook for a per-variable one (scaling gradients instead does
  nothing under Adam, whose step ignores a gradient's scale). The rate reaches each
  variable's update through two per-variable apply methods and the `apply_state`
  coefficients they read, so layer decay wraps those methods.
- dense embedding updates (`dense_updates.py`): an `IndexedSlices` gradient goes through one
  method, which they replace with "scatter into a dense gradient, then the dense apply".
- fast dropout (`fast_dropout.py`): Model Garden's encoders create their
  `tf_keras.layers.Dropout` layers inside their constructors, with no way to pass another
  layer, so each built layer instance's class is changed to a subclass that only overrides
  `call` (no state of its own: the instance's attributes, set by Dropout's constructor, are
  all it reads).
- layer norms with a fused gradient (`norm_gradient.py`): the same, for the
  `LayerNormalization` layers of a model about to train (`task.model.xla_training_kernels`).
- the feed-forward GELU of training (`activations.use_rounding_gelu`): the same, for each
  block's float32 `Activation` layer (found with `block_parts`, below) whose output a 16-bit
  layer reads; the subclass overrides `__call__` (public) so that, in a training step, a
  bfloat16 input is not cast to float32 before the kernel that does that itself.

One feature reads private attributes of Model Garden's `TransformerEncoderBlock`, which has
no public accessors for its sublayers or structural options:
- serving layers (`serving_layers.py`): an export runs each post-norm block's feed-forward
  layers as a 2-D `MatMul` + `BiasAdd` + GELU, which oneDNN fuses into one kernel; it calls
  the block's own sublayers in the order Model Garden's `call` does, and needs to know the
  block's form to run Model Garden's `call` for any other.

And one TensorFlow function has no public counterpart in TensorFlow 2:
- frozen weights (`export._FrozenForward`): `convert_variables_to_constants_v2` (what the
  TFLite converter uses) makes a traced function's variables constants, which oneDNN's
  kernels keep in their own layout between calls.

And tfm's start-up relies on how tf_keras imports pandas:
- no pandas in a tfm process (`cli.main.import_tensorflow`): tf_keras's data adapter imports
  pandas (and pandas pyarrow: 62-76 MB) in a `try` that carries on without it, only for
  `model.fit` on a DataFrame; tfm hides pandas while TensorFlow loads. Checked by
  `test_a_run_of_ours_loads_neither_model_gardens_vision_nor_keras_3_nor_pandas`
  (tests/test_cli_errors.py), which fails if tf_keras loads pandas another way or cannot
  load without it.

tests/test_keras_private.py checks each API below for what this module relies on, so an
upgrade of tf-keras that changes one fails there, by name, instead of silently training
every layer at the same rate or taking another path.
"""

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import tf_keras
from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-direct-tensorflow-import

LegacyOptimizer = tf_keras.optimizers.legacy.Optimizer
ApplyDense = Callable[..., object]  # (grad, var, apply_state=None) -> update op
ApplySparse = Callable[..., object]  # (grad, var, indices, apply_state=None) -> update op


def wrapped_optimizer(optimizer):
  """The optimizer inside a wrapper, or None.

  `inner_optimizer` is public (mixed-precision `LossScaleOptimizer`); `_optimizer` is private:
  Model Garden's `ExponentialMovingAverage` keeps the optimizer it wraps there and offers no
  public accessor.
  """
  for attribute in ('_optimizer', 'inner_optimizer'):
    inner = getattr(optimizer, attribute, None)
    if inner is not None and inner is not optimizer:
      return inner
  return None


def apply_methods(optimizer: LegacyOptimizer) -> Tuple[ApplyDense, ApplySparse]:
  """`_resource_apply_dense` and `_resource_apply_sparse`: where one variable's update is
  computed from its gradient and `apply_state[(device, dtype)]` (its `lr_t` / `lr`)."""
  # pylint: disable=protected-access
  return optimizer._resource_apply_dense, optimizer._resource_apply_sparse


def set_apply_methods(optimizer: LegacyOptimizer, dense: ApplyDense, sparse: ApplySparse):
  """Makes this optimizer instance (not its class) update variables through `dense` and
  `sparse`. Keras passes `apply_state` only to functions that declare that parameter."""
  optimizer._resource_apply_dense = dense  # pylint: disable=protected-access
  optimizer._resource_apply_sparse = sparse  # pylint: disable=protected-access


def fallback_apply_state(optimizer: LegacyOptimizer, var_device, var_dtype) -> Dict[str, object]:
  """`_fallback_apply_state`: the coefficients Keras computes itself when `apply_state` has
  no entry for a (device, dtype), as when it is called outside `apply_gradients`."""
  return optimizer._fallback_apply_state(var_device, var_dtype)  # pylint: disable=protected-access


def set_sparse_apply(optimizer: LegacyOptimizer, apply_sparse: ApplySparse):
  """Makes this optimizer instance send `IndexedSlices` gradients (whose rows may repeat) to
  `apply_sparse` (Keras' `_resource_apply_sparse_duplicate_indices`, which by default sums
  the repeated rows and calls `_resource_apply_sparse`)."""
  optimizer._resource_apply_sparse_duplicate_indices = apply_sparse  # pylint: disable=protected-access


def recast_layers(model: tf_keras.layers.Layer, subclasses: Dict[type, type]) -> int:
  """`recast_layer` on every layer inside `model` (itself included) whose class is exactly a
  key of `subclasses`, to the class it maps to; returns how many layers changed."""
  changed = 0
  for layer in [model, *model.submodules]:
    subclass = subclasses.get(type(layer))
    if subclass is not None:
      recast_layer(layer, subclass)
      changed += 1
  return changed


def recast_layer(layer: tf_keras.layers.Layer, subclass: type):
  """Makes one built layer instance an instance of `subclass` of its class (the class itself
  is untouched), keeping its name, config and place in the model.

  Raises:
    TypeError: `subclass` does not derive from the layer's class, or defines its own
      `__init__` (it would expect state the instance was not built with).
  """
  if not issubclass(subclass, type(layer)) or '__init__' in vars(subclass):
    raise TypeError(f'{subclass.__name__} must subclass {type(layer).__name__} without an '
                    '__init__ of its own')
  layer.__class__ = subclass


@dataclasses.dataclass(frozen=True)
class BlockParts:
  """The sublayers of a Model Garden `TransformerEncoderBlock`, in the order its post-norm
  `call` runs them."""
  attention: tf_keras.layers.Layer
  attention_dropout: tf_keras.layers.Layer
  attention_norm: tf_keras.layers.Layer
  intermediate: tf_keras.layers.EinsumDense
  activation: tf_keras.layers.Activation
  inner_dropout: tf_keras.layers.Layer
  output: tf_keras.layers.EinsumDense
  output_dropout: tf_keras.layers.Layer
  output_norm: tf_keras.layers.Layer


# pylint: disable=protected-access
def block_parts(block) -> BlockParts:
  """The sublayers of `block` (a `TransformerEncoderBlock`)."""
  return BlockParts(
      attention=block._attention_layer, attention_dropout=block._attention_dropout,
      attention_norm=block._attention_layer_norm, intermediate=block._intermediate_dense,
      activation=block._intermediate_activation_layer, inner_dropout=block._inner_dropout_layer,
      output=block._output_dense, output_dropout=block._output_dropout,
      output_norm=block._output_layer_norm)


def block_is_post_norm_self_attention(block) -> bool:
  """Whether `block` is the original BERT form: layer norm after each residual add, the
  query added back, biases, full-rank keys and values, no attention scores returned."""
  return (not block._norm_first and block._use_query_residual and block._use_bias
          and block._linformer_dim is None and not block._return_attention_scores)


def block_output_range(block) -> Optional[int]:
  """The `output_range` the block was built with (positions [0, n) of its output)."""
  return block._output_range
# pylint: enable=protected-access


def frozen_function(function):
  """The concrete `function` with every variable it reads replaced by a constant holding
  the variable's current value."""
  return convert_to_constants.convert_variables_to_constants_v2(function)
