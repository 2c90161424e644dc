"""What a training folder holds: its experiment, its config, which checkpoint to use.

Model Garden writes `params.yaml` into the model folder and resumes from any checkpoint there,
so a second experiment started on the same folder overwrites the first one's config, then
fails deep inside TensorFlow restoring checkpoints of another shape (and a later export of the
first run reads the wrong config). `tfm train_experiment` records the experiment's name beside
`params.yaml` and checks both before writing anything; every command that reads a run (export,
evaluate, soup) loads its config and picks its checkpoint here. `label` arguments say how
messages name a folder (the command line passes its flag).
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from absl import logging
import yaml

from mrpc_task import errors
from mrpc_task import experiment_config

RUN_FILE = 'tfm_run.json'  # {"experiment": name, "imports": [--import modules]}
PARAMS_FILE = 'params.yaml'
_MAX_SHOWN = 3
# Model keys that change how a model runs, not which variables it has: a run may be resumed
# with other values.
_HOW_IT_RUNS = ('dropout_rate', 'attention_dropout_rate', 'fast_dropout', 'xla_training_kernels',
                'output_range')


class ModelDirError(errors.InputError):
  """A model folder that holds no run, or a run this command must not resume or overwrite."""


def checkpoint_step(model_dir: str) -> int:
  """The step of the checkpoint Orbit will restore from model_dir (0 if none)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  latest = tf.train.latest_checkpoint(model_dir) if model_dir else None
  return int(latest.rsplit('-', 1)[1]) if latest else 0


def _require_folder(model_dir: str, label: str):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.isdir(model_dir):
    raise ModelDirError(f'{label}={model_dir}: no such folder')


def check_has_checkpoint(model_dir: str, *, label: str = 'model_dir'):
  """Fails when model_dir holds no checkpoint to evaluate (Orbit would initialize the
  model instead and score that)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  _require_folder(model_dir, label)
  if not tf.train.latest_checkpoint(model_dir):
    raise ModelDirError(
        f'{label}={model_dir} holds no checkpoint to evaluate (evaluating it would score the '
        'untrained initial weights): name the folder of a run, or train into this one first')


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


def check_model_dir(model_dir: str, experiment: str, params, *, label: str = 'model_dir'):
  """Fails when model_dir holds a run of another experiment, or of another model.

  Args:
    model_dir: the training folder.
    experiment: the experiment about to use it.
    params: its config (its `task.model` must equal the saved run's to resume it).
    label: how the folder is named in messages.

  Raises:
    ModelDirError: naming the folder, both experiments and the first differing keys.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if tf.io.gfile.exists(model_dir) and not tf.io.gfile.isdir(model_dir):
    raise ModelDirError(f'{label}={model_dir}: is a file, not a folder')
  saved_path = os.path.join(model_dir, PARAMS_FILE)
  if not tf.io.gfile.exists(saved_path):
    return
  recorded = recorded_experiment(model_dir)
  advice = f'use another {label}, or delete {model_dir} to start over'
  if recorded and recorded != experiment:
    raise ModelDirError(f'{label}={model_dir} holds a run of experiment {recorded!r}, not '
                        f'{experiment!r}: {advice}')
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
        f'{label}={model_dir} holds a run of {owner} whose model differs from '
        f'experiment {experiment!r} ({shown}); its checkpoints cannot be restored: {advice}')


def _compute_type(mixed_precision_dtype: Optional[str]) -> str:
  return mixed_precision_dtype or 'float32'


