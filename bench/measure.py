"""Measuring a training or export run: wall time, peak memory, steady-state examples/s.

Shared by benchmark.py (stock vs ours) and switches.py (one speed switch on vs off).
"""

import os
import re
import statistics
import subprocess
import sys
import time

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
