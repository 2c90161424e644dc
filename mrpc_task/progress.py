"""Human progress lines while training, and a summary when it ends.

Orbit already logs `train | step: N | steps/sec: X | output: {...}`; what a person wants to
read is how far along the run is and when it will finish. `TrainingProgress` is an Orbit
train action (called after every `steps_per_loop` steps) and eval action; `tfm
train_experiment` passes it to `train_lib.run_experiment` as `train_actions`/`eval_actions`.
What it prints per evaluation is the task's own scores (its metrics per evaluation split and
the loss); a metric that is undefined on the data (F1 with no positive labels or predictions,
a correlation of constant predictions: NaN) is printed as `undefined`.
"""

import json
import math
import os
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, TextIO

import numpy as np

from mrpc_task import configs

def _number(value) -> float:
  return float(np.asarray(value))


def _score(value: float) -> str:
  return 'undefined' if math.isnan(value) else f'{value:.4f}'


def _rank(record: Dict[str, float], metric: str) -> float:
  """Best-by-metric ordering in which an undefined value ranks below every defined one."""
  value = record.get(metric, float('nan'))
  return -math.inf if math.isnan(value) else value


def format_duration(seconds: float) -> str:
  """`1h02m03s`, `4m05s` or `7s`."""
  seconds = int(round(max(seconds, 0)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return f'{hours}h{minutes:02d}m{secs:02d}s'
  if minutes:
    return f'{minutes}m{secs:02d}s'
  return f'{secs}s'


class TrainingProgress:
  """Prints `step k/N | examples/s | ETA | loss` per train loop and scores per evaluation.

  The rate is measured over the last train loop only, with the time spent evaluating excluded
  (and checkpointing too when it happens with an evaluation, as in the registered
  experiments), so the ETA follows the current speed (the first loop includes tracing).
  """

  def __init__(self, *, total_steps: int, global_batch_size: int,
               step_fn: Callable[[], int], model_dir: str = '',
               best_subdir: str = '', start_step: Optional[int] = None,
               splits: Sequence[str] = ('dev',), metrics: Sequence[str] = ('accuracy', 'f1'),
               best_metric: str = 'f1',
               out: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic):
    """Args: step_fn returns the global step; start_step is where this process resumes
    (default: step_fn() now); splits names what each evaluation scores (the task's
    `eval_splits`), metrics the task's metrics, best_metric the score that picks the best
    checkpoint; clock returns seconds (tests pass a fake)."""
    if total_steps <= 0 or global_batch_size <= 0:
      raise ValueError(f'total_steps={total_steps} and global_batch_size={global_batch_size} '
                       'must be > 0')
    self.total_steps = total_steps
    self.global_batch_size = global_batch_size
    self.step_fn = step_fn
    self.model_dir = model_dir
    self.best_subdir = best_subdir
    self.splits = list(splits)
    self.metrics = list(metrics)
    self.best_metric = best_metric
    self.out = out
    self.clock = clock
    self.started = clock()
    self._mark_time = self.started
    self._mark_step = step_fn() if start_step is None else start_step
    self.start_step = self._mark_step
    self.evaluations: List[Dict[str, float]] = []
    self.last_scores: Dict[str, float] = {}  # Every score of the last evaluation.

  def _print(self, line: str):
    print(line, file=self.out, flush=True)

  def on_train(self, output: Optional[Mapping[str, object]]):
    """Orbit train action: one progress line."""
    now, step = self.clock(), self.step_fn()
    elapsed = now - self._mark_time
    steps = step - self._mark_step
    self._mark_time, self._mark_step = now, step
    parts = [f'step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%)']
    if steps > 0 and elapsed > 0:
      parts.append(f'{steps * self.global_batch_size / elapsed:.1f} examples/s')
      parts.append(f'ETA {format_duration((self.total_steps - step) * elapsed / steps)}')
    output = output or {}
    for key in ('training_loss', 'loss'):
      if key in output:
        parts.append(f'loss {_number(output[key]):.4f}')
        break
    if 'learning_rate' in output:
      parts.append(f'lr {_number(output["learning_rate"]):.3g}')
    self._print('progress | ' + ' | '.join(parts))

  def on_eval(self, output: Optional[Mapping[str, object]]):
    """Orbit eval action: records the scores; the next rate starts after the evaluation."""
    output = output or {}
    self.last_scores = {key: _number(value) for key, value in output.items()
                        if np.ndim(value) == 0}
    record = {'step': self.step_fn()}
    for key in self._shown() + self._glue_scores():
      if key in output:
        record[key] = _number(output[key])
    if self.best_metric in output:
      record[self.best_metric] = _number(output[self.best_metric])
    self.evaluations.append(record)
    scores = ' | '.join(f'{key} {_score(record[key])}' for key in self._shown()
                        if key in record)
    self._print(f'progress | eval at step {record["step"]} | {scores}')
    self._mark_time = self.clock()

  def _shown(self) -> List[str]:
    """The scores printed per evaluation: each split's metrics and loss."""
    return [configs.split_prefix(split, self.splits) + name for split in self.splits
            for name in self.metrics + [configs.VALIDATION_LOSS]]

  def _glue_scores(self) -> List[str]:
    return [configs.split_prefix(split, self.splits) + configs.GLUE_SCORE
            for split in self.splits]

  def _scores(self, record: Mapping[str, float], split: str) -> str:
    prefix = configs.split_prefix(split, self.splits)
    return ' | '.join(f'{name} {_score(record.get(prefix + name, math.nan))}'
                      for name in self.metrics + [configs.GLUE_SCORE])

  def _best_kept(self) -> Optional[Dict[str, float]]:
    """The scores of the checkpoint Model Garden kept as best (best_ckpt/info.json)."""
    if not (self.model_dir and self.best_subdir):
      return None
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    path = os.path.join(self.model_dir, self.best_subdir, 'info.json')
    if not tf.io.gfile.exists(path):
      return None
    with tf.io.gfile.GFile(path) as f:
      return {key: _number(value) for key, value in json.load(f).items()
              if isinstance(value, (int, float))}

  def summary(self) -> str:
    """What the run gave and where it left its files."""
    lines = [f'summary | trained to step {self.step_fn()}/{self.total_steps} '
             f'(this process from step {self.start_step}) in '
             f'{format_duration(self.clock() - self.started)}']
    if self.evaluations:
      final = self.evaluations[-1]
      for split in self.splits:
        lines.append(f'summary | final {split}: {self._scores(final, split)} '
                     f'(step {final["step"]})')
      best = max(self.evaluations, key=lambda record: _rank(record, self.best_metric))
      for split in self.splits:
        lines.append(f'summary | best {split} in this process (by {self.best_metric}): '
                     f'{self._scores(best, split)} (step {best["step"]})')
    kept = self._best_kept()
    if kept:
      shown = ', '.join(f'{name} {_score(kept.get(name, math.nan))}'
                        for name in self._shown() + self._glue_scores() if name in kept)
      lines.append(f'summary | best checkpoint: {os.path.join(self.model_dir, self.best_subdir)}'
                   f' ({shown})')
    if self.model_dir:
      lines.append(f'summary | checkpoints: {self.model_dir}')
      lines.append(f'summary | TensorBoard: tensorboard --logdir {self.model_dir}')
    return '\n'.join(lines)
