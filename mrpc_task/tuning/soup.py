"""Weight soups: several fine-tuned runs of one model averaged into one model.

Runs that start from the same pretrained weights and differ in seed (or in recipe) end in one
basin, so their average is a model of its own, often better than each, at one model's
serving cost (Wortsman et al., 2022, "Model soups"). `uniform` averages every run; `greedy`
takes runs best-first and keeps each only if the soup's glue_score on the selection split
(never dev) does not drop. A soup is written as an ordinary model folder (params.yaml,
tfm_run.json, one checkpoint, soup.json saying what went in), so it is exported, evaluated
and served as any run.
"""

import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tf_keras

from mrpc_task import choices
from mrpc_task import configs
from mrpc_task import export
from mrpc_task import runs as runs_lib
from mrpc_task import safe_output

METHODS = choices.SOUP_METHODS


def average_checkpoints(model: tf_keras.Model, checkpoints: Sequence[str]):
  """Sets every weight of `model` to its mean over the training checkpoints."""
  if not checkpoints:
    raise ValueError('average_checkpoints needs at least one checkpoint')
  totals = None
  for checkpoint in checkpoints:
    export.restore_classifier(model, checkpoint, key='runs')
    values = [np.asarray(weight.numpy(), np.float64) for weight in model.weights]
    totals = values if totals is None else [t + v for t, v in zip(totals, values)]
  for weight, total in zip(model.weights, totals):
    weight.assign((total / len(checkpoints)).astype(weight.dtype.as_numpy_dtype))


def greedy(ranked: Sequence[str], score: Callable[[List[str]], float]
          ) -> Tuple[List[str], List[Tuple[str, float, bool]]]:
  """The greedy soup of `ranked` checkpoints (best first).

  Args:
    ranked: checkpoints, best single run first.
    score: the score of the soup of a list of checkpoints (higher is better).

  Returns:
    (the checkpoints kept, [(checkpoint, soup score with it, kept?)] in the order tried).
  """
  kept = [ranked[0]]
  best = score(kept)
  tried = [(ranked[0], best, True)]
  for candidate in ranked[1:]:
    value = score(kept + [candidate])
    keep = value >= best
    tried.append((candidate, value, keep))
    if keep:
      kept.append(candidate)
      best = value
  return kept, tried


SOUP_FILE = 'soup.json'


def expand_runs(patterns: Sequence[str], label: str = 'runs') -> List[str]:
  """Each item as itself, or the sorted folders its glob pattern matches (no repeats).

  Raises:
    runs_lib.ModelDirError: a pattern that matches nothing, or no run at all.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  found = []
  for pattern in patterns:
    matches = sorted(tf.io.gfile.glob(pattern)) if any(c in pattern for c in '*?[') else [pattern]
    if not matches:
      raise runs_lib.ModelDirError(f'{label}: {pattern} matches no folder')
    found += [m for m in matches if m not in found]
  if not found:
    raise runs_lib.ModelDirError(f'{label}: no run given; a soup needs the training folders '
                                 'to average')
  return found


def check_shared_start(run_dirs: Sequence[str], label: str = 'runs'):
  """Refuses runs whose new layers started from different random weights (task.seed) or whose
  encoders started from different checkpoints: their average is no model at all."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import yaml  # pylint: disable=g-import-not-at-top
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  keys = ('seed', 'init_checkpoint', 'init_from_hf', 'hub_module_url')
  starts = {}
  for run in run_dirs:
    with tf.io.gfile.GFile(experiment_config.saved_params_path(run)) as f:
      task = (yaml.safe_load(f) or {}).get('task') or {}
    starts[run] = tuple(task.get(k) for k in keys)
  first = run_dirs[0]
  for run in run_dirs[1:]:
    if starts[run] != starts[first]:
      raise runs_lib.ModelDirError(
          f'{label}: {run} started from task.{" / ".join(keys)} {list(starts[run])}, {first} '
          f'from {list(starts[first])}: a weight soup needs one start (train its runs with '
          'tfm sweep, seeding the data order only); for runs of different starts, average '
          'their outputs instead (an ensemble export)')


