"""Runs several `tfm` command lines in one child process, one TensorFlow import for all.

Each command goes through `mrpc_task.cli.main.main`, the function the `tfm` console script
calls, with its own argv, environment, working folder and stdin, and reports its exit code,
stdout and stderr as a run of its own would; the flags it defined are removed afterwards, so
the next command defines its own. Tests of what the command line prints and refuses use this:
starting TensorFlow costs seconds per process, and these commands do little else.

    python -m tests.cli_batch < commands.json > results.json
    commands: [{"argv": ["export", "--model_dir=..."], "env": {...}, "cwd": "...",
                "stdin": "..."}]
"""

import contextlib
import io
import json
import os
import sys
from typing import Dict, List, Optional, Sequence


def run_all(commands: List[Dict]) -> List[Dict]:
  """Runs each command in turn; returns [{code, stdout, stderr}]."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  from mrpc_task.cli import main as cli_main  # pylint: disable=g-import-not-at-top
  results = []
  for command in commands:
    before = set(flags.FLAGS)
    environ, cwd, stdin = dict(os.environ), os.getcwd(), sys.stdin
    os.environ.update(command.get('env') or {})
    os.chdir(command.get('cwd') or cwd)
    sys.stdin = io.TextIOWrapper(io.BytesIO((command.get('stdin') or '').encode()))
    out, err = io.StringIO(), io.StringIO()
    try:
      with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main.main(['tfm'] + list(command['argv']))
    finally:
      sys.stdin = stdin
      os.chdir(cwd)
      os.environ.clear()
      os.environ.update(environ)
      for name in set(flags.FLAGS) - before:
        delattr(flags.FLAGS, name)
      cli_main.IMPORTED.clear()
      tf_keras.mixed_precision.set_global_policy('float32')
    results.append({'code': code, 'stdout': out.getvalue(), 'stderr': err.getvalue()})
  return results


def run(commands: Sequence[Dict], env: Optional[Dict[str, str]] = None) -> List[Dict]:
  """From a test: the commands in one child process (see the module docstring)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  from tests.conftest import REPO_ROOT, child_env  # pylint: disable=g-import-not-at-top
  result = subprocess.run([sys.executable, '-m', 'tests.cli_batch'], cwd=REPO_ROOT,
                          env=env or child_env(), input=json.dumps(list(commands)),
                          capture_output=True, text=True, timeout=1200)
  assert result.returncode == 0, result.stderr[-5000:]
  return json.loads(result.stdout)


if __name__ == '__main__':
  commands = json.load(sys.stdin)
  real_stdout = sys.stdout
  with contextlib.redirect_stdout(sys.stderr):  # Only the results go to the real stdout.
    found = run_all(commands)
  real_stdout.write(json.dumps(found))