def warn_of_another_compute_type(model_dir: str, params, *, label: str = 'model_dir'):
  """A warning when training resumes a run in another type than it trained in:
  `bert_*_minilm` resolves bfloat16 or float32 from the CPU, so a run moved to another kind
  of machine changes type (its float32 checkpoints restore either way). Call after
  `check_model_dir`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  saved_path = os.path.join(model_dir, PARAMS_FILE)
  runtime = getattr(params, 'runtime', None)
  if runtime is None or not tf.io.gfile.exists(saved_path):
    return
  try:
    if checkpoint_step(model_dir) == 0:
      return
    with tf.io.gfile.GFile(saved_path) as f:
      saved = yaml.safe_load(f) or {}
  except (IndexError, ValueError, yaml.YAMLError):  # A checkpoint not named ckpt-N, ...
    return
  before = _compute_type((saved.get('runtime') or {}).get('mixed_precision_dtype'))
  now = _compute_type(runtime.mixed_precision_dtype)
  if before != now:
    logging.warning('%s=%s trained in %s; this process computes in %s from its last checkpoint '
                    '(--params_override=runtime.mixed_precision_dtype=%s keeps %s)', label,
                    model_dir, before, now, before if before != 'float32' else "''", before)


def load_run_config(model_dir: str, experiment: Optional[str] = None, *,
                    config_files: Sequence[str] = (), params_override: Optional[str] = None,
                    known: Sequence[str] = (), label: str = 'model_dir'):
  """The experiment config as the run trained: registered defaults <- params.yaml <- files
  <- override.

  Args:
    model_dir: the training folder.
    experiment: its experiment; default the one `tfm train_experiment` recorded there.
    config_files, params_override: applied on top, as when training.
    known: registered names, for "did you mean".
    label: how messages name the folder.

  Returns:
    (experiment name, locked config).

  Raises:
    ModelDirError: no such folder, no params.yaml, an unreadable one, a run of another
      experiment, or no experiment recorded there nor given.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  _require_folder(model_dir, label)
  recorded = recorded_experiment(model_dir)
  if recorded and experiment and recorded != experiment:
    raise ModelDirError(
        f'{label}={model_dir} holds a run of experiment {recorded!r}, not {experiment!r}: '
        f'name {recorded} (or leave the experiment out)')
  saved = experiment_config.saved_params_path(model_dir)
  if not tf.io.gfile.exists(saved):
    raise ModelDirError(
        f'{label}={model_dir} has no {PARAMS_FILE}: not a training run of tfm '
        'train_experiment (or it never started training)')
  experiment = experiment or recorded
  if not experiment:
    raise ModelDirError(f'{label}={model_dir} records no experiment (no {RUN_FILE}: trained '
                        'by Model Garden itself?): name it with --experiment')
  try:
    with tf.io.gfile.GFile(saved) as f:
      content = yaml.safe_load(f)
  except yaml.YAMLError as e:
    raise ModelDirError(f'{saved}: not valid YAML ({" ".join(str(e).split())}); restore the '
                        'file, or start the run over in a new folder') from e
  if not isinstance(content, dict):
    raise ModelDirError(f'{saved}: not a config (a YAML mapping of keys); restore the file, '
                        'or start the run over in a new folder')
  params = experiment_config.parse_experiment(
      experiment, config_files=config_files, params_override=params_override,
      saved_params=saved, known=known)
  return experiment, params


def pick_checkpoint(model_dir: str, best_subdir: str, *, pick: str = 'best',
                    label: str = 'model_dir') -> str:
  """A run's checkpoint: with pick='best' the best one the trainer kept (if any), else (and
  with pick='final') the latest.

  Raises:
    ModelDirError: the folder holds no checkpoint.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  best = os.path.join(model_dir, best_subdir) if best_subdir and pick == 'best' else ''
  for directory in ([best] if best else []) + [model_dir]:
    if directory and tf.train.latest_checkpoint(directory):
      return tf.train.latest_checkpoint(directory)
  raise ModelDirError(f'{label}={model_dir} holds no checkpoint (has it trained?)')


def member_checkpoints(members: Sequence[str], experiment: str, params, pick: str,
                       label: str = 'members') -> List[str]:
  """The checkpoint of each further run, after checking it trained the same model.

  Raises:
    ModelDirError: a member is no folder, no run, or a run of another experiment or model.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  checkpoints = []
  for member in members:
    if not tf.io.gfile.isdir(member):
      raise ModelDirError(f'{label}: {member}: no such folder')
    if not tf.io.gfile.exists(experiment_config.saved_params_path(member)):
      raise ModelDirError(f'{label}: {member} has no {PARAMS_FILE}: not a training run of '
                          'tfm train_experiment')
    check_model_dir(member, experiment, params, label=label)
    checkpoints.append(pick_checkpoint(
        member, params.trainer.best_checkpoint_export_subdir, pick=pick, label=label))
  return checkpoints


@dataclasses.dataclass
class Selected:
  """A run as a command uses it: its experiment and config, the checkpoint picked, and its
  ensemble members' checkpoints."""
  experiment: str
  params: Any
  checkpoint: str
  members: List[str]


def select(model_dir: str, *, experiment: Optional[str] = None,
           checkpoint_path: Optional[str] = None, pick: str = 'best',
           members: Sequence[str] = (), average_orders: bool = False,
           config_files: Sequence[str] = (), params_override: Optional[str] = None,
           known: Sequence[str] = (), labels: Optional[Dict[str, str]] = None) -> Selected:
  """The config a run trained with, the checkpoint to use (checkpoint_path, else
  `pick_checkpoint(pick)`) and its members' (each checked to be the same model), as `tfm
  export` and `tfm evaluate` take them.

  Raises:
    ModelDirError: see `load_run_config`, `pick_checkpoint`, `member_checkpoints`;
    configs.ConfigError: average_orders for a task whose sentence order matters.
  """
  from mrpc_task import configs  # pylint: disable=g-import-not-at-top
  label = {'model_dir': 'model_dir', 'members': 'members', **(labels or {})}
  experiment, params = load_run_config(
      model_dir, experiment, config_files=config_files, params_override=params_override,
      known=known, label=label['model_dir'])
  checkpoint = checkpoint_path or pick_checkpoint(
      model_dir, params.trainer.best_checkpoint_export_subdir, pick=pick,
      label=label['model_dir'])
  if average_orders:
    configs.check_order_free(params.task, f'average_orders (experiment {experiment})')
  member_paths = member_checkpoints(members, experiment, params, pick, label['members'])
  return Selected(experiment, params, checkpoint, member_paths)
