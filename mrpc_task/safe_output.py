"""Writing outputs so that a user's files are never lost, clobbered or half-written.

Every file or folder a command writes goes to a temporary name beside its destination and is
renamed into place only when complete (as Orbit's checkpoint manager and `tf.io.gfile` writers
do); an output that is one of the command's inputs, lies inside one or holds one is refused
before anything is opened; an existing destination is replaced only when the caller asks
(`overwrite`), and then whole, so nothing stale from the old one is left behind.

Remote destinations (`gs://...`) have no atomic folder rename: they are written in place, with
the same refusals.
"""

import contextlib
import os
import uuid
from typing import Iterator, Mapping, Optional

import tensorflow as tf

from mrpc_task import errors


class OutputError(errors.InputError, ValueError):
  """An output would replace or damage something the user did not ask to replace."""


class DestinationExistsError(OutputError):
  """The output exists and replacing it was not asked for; `label` names the output (the
  command line adds how to ask: its --overwrite flag)."""

  def __init__(self, message: str, label: str):
    super().__init__(message)
    self.label = label


def is_local(path: str) -> bool:
  return '://' not in path


def _normalized(path: str) -> str:
  if is_local(path):
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))
  return path.rstrip('/')


def _within(inner: str, outer: str) -> bool:
  """inner is outer, or lies inside it (both normalized)."""
  return inner == outer or inner.startswith(outer.rstrip('/') + '/')


def refuse_overlap(output: str, inputs: Mapping[str, Optional[str]], *, label: str,
                   allow_inside: bool = False):
  """Fails when an output path would write over, into or around one of the inputs.

  Args:
    output: the destination (file or folder).
    inputs: flag or key -> path of every input the command reads ('' / None / '-' ignored).
    label: how messages name the output, e.g. '--output' (the command line passes its flag).
    allow_inside: the output may lie inside an input folder (e.g. an export inside
      model_dir), but still never be the input itself nor hold it.

  Raises:
    OutputError: naming both flags and paths.
  """
  target = _normalized(output)
  for name, path in inputs.items():
    if not path or path == '-':
      continue
    source = _normalized(path)
    if target == source:
      raise OutputError(f'{label}={output!r} is also {name}: writing it would destroy the '
                        f'input; choose another {label}')
    if _within(source, target):
      raise OutputError(f'{label}={output!r} holds {name}={path!r}: replacing it would '
                        f'destroy the input; choose another {label}')
    if not allow_inside and _within(target, source):
      raise OutputError(f'{label}={output!r} lies inside {name}={path!r}; write it '
                        f'elsewhere')


def check_destination(path: str, *, label: str, overwrite: bool, folder: bool):
  """Fails early when `path` exists and may not be replaced (an empty folder may be reused).

  Raises:
    OutputError: it exists and overwrite is False, or it is a file where a folder is wanted
      (or the other way round).
  """
  if not path:
    raise OutputError(f'{label} is empty: give a path')
  if not tf.io.gfile.exists(path):
    return
  is_dir = tf.io.gfile.isdir(path)
  if folder and not is_dir:
    raise OutputError(f'{label}={path!r} is a file, not a folder; choose another {label}')
  if not folder and is_dir:
    raise OutputError(f'{label}={path!r} is a folder; give a file name')
  if folder and not tf.io.gfile.listdir(path):
    return
  if not overwrite:
    raise DestinationExistsError(f'{label}={path!r} already exists', label)


def _sibling(path: str, tag: str) -> str:
  parent, name = os.path.split(path.rstrip('/'))
  return os.path.join(parent, f'.{name}.{tag}-{uuid.uuid4().hex[:8]}')


@contextlib.contextmanager
def atomic_file(path: str, mode: str = 'w', *, label: str = 'output',
                overwrite: bool = False) -> Iterator[tf.io.gfile.GFile]:
  """Yields a file open on a temporary name; renamed onto `path` only if the block succeeds.

  Raises:
    OutputError: see `check_destination`.
  """
  check_destination(path, label=label, overwrite=overwrite, folder=False)
  parent = os.path.dirname(path)
  if parent and not tf.io.gfile.isdir(parent):
    raise OutputError(f'{label}={path!r}: folder {parent!r} does not exist')
  if not is_local(path):
    with tf.io.gfile.GFile(path, mode) as f:
      yield f
    return
  temporary = _sibling(path, 'partial')
  try:
    with tf.io.gfile.GFile(temporary, mode) as f:
      yield f
    tf.io.gfile.rename(temporary, path, overwrite=True)
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.remove(temporary)


@contextlib.contextmanager
def atomic_folder(path: str, *, label: str, overwrite: bool = False) -> Iterator[str]:
  """Yields a new temporary folder to fill; it replaces `path` whole if the block succeeds.

  The old folder (when overwrite allows one) is moved aside first and deleted only once the
  new one is in place, so a failure at any point leaves either the old or the new folder.

  Raises:
    OutputError: see `check_destination`.
  """
  check_destination(path, label=label, overwrite=overwrite, folder=True)
  path = path.rstrip('/') or path
  parent = os.path.dirname(path)
  if parent:
    tf.io.gfile.makedirs(parent)
  if not is_local(path):
    if tf.io.gfile.exists(path):
      tf.io.gfile.rmtree(path)
    tf.io.gfile.makedirs(path)
    yield path
    return
  temporary = _sibling(path, 'partial')
  tf.io.gfile.makedirs(temporary)
  try:
    yield temporary
    old = None
    if tf.io.gfile.exists(path):
      old = _sibling(path, 'replaced')
      tf.io.gfile.rename(path, old)
    tf.io.gfile.rename(temporary, path)
    if old:
      tf.io.gfile.rmtree(old)
  finally:
    if tf.io.gfile.exists(temporary):
      tf.io.gfile.rmtree(temporary)
