"""Measuring a training or export run: wall time, peak memory, steady-state examples/s.

Shared by benchmark.py (stock vs ours) and switches.py (one speed switch on vs off); the
profiles (memory_profile.py, step_profile.py) take their trainer from `in_process_trainer`.
"""

import os
import re
import statistics
import subprocess
import sys
import time

from mrpc_task.cli import main as cli_main

# The profiles import TensorFlow in this process: it starts as in tfm (tf_keras only).
cli_main.set_tensorflow_defaults()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
# Our progress lines (printed for any experiment run through `tfm train_experiment`) give
# examples/s per loop to 0.1; Orbit's own lines round steps/s to 0.1 (~5% at 2 steps/s).
PROGRESS_RE = re.compile(r'^progress \| step (\d+)/\d+ \(\d+%\) \| ([\d.]+) examples/s', re.M)


def run_measured(args, log_path, env=None):
  """Runs a command, logging to a file; returns (wall seconds, peak RSS in MiB)."""
  start = time.time()
  with open(log_path, 'w') as log:
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                               env=env or os.environ.copy())
    _, status, usage = os.wait4(process.pid, 0)
  wall = time.time() - start
  if os.waitstatus_to_exitcode(status) != 0:
    raise RuntimeError(f'{args[:3]} failed; see {log_path}')
  return wall, usage.ru_maxrss / 1024


def eval_scalars(model_dir):
  """{step: {tag: value}} of the validation summaries (`tfm report`'s reader)."""
  from mrpc_task import report  # pylint: disable=g-import-not-at-top
  values = {}
  for tag, points in report.read_scalars(os.path.join(model_dir, 'validation')).items():
    for step, value in points:
      values.setdefault(step, {})[tag] = value
  return values


def steady_examples_per_second(log_path):
  """Median training examples/s over the loops after the first (tracing, compiling)."""
  with open(log_path) as f:
    rates = [float(rate) for _, rate in PROGRESS_RE.findall(f.read())]
  if len(rates) < 2:
    raise RuntimeError(f'{log_path}: too few training loops to measure')
  return statistics.median(rates[1:])


def in_process_trainer(experiment: str, params_override: str = '', *, evaluate: bool = False,
                       model_dir: str = ''):
  """(params, Task, Model Garden Trainer) of a registered experiment in this process, set up
  as `tfm train_experiment` sets them up (mixed precision policy, best-checkpoint exporter
  when model_dir is given, pretrained encoder restored), for profiles that drive the trainer
  a loop at a time."""
  cli_main.import_tensorflow()  # As a tfm command imports it.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  from official.modeling import performance  # pylint: disable=g-import-not-at-top
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  from mrpc_task import training  # pylint: disable=g-import-not-at-top
  params = experiment_config.parse_experiment(experiment, params_override=params_override or None)
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(params.runtime.mixed_precision_dtype)
  task = task_factory.get_task(params.task, logging_dir=model_dir or None)
  exporter = (training.best_checkpoint_exporter(params, model_dir, tf.distribute.get_strategy())
              if model_dir else None)
  trainer = train_utils.create_trainer(params, task, train=True, evaluate=evaluate,
                                       checkpoint_exporter=exporter)
  trainer.initialize()  # The pretrained encoder, as Orbit's controller does on a new run.
  return params, task, trainer
