"""Human progress lines while training, and a summary when it ends.

Orbit already logs `train | step: N | steps/sec: X | output: {...}`; what a person wants to
read is how far along the run is and when it will finish. `TrainingProgress` is an Orbit
train action (called after every `steps_per_loop` steps) and eval action; `tfm
train_experiment` passes it to `train_lib.run_experiment` as `train_actions`/`eval_actions`.
A metric that is undefined on the data (F1 with no positive labels or predictions: NaN) is
printed as `undefined`.
"""

import json
import math
import os
import sys
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, TextIO

import numpy as np

def _number(value) -> float:
  return float(np.asarray(value))


def _score(value: float) -> str:
  return 'undefined' if math.isnan(value) else f'{value:.4f}'


def _f1_rank(record: Dict[str, float]) -> float:
  """Best-by-F1 ordering in which an undefined F1 ranks below every defined one."""
  value = record.get('f1', float('nan'))
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
               evaluated_on: str = 'dev',
               out: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic):
    """Args: step_fn returns the global step; start_step is where this process resumes
    (default: step_fn() now); evaluated_on names the evaluation data in the summary; clock
    returns seconds (tests pass a fake)."""
    if total_steps <= 0 or global_batch_size <= 0:
      raise ValueError(f'total_steps={total_steps} and global_batch_size={global_batch_size} '
                       'must be > 0')
    self.total_steps = total_steps
    self.global_batch_size = global_batch_size
    self.step_fn = step_fn
    self.model_dir = model_dir
    self.best_subdir = best_subdir
    self.evaluated_on = evaluated_on
    self.out = out
    self.clock = clock
    self.started = clock()
    self._mark_time = self.started
    self._mark_step = step_fn() if start_step is None else start_step
    self.start_step = self._mark_step
    self.evaluations: List[Dict[str, float]] = []

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
    record = {'step': self.step_fn()}
    for key in ('accuracy', 'f1', 'validation_loss'):
      if key in output:
        record[key] = _number(output[key])
    self.evaluations.append(record)
    scores = ' | '.join(f'{key} {_score(value)}' for key, value in record.items()
                        if key != 'step')
    self._print(f'progress | eval at step {record["step"]} | {scores}')
    self._mark_time = self.clock()

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

  def summary(self, experiment: str = 'NAME', imports: Sequence[str] = ()) -> str:
    """What the run gave and where it left its files (imports: tfm --import modules)."""
    lines = [f'summary | trained to step {self.step_fn()}/{self.total_steps} '
             f'(this process from step {self.start_step}) in '
             f'{format_duration(self.clock() - self.started)}']
    if self.evaluations:
      final = self.evaluations[-1]
      lines.append(f'summary | final {self.evaluated_on}: accuracy '
                   f'{_score(final.get("accuracy", math.nan))}'
                   f' | f1 {_score(final.get("f1", math.nan))} (step {final["step"]})')
      best = max(self.evaluations, key=_f1_rank)
      lines.append(f'summary | best {self.evaluated_on} in this process: accuracy '
                   f'{_score(best.get("accuracy", math.nan))} | f1 '
                   f'{_score(best.get("f1", math.nan))} (step {best["step"]})')
    kept = self._best_kept()
    if kept:
      lines.append(f'summary | best checkpoint: {os.path.join(self.model_dir, self.best_subdir)}'
                   f' (accuracy {_score(kept.get("accuracy", math.nan))}, '
                   f'f1 {_score(kept.get("f1", math.nan))})')
    if self.model_dir:
      lines.append(f'summary | checkpoints: {self.model_dir}')
      lines.append(f'summary | TensorBoard: tensorboard --logdir {self.model_dir}')
      import_flags = ''.join(f'--import={module} ' for module in imports)
      lines.append(f'summary | export: tfm export {import_flags}--experiment={experiment} '
                   f'--model_dir={self.model_dir} '
                   f'--export_dir={os.path.join(self.model_dir, "export")} --pick=final '
                   '(run_experiment.sh does this)')
    return '\n'.join(lines)
