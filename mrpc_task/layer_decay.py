"""Layer-wise learning-rate decay: lower encoder layers train at a smaller rate.

Fine-tuning on a few thousand pairs, the lower layers of a pretrained encoder hold general
features worth keeping, while the top layers and the new head must move most (ELECTRA, and
Zhang et al. 2021 on few-sample BERT fine-tuning, use this). Model Garden's optimizers take
one rate for every variable, and scaling gradients instead does nothing under Adam (its
update is invariant to a gradient's scale), so the rate itself is scaled per variable: the
optimizer's per-variable apply methods get the rate times `decay ** (top - depth)`
(private Keras APIs, all in `keras_private`).

Depth is read from variable names as Model Garden's BERT-style encoders write them
(`transformer/layer_N/`); `check_layers` fails on an encoder where they are not found, rather
than training every layer at the head's rate.
"""

import collections
import re
from typing import Iterable

from absl import logging
import tensorflow as tf

from mrpc_task import errors
from mrpc_task import keras_private

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


def rate_factor_at(variable_depth: int, num_layers: int, decay: float) -> float:
  """The multiplier of the learning rate at a depth (see `depth`)."""
  return decay ** (num_layers + 1 - variable_depth)


def rate_factor(variable_name: str, num_layers: int, decay: float) -> float:
  """The multiplier of the learning rate for one variable: 1 for the head, decay per layer down."""
  return rate_factor_at(depth(variable_name, num_layers), num_layers, decay)


class LayerDecayError(errors.InputError, ValueError):
  """task.layer_decay cannot apply to this encoder or optimizer; the message says why."""


def check_layers(variable_names: Iterable[str], num_layers: int, decay: float) -> str:
  """Checks that the variable names show `num_layers` transformer layers; returns (and logs)
  which variables got which factor.

  Raises:
    LayerDecayError: decay < 1 and the names do not show layers 0 .. num_layers - 1 (an
      encoder that names its variables otherwise would train every variable at the head's
      rate: no decay at all, silently).
  """
  if decay == 1.0:
    return 'layer decay off'
  names = list(variable_names)
  found = sorted({int(m.group(1)) for m in map(_LAYER.search, names) if m})
  if found != list(range(num_layers)):
    raise LayerDecayError(
        f'task.layer_decay={decay!r}: expected transformer layers 0..{num_layers - 1} in the '
        f"encoder's variable names (as 'transformer/layer_N/' in Model Garden's BERT "
        f'encoder), found {found or "none"} among {len(names)} variables; set '
        'task.layer_decay=1.0 for this encoder')
  counts = collections.Counter(depth(name, num_layers) for name in names)
  parts = [f'embeddings: {counts[0]} variables x{rate_factor_at(0, num_layers, decay):.3g}']
  parts += [f'layer_{d - 1}: {counts[d]} x{rate_factor_at(d, num_layers, decay):.3g}'
            for d in range(1, num_layers + 1)]
  parts.append(f'head: {counts[num_layers + 1]} x1')
  summary = f'layer decay {decay}: ' + ', '.join(parts)
  logging.info('%s', summary)
  return summary


def innermost(optimizer):
  """The optimizer that applies updates, under Model Garden's EMA or loss-scale wrappers."""
  inner = keras_private.wrapped_optimizer(optimizer)
  return optimizer if inner is None else innermost(inner)


def apply_layer_decay(optimizer: keras_private.LegacyOptimizer, *, num_layers: int,
                      decay: float) -> keras_private.LegacyOptimizer:
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
    raise LayerDecayError(f'task.layer_decay={decay!r}: must be in (0, 1]')
  if decay == 1.0:
    return optimizer
  inner = innermost(optimizer)
  if not isinstance(inner, keras_private.LegacyOptimizer):
    raise LayerDecayError(f'task.layer_decay={decay!r} needs a legacy Keras optimizer '
                     f'(adam, adamw); got {type(inner).__name__}')

  def scaled_state(var, apply_state):
    """apply_state with this variable's rates scaled (Keras reads `lr_t` dense, `lr` sparse)."""
    factor = rate_factor(var.name, num_layers, decay)
    key = (var.device, var.dtype.base_dtype)
    if factor == 1.0:
      return apply_state
    # Keras falls back to fresh coefficients when apply_state lacks the key; so do we, or
    # the decay would silently not apply.
    base = (apply_state or {}).get(key) or keras_private.fallback_apply_state(inner, *key)
    coefficients = dict(base)
    for name in ('lr_t', 'lr'):
      if name in coefficients:
        coefficients[name] = coefficients[name] * tf.cast(factor, coefficients[name].dtype)
    return {**(apply_state or {}), key: coefficients}

  dense, sparse = keras_private.apply_methods(inner)

  # Explicit `apply_state` parameters: Keras inspects these signatures to decide whether to
  # pass it.
  def apply_dense(grad, var, apply_state=None):
    return dense(grad, var, apply_state=scaled_state(var, apply_state))

  def apply_sparse(grad, var, indices, apply_state=None):
    return sparse(grad, var, indices, apply_state=scaled_state(var, apply_state))

  keras_private.set_apply_methods(inner, apply_dense, apply_sparse)
  return optimizer
