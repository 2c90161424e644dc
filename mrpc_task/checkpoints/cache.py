"""A cache of Hugging Face encoders converted to Model Garden checkpoints.

Converting MiniLM takes seconds and every training run starts from it, so each converted
folder is kept under $MRPC_TASK_CACHE (else ~/.cache/mrpc_task), keyed by the content of the
files it came from. The conversion runs in a child process: the arrays and the Keras encoder
it builds would otherwise stay in the training process (+0.19 GiB resident after it, +0.35 GiB
at its peak, measured on MiniLM), on top of the model it trains.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl import logging

from mrpc_task.checkpoints import conversion

CACHE_ENV = 'MRPC_TASK_CACHE'


def cache_dir() -> str:
  """Where converted checkpoints live: $MRPC_TASK_CACHE, else ~/.cache/mrpc_task."""
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser('~'), '.cache', 'mrpc_task')


def converted_hf_checkpoint(hf_dir: str) -> str:
  """Converts a Hugging Face BERT folder once; later calls reuse the cached conversion.

  The cache key is a hash of config.json and model.safetensors, so a changed model converts
  again. Conversion writes to a temporary folder renamed into place, so an interrupted run
  never leaves a half-written cache entry.

  Args:
    hf_dir: folder with config.json and model.safetensors.

  Returns:
    The prefix of the converted encoder checkpoint.
  """
  digest = hashlib.sha256()
  for name in ('config.json', 'model.safetensors'):
    path = os.path.join(hf_dir, name)
    if not os.path.exists(path):
      raise FileNotFoundError(f'task.init_from_hf={hf_dir!r}: {name} is missing')
    with open(path, 'rb') as f:
      for block in iter(lambda: f.read(1 << 20), b''):
        digest.update(block)
  target = os.path.join(cache_dir(), 'hf-' + digest.hexdigest()[:16])
  if not os.path.exists(os.path.join(target, 'encoder.index')):
    os.makedirs(cache_dir(), exist_ok=True)
    staging = tempfile.mkdtemp(dir=cache_dir(), prefix='.converting-')
    try:
      _convert_in_child(hf_dir, staging)
      try:
        os.rename(staging, target)
      except OSError:  # Another process finished first; keep its copy.
        pass
    finally:
      shutil.rmtree(staging, ignore_errors=True)
    logging.info('Converted %s into %s', hf_dir, target)
  return os.path.join(target, 'encoder')


_CHILD = '''
import json
import sys
from mrpc_task.checkpoints import conversion
try:
  conversion.convert_hf(sys.argv[1], sys.argv[2])
except (ValueError, OSError) as e:
  sys.stderr.write('\\n' + json.dumps([type(e).__name__, str(e)]) + '\\n')
  sys.exit(3)
'''

# What the child's failures become here (the types convert_hf raises).
_ERRORS = {'FileNotFoundError': FileNotFoundError, 'IsADirectoryError': IsADirectoryError,
           'PermissionError': PermissionError}


def _convert_in_child(hf_dir: str, output_dir: str):
  """`conversion.convert_hf(hf_dir, output_dir)` in a fresh Python process; its errors are
  raised here with their message (file names included), as the call itself would."""
  package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '3'),
             PYTHONPATH=os.pathsep.join(
                 [package_root] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
  result = subprocess.run([sys.executable, '-c', _CHILD, str(hf_dir), str(output_dir)],
                          env=env, capture_output=True, text=True, check=False)
  if result.returncode == 0:
    return
  if result.returncode == 3:
    kind, message = json.loads(result.stderr.strip().splitlines()[-1])
    raise _ERRORS.get(kind, conversion.ConversionError)(message)
  raise conversion.ConversionError(
      f'converting {hf_dir} failed (exit {result.returncode}): {result.stderr[-2000:]}')
