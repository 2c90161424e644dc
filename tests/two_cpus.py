"""Runs a test body in a child process whose CPU is split into 2 logical devices.

MirroredStrategy needs 2 devices and this machine has one CPU device. The split must happen
before TensorFlow initialises and then holds for the whole process, so it lives in a child
used only by the tests that mirror: every other test runs on the plain device a user has,
and a crash inside TensorFlow's runtime fails one test, with the child's output, instead of
killing the whole pytest run.

    python -m tests.two_cpus tests/test_metrics.py _case_name
"""

import importlib.util
import os
import signal
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TIMEOUT_S = 600
# Every child run again after dying of a signal, for the test summary (conftest prints it).
RERUNS = []


def run(case, *, reruns_after_crash: int = 0) -> None:
  """Runs the module-level function `case` in a 2-CPU child; fails with its output if it fails.

  Any assertion or exception in the case fails the test. A child killed by a signal fails it
  too, unless the caller allows `reruns_after_crash` new runs (README, "mirrored training":
  a heap corruption seen there now and then, cause not found); each one is recorded in RERUNS and
  printed at the end of the pytest run.
  """
  from tests.conftest import child_env  # pylint: disable=g-import-not-at-top
  path = os.path.relpath(sys.modules[case.__module__].__file__, REPO_ROOT)
  command = [sys.executable, '-X', 'faulthandler', '-m', 'tests.two_cpus', path, case.__name__]
  env = child_env()
  for attempt in range(1, reruns_after_crash + 2):
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=_TIMEOUT_S)
    if result.returncode >= 0 or attempt > reruns_after_crash:
      break
    record_rerun(f'{path}::{case.__name__}', 'the 2-CPU child', result.returncode, attempt,
                 result.stderr)
  assert result.returncode == 0, (
      f'{path}::{case.__name__} failed in the 2-CPU child (exit {result.returncode}):\n'
      f'{result.stdout[-2000:]}\n{_stderr_tail(result.stderr, 6000)}')


def record_rerun(test: str, who: str, exit_code: int, attempt: int, stderr: str) -> None:
  """Records that `who` (a child process of `test`) died of signal -exit_code in run
  `attempt` and is run again, for the summary at the end of the pytest run."""
  RERUNS.append(f'{test}: {who} died of {signal.Signals(-exit_code).name} (run {attempt}) and '
                f'was run again; its stderr ended with:\n{_stderr_tail(stderr, 1500)}')


def _stderr_tail(stderr: str, chars: int) -> str:
  """The end of stderr, without faulthandler's list of loaded extension modules."""
  return stderr.split('\nExtension modules:')[0][-chars:]


def mirrored_strategy():
  """In a case run by `run`: MirroredStrategy over the child's 2 logical CPUs."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpus = [device.name for device in tf.config.list_logical_devices('CPU')]
  assert len(cpus) == 2, f'expected the 2 logical CPUs of a two_cpus.run child, got {cpus}'
  return tf.distribute.MirroredStrategy(cpus)


def _main(path: str, name: str) -> None:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_logical_device_configuration(
      tf.config.list_physical_devices('CPU')[0],
      [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
  sys.path.insert(0, REPO_ROOT)
  module_name = 'tests.' + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(module_name, os.path.join(REPO_ROOT, path))
  module = importlib.util.module_from_spec(spec)
  sys.modules[module_name] = module
  spec.loader.exec_module(module)
  from tests.conftest import TEST_SEED  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(TEST_SEED)  # As conftest's autouse fixture does for every test.
  getattr(module, name)()


if __name__ == '__main__':
  _main(*sys.argv[1:])
