"""Layer-wise learning-rate decay: lower encoder layers train at a smaller rate.

Fine-tuning on a few thousand pairs, the lower layers of a pretrained encoder hold general
features worth keeping, while the top layers and the new head must move most (ELECTRA, and
Zhang et al. 2021 on few-sample BERT fine-tuning, use this). Model Garden's optimizers take
one rate for every variable, and scaling gradients instead does nothing under Adam (its
update is invariant to a gradient's scale), so the rate itself is scaled per variable: the
optimizer's per-variable apply methods get the rate times `decay ** (top - depth)`.
"""

import re
import tensorflow as tf
import tf_keras

_LAYER = re.compile(r'(?:^|/)transformer/layer_(\d+)/')
_EMBEDDING = re.compile(r'(?:^|/)(?:word_embeddings|position_embedding|type_embeddings|'
                        r'embeddings/layer_norm|embedding_projection)/')


def depth(variable_name: str, num_layers: int) -> int:
  """0 for embeddings, k + 1 for transformer layer k, num_layers + 1 for pooler and head."""
  layer = _LAYER.search(variable_name)
  if layer:
    return int(layer.group(1)) + 1
  if _EMBEDDING.search(variable_name):
    return 0
  return num_layers + 1


def rate_factor(variable_name: str, num_layers: int, decay: float) -> float:
  """The multiplier of the learning rate for one variable: 1 for the head, decay per layer down."""
  return decay ** (num_layers + 1 - depth(variable_name, num_layers))


def innermost(optimizer):
  """The optimizer that applies updates, under Model Garden's EMA or loss-scale wrappers."""
  for attribute in ('_optimizer', 'inner_optimizer'):
    inner = getattr(optimizer, attribute, None)
    if inner is not None and inner is not optimizer:
      return innermost(inner)
  return optimizer


def apply_layer_decay(optimizer: tf_keras.optimizers.legacy.Optimizer, *, num_layers: int,
                      decay: float) -> tf_keras.optimizers.legacy.Optimizer:
  """Makes `optimizer` scale its rate per variable by `rate_factor`; returns it.

  Args:
    optimizer: a legacy Keras optimizer whose apply methods read `lr_t` / `lr` from
      `apply_state` (Adam, Model Garden's AdamWeightDecay), possibly wrapped in EMA.
    num_layers: transformer layers of the encoder.
    decay: factor per layer; 1.0 leaves the optimizer as it is.

  Raises:
    ValueError: decay outside (0, 1], or an optimizer without per-variable apply methods.
  """
  if not 0.0 < decay <= 1.0:
    raise ValueError(f'task.layer_decay={decay!r}: must be in (0, 1]')
  if decay == 1.0:
    return optimizer
  inner = innermost(optimizer)
  if not isinstance(inner, tf_keras.optimizers.legacy.Optimizer):
    raise ValueError(f'task.layer_decay={decay!r} needs a legacy Keras optimizer '
                     f'(adam, adamw); got {type(inner).__name__}')

  def scaled_state(var, apply_state):
    """apply_state with this variable's rates scaled (Keras reads `lr_t` dense, `lr` sparse)."""
    factor = rate_factor(var.name, num_layers, decay)
    key = (var.device, var.dtype.base_dtype)
    if factor == 1.0:
      return apply_state
    # Keras falls back to fresh coefficients when apply_state lacks the key; so do we, or
    # the decay would silently not apply.
    base = (apply_state or {}).get(key) or inner._fallback_apply_state(*key)  # pylint: disable=protected-access
    coefficients = dict(base)
    for name in ('lr_t', 'lr'):
      if name in coefficients:
        coefficients[name] = coefficients[name] * tf.cast(factor, coefficients[name].dtype)
    return {**(apply_state or {}), key: coefficients}

  dense, sparse = inner._resource_apply_dense, inner._resource_apply_sparse  # pylint: disable=protected-access

  # Explicit `apply_state` parameters: Keras inspects these signatures to decide whether to
  # pass it.
  def apply_dense(grad, var, apply_state=None):
    return dense(grad, var, apply_state=scaled_state(var, apply_state))

  def apply_sparse(grad, var, indices, apply_state=None):
    return sparse(grad, var, indices, apply_state=scaled_state(var, apply_state))

  inner._resource_apply_dense = apply_dense  # pylint: disable=protected-access
  inner._resource_apply_sparse = apply_sparse  # pylint: disable=protected-access
  return optimizer
