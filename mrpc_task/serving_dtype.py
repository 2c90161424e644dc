"""The type an export stores its weights in, and the copy of a model in that type.

A run trained with `runtime.mixed_precision_dtype: bfloat16` computed every matrix multiply
on bfloat16 copies of its float32 weights. Its export can store those bfloat16 values
themselves: it then computes what the evaluation computed, with no per-request casts of the
weights and with oneDNN's bfloat16 kernels (AMX, AVX512_BF16), and its variables take half
the space. Model Garden builds its layer norms in float32 whatever the policy, so they stay
float32 here too.
"""

import contextlib
from typing import Callable, Optional

import tensorflow as tf
import tf_keras

from mrpc_task import choices
from mrpc_task import configs

FLOAT32 = 'float32'
BFLOAT16 = 'bfloat16'


def resolve(requested: str, mixed_precision_dtype: Optional[str]) -> str:
  """'float32' or 'bfloat16' for a `--serving_dtype` and the run's
  `runtime.mixed_precision_dtype`: 'auto' is bfloat16 for a run that computed in bfloat16,
  float32 for any other (float16 is a GPU training type; CPUs serve it slowly).

  Raises:
    configs.ConfigError: `requested` is none of choices.SERVING_DTYPES.
  """
  if requested not in choices.SERVING_DTYPES:
    raise configs.ConfigError(
        f'serving_dtype={requested!r}: must be one of {", ".join(choices.SERVING_DTYPES)}')
  if requested != 'auto':
    return requested
  return BFLOAT16 if mixed_precision_dtype == BFLOAT16 else FLOAT32


@contextlib.contextmanager
def keras_policy(name: str):
  """Keras' global dtype policy set to `name` for the models built inside, then put back."""
  previous = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(previous)


def recast(model: tf_keras.Model, build_model: Callable[[], tf_keras.Model],
           dtype: str) -> tf_keras.Model:
  """`model` itself for float32; else a new model from `build_model` under the Keras policy
  `dtype`, holding `model`'s values rounded to it (variables Model Garden builds as float32
  keep their values exactly).

  A checkpoint cannot be read into variables of another type, so the float32 model reads it
  and this copies, variable by variable: the two models are built by the same code, so their
  variables come in the same order with the same names and shapes (checked).
  """
  if dtype == FLOAT32:
    return model
  with keras_policy(dtype):
    copy = build_model()
  sources, targets = model.variables, copy.variables
  mismatched = [(v.name, w.name) for v, w in zip(sources, targets)
                if v.name != w.name or v.shape != w.shape]
  if len(sources) != len(targets) or mismatched:
    raise ValueError(f'the {dtype} model does not have the float32 model\'s variables '
                     f'({len(targets)} against {len(sources)}; first difference: '
                     f'{mismatched[:1]})')
  for source, target in zip(sources, targets):
    target.assign(tf.cast(source, target.dtype))
  return copy
