"""A cache of Hugging Face encoders converted to Model Garden checkpoints.

Converting MiniLM takes seconds and every training run starts from it, so each converted
folder is kept under $MRPC_TASK_CACHE (else ~/.cache/mrpc_task), keyed by the content of the
files it came from.
"""

import hashlib
import os
import shutil
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
      conversion.convert_hf(hf_dir, staging)
      try:
        os.rename(staging, target)
      except OSError:  # Another process finished first; keep its copy.
        pass
    finally:
      shutil.rmtree(staging, ignore_errors=True)
    logging.info('Converted %s into %s', hf_dir, target)
  return os.path.join(target, 'encoder')
