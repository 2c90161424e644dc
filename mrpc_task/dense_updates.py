"""Applies sparse (embedding) gradients with the optimizer's fused dense kernel.

The word-embedding gradient arrives as `tf.IndexedSlices` (only the rows in the batch). Keras'
legacy Adam then decays both slots over the whole 30522-row table anyway (Adam's moments move
for every row, gradient or not) in about ten separate element-wise ops over the table, plus
scatter-adds. Scattering the slices into a dense gradient once and calling the fused
`ResourceApplyAdam` kernel computes the same update in one pass: on MiniLM that is the largest
variable, half of all parameters. The result is the same Adam step, up to float rounding.
It reroutes one private Keras method (`keras_private.set_sparse_apply`); docs/PERFORMANCE.md
has its wall-clock A/B.
"""

import tensorflow as tf

from mrpc_task import keras_private
from mrpc_task import layer_decay


def apply_sparse_as_dense(optimizer: keras_private.LegacyOptimizer
                          ) -> keras_private.LegacyOptimizer:
  """Makes `optimizer` densify IndexedSlices gradients before applying them; returns it.

  Raises:
    ValueError: `optimizer` (under any EMA or loss-scale wrapper) is not a legacy Keras
      optimizer.
  """
  inner = layer_decay.innermost(optimizer)
  if not isinstance(inner, keras_private.LegacyOptimizer):
    raise ValueError('task.dense_embedding_updates needs a legacy Keras optimizer; got '
                     f'{type(inner).__name__}')

  # `apply_state` spelled out: Keras inspects this signature to decide whether to pass it.
  def apply_sparse_duplicate_indices(grad, var, indices, apply_state=None):
    # The static row count: `tf.shape(var)` would read the variable, and a variable that
    # sparse ops have gathered from is copied whole by every read (47 MB a step on MiniLM).
    rows = var.shape[0] if var.shape[0] is not None else tf.shape(var)[0]
    dense = tf.math.unsorted_segment_sum(grad, indices, num_segments=rows)
    # Looked up at each call: layer decay may have wrapped the dense apply meanwhile.
    apply_dense, _ = keras_private.apply_methods(inner)
    return apply_dense(dense, var, apply_state=apply_state)

  keras_private.set_sparse_apply(inner, apply_sparse_duplicate_indices)
  return optimizer
