"""What a training folder holds, and refusing to mix two experiments' runs in one.

Model Garden writes `params.yaml` into `--model_dir` and resumes from any checkpoint there, so
a second experiment started on the same folder overwrites the first one's config, then fails
deep inside TensorFlow restoring checkpoints of another shape (and a later export of the first
run reads the wrong config). `tfm train_experiment` records the experiment's name beside
`params.yaml` and checks both before writing anything.
"""

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import yaml

from mrpc_task import errors

RUN_FILE = 'tfm_run.json'  # {"experiment": name, "imports": [--import modules]}
PARAMS_FILE = 'params.yaml'
_MAX_SHOWN = 3
# Model keys that change how a model runs, not which variables it has: a run may be resumed
# with other values.
_HOW_IT_RUNS = ('dropout_rate', 'attention_dropout_rate', 'fast_dropout', 'output_range')


class ModelDirError(errors.InputError):
  """--model_dir holds a run this command must not resume or overwrite."""


def checkpoint_step(model_dir: str) -> int:
  """The step of the checkpoint Orbit will restore from model_dir (0 if none)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  latest = tf.train.latest_checkpoint(model_dir) if model_dir else None
  return int(latest.rsplit('-', 1)[1]) if latest else 0


def recorded_experiment(model_dir: str) -> Optional[str]:
  """The experiment `tfm train_experiment` recorded in model_dir, or None."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, RUN_FILE)
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.load(f).get('experiment')
  except (ValueError, AttributeError):
    return None


def record_experiment(model_dir: str, experiment: str, imports: Sequence[str] = ()):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.io.gfile.makedirs(model_dir)
  with tf.io.gfile.GFile(os.path.join(model_dir, RUN_FILE), 'w') as f:
    json.dump({'experiment': experiment, 'imports': list(imports)}, f)


def _differences(old: Any, new: Any, prefix: str) -> List[str]:
  if isinstance(old, dict) and isinstance(new, dict):
    found = []
    for key in sorted(set(old) | set(new), key=str):
      if key in _HOW_IT_RUNS:
        continue
      found += _differences(old.get(key), new.get(key), f'{prefix}.{key}')
    return found
  return [] if old == new else [f'{prefix}: {old!r} there, {new!r} now']


def check_model_dir(model_dir: str, experiment: str, params, *, flag: str = '--model_dir'):
  """Fails when model_dir holds a run of another experiment, or of another model.

  Args:
    model_dir: the training folder.
    experiment: the experiment about to use it.
    params: its config (its `task.model` must equal the saved run's to resume it).
    flag: how the folder was given, for the message.

  Raises:
    ModelDirError: naming the folder, both experiments and the first differing keys.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if tf.io.gfile.exists(model_dir) and not tf.io.gfile.isdir(model_dir):
    raise ModelDirError(f'{flag}={model_dir}: is a file, not a folder')
  saved_path = os.path.join(model_dir, PARAMS_FILE)
  if not tf.io.gfile.exists(saved_path):
    return
  recorded = recorded_experiment(model_dir)
  advice = f'use another {flag}, or delete {model_dir} to start over'
  if recorded and recorded != experiment:
    raise ModelDirError(f'{flag}={model_dir} holds a run of experiment {recorded!r}, not '
                        f'--experiment={experiment}: {advice}')
  try:
    with tf.io.gfile.GFile(saved_path) as f:
      saved: Dict[str, Any] = yaml.safe_load(f) or {}
  except yaml.YAMLError as e:
    raise ModelDirError(f'{saved_path}: not valid YAML ({e}); {advice}') from e
  old_model = (saved.get('task') or {}).get('model')
  new_model = params.task.as_dict().get('model') if hasattr(params.task, 'as_dict') else None
  if old_model is None or new_model is None:
    return
  differences = _differences(old_model, yaml.safe_load(yaml.safe_dump(new_model)), 'task.model')
  if differences:
    more = len(differences) - _MAX_SHOWN
    shown = '; '.join(differences[:_MAX_SHOWN]) + (f'; and {more} more' if more > 0 else '')
    owner = f'experiment {recorded!r}' if recorded else 'an earlier run'
    raise ModelDirError(
        f'{flag}={model_dir} holds a run of {owner} whose model differs from '
        f'--experiment={experiment} ({shown}); its checkpoints cannot be restored: {advice}')
