"""Weight soups: several fine-tuned runs of one model averaged into one model.

Runs that start from the same pretrained weights and differ in seed (or in recipe) end in one
basin, so their average is a model of its own, often better than each, at one model's
serving cost (Wortsman et al., 2022, "Model soups"). `uniform` averages every run; `greedy`
takes runs best-first and keeps each only if the soup's score (on the selection split, never
dev) does not drop.
"""

from typing import Callable, List, Sequence, Tuple

import numpy as np
import tf_keras

from mrpc_task import export

METHODS = ('uniform', 'greedy')


def average_checkpoints(model: tf_keras.Model, checkpoints: Sequence[str]):
  """Sets every weight of `model` to its mean over the training checkpoints."""
  if not checkpoints:
    raise ValueError('average_checkpoints needs at least one checkpoint')
  totals = None
  for checkpoint in checkpoints:
    export.restore_classifier(model, checkpoint, key='--runs')
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