def make_soup(model: tf_keras.Model, checkpoints: Sequence[str], *, method: str,
              evaluate: Callable[[tf_keras.Model, str], Dict[str, float]],
              data_names: Sequence[str]) -> Dict[str, Any]:
  """Averages `checkpoints` into `model` (uniformly, or greedily on the selection split).

  Args:
    model: a built model; it holds the soup afterwards.
    checkpoints: the runs' checkpoints.
    method: 'uniform' or 'greedy'.
    evaluate: scores a model on a named data (`tuning.evaluation`); greedy needs 'selection'.
    data_names: what to score the final soup on.

  Returns:
    What went in and how it scored: kept checkpoints, the greedy trace, the soup's scores.
  """
  if method not in METHODS:
    raise configs.ConfigError(f'soup method {method!r}: must be one of {METHODS}')
  record: Dict[str, Any] = {'method': method}
  kept = list(checkpoints)

  def selection_score(members):
    average_checkpoints(model, members)
    return 100 * evaluate(model, 'selection')[configs.GLUE_SCORE]

  if method == 'greedy':
    singles = {checkpoint: selection_score([checkpoint]) for checkpoint in checkpoints}
    ranked = sorted(checkpoints, key=lambda c: -singles[c])
    kept, tried = greedy(ranked, selection_score)
    record['singles_selection_glue_score'] = singles
    record['greedy'] = [{'checkpoint': c, 'soup_selection_glue_score': v, 'kept': k}
                        for c, v, k in tried]
  record['kept'] = kept
  average_checkpoints(model, kept)
  record['scores'] = {name: evaluate(model, name) for name in data_names}
  return record


def write_soup(model: tf_keras.Model, record: Dict[str, Any], *, source_run: str,
               experiment: str, imports: Sequence[str], output_dir: str, overwrite: bool,
               label: str = 'output_dir'):
  """Writes the soup as a model folder (atomically): the first run's params.yaml, the
  experiment record, one checkpoint of `model`, and soup.json."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  with safe_output.atomic_folder(output_dir, label=label, overwrite=overwrite) as folder:
    tf.io.gfile.copy(experiment_config.saved_params_path(source_run),
                     os.path.join(folder, runs_lib.PARAMS_FILE))
    runs_lib.record_experiment(folder, experiment, imports)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), folder,
                               max_to_keep=1).save(checkpoint_number=0)
    with tf.io.gfile.GFile(os.path.join(folder, SOUP_FILE), 'w') as f:
      json.dump(record, f, indent=1)


def soup_runs(patterns: Sequence[str], output_dir: str, *, method: str = 'uniform',
              pick: str = 'final', experiment: Optional[str] = None,
              data: Sequence[str] = ('selection',), overwrite: bool = False,
              imports: Sequence[str] = (), known: Sequence[str] = (),
              labels: Tuple[str, str] = ('runs', 'output_dir')) -> Dict[str, Any]:
  """`tfm soup`: training runs of one experiment averaged into one model folder.

  Args:
    patterns: training folders, or glob patterns matching them.
    output_dir: the new model folder.
    method: 'uniform' or 'greedy' (on the selection split).
    pick: which checkpoint of each run: 'final' or 'best'.
    experiment: the runs' experiment; default the one they recorded.
    data: what to score the soup on (greedy adds the selection split).
    overwrite: replace an existing output_dir whole.
    imports: modules of the user's registrations, recorded in the soup's folder.
    known: registered experiment names.
    labels: how messages name the runs and output_dir.

  Returns:
    soup.json's record: the runs, what was kept, the greedy trace and the scores.
  """
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  runs_label, output_label = labels
  run_dirs = expand_runs(patterns, runs_label)
  safe_output.refuse_overlap(output_dir, {f'{runs_label} ({run})': run for run in run_dirs},
                             label=output_label)
  safe_output.check_destination(output_dir, label=output_label, overwrite=overwrite,
                                folder=True)
  experiment, params = runs_lib.load_run_config(run_dirs[0], experiment, known=known,
                                                label=runs_label)
  checkpoints = runs_lib.member_checkpoints(run_dirs, experiment, params, pick, runs_label)
  check_shared_start(run_dirs, runs_label)
  names = [name for name in dict.fromkeys(data) if name]
  if method == 'greedy' and evaluation.SELECTION not in names:
    names.insert(0, evaluation.SELECTION)
  data_configs = {name: evaluation.named_data(params.task, name) for name in names}
  task = task_factory.get_task(params.task, logging_dir=run_dirs[0])
  model = task.build_model()
  record = make_soup(
      model, checkpoints, method=method, data_names=names,
      evaluate=lambda m, name: evaluation.evaluate(task, m, data_configs[name]))
  record.update({'experiment': experiment, 'pick': pick,
                 'runs': dict(zip(run_dirs, checkpoints))})
  write_soup(model, record, source_run=run_dirs[0], experiment=experiment, imports=imports,
             output_dir=output_dir, overwrite=overwrite, label=output_label)
  return record
