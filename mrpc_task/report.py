"""PNG plots of a training run, read back from its TensorBoard event files.

TensorBoard needs a browser; a report folder of PNGs can be attached to an issue or a review.
Everything comes from what the trainer already logged (`train/` and `validation/` event files
written by Orbit, `params.yaml` for the class names), so any run, finished or not, can be
reported, including runs made before this module existed (minus the confusion matrix, which
needs the `confusion/...` evaluation scalars).
"""

import collections
import io
import os
from typing import Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
import yaml

from mrpc_task import metrics

# Series: tag -> [(step, value)] sorted by step; a resumed run's repeated steps keep the last.
Series = Dict[str, List[Tuple[int, float]]]

FIGURE_INCHES = (8, 5)
DPI = 100  # -> 800 x 500 pixel PNGs.


def read_scalars(event_dir: str) -> Series:
  """Every scalar in the event files of one folder (TF2 tensor summaries or TF1 simple values)."""
  by_tag: Dict[str, Dict[int, float]] = collections.defaultdict(dict)
  if not tf.io.gfile.isdir(event_dir):
    return {}
  for name in sorted(tf.io.gfile.listdir(event_dir)):
    if not name.startswith('events.out.tfevents'):
      continue
    for event in _events(os.path.join(event_dir, name)):
      for value in event.summary.value:
        if value.HasField('tensor'):
          array = tf.make_ndarray(value.tensor)
          if array.size != 1 or array.dtype.kind not in 'fiub':
            continue
          number = float(array.reshape(()))
        elif value.HasField('simple_value'):
          number = float(value.simple_value)
        else:
          continue
        by_tag[value.tag][int(event.step)] = number
  return {tag: sorted(points.items()) for tag, points in by_tag.items()}


def _events(path: str):
  """The events of one file; a file cut short (a killed run) gives what was written."""
  try:
    yield from tf.compat.v1.train.summary_iterator(path)
  except tf.errors.DataLossError as e:
    logging.warning('%s: truncated event file, read up to the damage (%s)', path, e.message)


def class_names(model_dir: str) -> Optional[List[str]]:
  """task.class_names from the run's params.yaml, if there is one."""
  path = os.path.join(model_dir, 'params.yaml')
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    params = yaml.safe_load(f) or {}
  names = (params.get('task') or {}).get('class_names')
  return list(names) if names else None


def last_confusion_matrix(validation: Series) -> Optional[Tuple[int, np.ndarray]]:
  """(step, matrix) of the last evaluation that logged every `confusion/trueI_predJ` cell."""
  prefix = metrics.CONFUSION_PREFIX + '/'
  cells = {tag[len(prefix):]: dict(points) for tag, points in validation.items()
           if tag.startswith(prefix)}
  if not cells:
    return None
  size = int(round(len(cells) ** 0.5))
  tags = [metrics.confusion_count_name(t, p)[len(prefix):]
          for t in range(size) for p in range(size)]
  if size * size != len(cells) or set(tags) != set(cells):
    return None
  common = set.intersection(*(set(points) for points in cells.values()))
  if not common:
    return None
  step = max(common)
  matrix = np.array([[cells[metrics.confusion_count_name(t, p)[len(prefix):]][step]
                      for p in range(size)] for t in range(size)])
  return step, matrix


def _figure():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('tfm report needs matplotlib: pip install "mrpc_task[report]" '
                      '(or pip install matplotlib)') from e
  matplotlib.use('Agg')  # No display: write files only.
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  return pyplot, pyplot.figure(figsize=FIGURE_INCHES, dpi=DPI)


def _save(pyplot, figure, path: str) -> str:
  """Renders to memory and writes through tf.io.gfile, so gs:// model dirs work too."""
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=DPI)
  pyplot.close(figure)
  with tf.io.gfile.GFile(path, 'wb') as f:
    f.write(buffer.getvalue())
  return path


def plot_series(path: str, title: str, ylabel: str, series: Dict[str, List[Tuple[int, float]]],
                *, percent: bool = False, marker: str = '') -> str:
  """One line per named series against the training step."""
  pyplot, figure = _figure()
  axes = figure.add_subplot(1, 1, 1)
  for label, points in series.items():
    steps = [step for step, _ in points]
    values = [value * (100 if percent else 1) for _, value in points]
    axes.plot(steps, values, marker=marker, label=label)
  axes.set_title(title)
  axes.set_xlabel('step')
  axes.set_ylabel(ylabel)
  axes.grid(alpha=0.3)
  if len(series) > 1:
    axes.legend()
  return _save(pyplot, figure, path)


def plot_confusion(path: str, step: int, matrix: np.ndarray,
                   names: Optional[List[str]]) -> str:
  """The matrix as a heat map with the counts written in each cell."""
  pyplot, figure = _figure()
  axes = figure.add_subplot(1, 1, 1)
  axes.imshow(matrix, cmap='Blues')
  labels = names if names and len(names) == len(matrix) else [str(i) for i in range(len(matrix))]
  axes.set_xticks(range(len(labels)), labels)
  axes.set_yticks(range(len(labels)), labels)
  axes.set_xlabel('predicted')
  axes.set_ylabel('true')
  peak = matrix.max() if matrix.size else 0
  for (row, column), count in np.ndenumerate(matrix):
    axes.text(column, row, f'{int(count)}', ha='center', va='center',
              color='white' if count > peak / 2 else 'black')
  axes.set_title(f'dev confusion matrix at step {step} ({int(matrix.sum())} pairs)')
  return _save(pyplot, figure, path)


def write_report(model_dir: str, output_dir: Optional[str] = None) -> List[str]:
  """Writes the PNGs and returns their paths.

  Args:
    model_dir: a training directory (with `train/` and/or `validation/` event files).
    output_dir: where to write; default `model_dir/report`.

  Returns:
    Paths written: loss.png, learning_rate.png, dev_scores.png, confusion_matrix.png (each
    only when its data was logged).

  Raises:
    FileNotFoundError: model_dir holds no event files at all.
  """
  train = read_scalars(os.path.join(model_dir, 'train'))
  validation = read_scalars(os.path.join(model_dir, 'validation'))
  if not train and not validation:
    raise FileNotFoundError(
        f'--model_dir={model_dir!r}: no TensorBoard event files in its train/ or validation/')
  output_dir = output_dir or os.path.join(model_dir, 'report')
  tf.io.gfile.makedirs(output_dir)
  written = []
  if 'training_loss' in train:
    written.append(plot_series(os.path.join(output_dir, 'loss.png'), 'training loss', 'loss',
                               {'training loss': train['training_loss']}))
  if 'learning_rate' in train:
    written.append(plot_series(os.path.join(output_dir, 'learning_rate.png'), 'learning rate',
                               'learning rate', {'learning rate': train['learning_rate']}))
  scores = {name: validation[name] for name in ('accuracy', 'f1') if name in validation}
  if scores:
    written.append(plot_series(os.path.join(output_dir, 'dev_scores.png'),
                               'dev accuracy and F1 per evaluation', 'percent', scores,
                               percent=True, marker='o'))
  confusion = last_confusion_matrix(validation)
  if confusion:
    written.append(plot_confusion(os.path.join(output_dir, 'confusion_matrix.png'),
                                  *confusion, class_names(model_dir)))
  return written
