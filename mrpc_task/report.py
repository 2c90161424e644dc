"""PNG plots of a training run, read back from its TensorBoard event files.

TensorBoard needs a browser; a report folder of PNGs can be attached to an issue or a review.
Everything comes from what the trainer already logged (`train/` and `validation/` event files
written by Orbit, `params.yaml` for the class names), so any run, finished or not, can be
reported, including runs made before this module existed (minus the confusion matrix, which
needs the `confusion/...` evaluation scalars).
"""

import collections
import dataclasses
import io
import os
from typing import Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow.core.util import event_pb2
import yaml

from mrpc_task import metrics
from mrpc_task import safe_output

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
    for record in tf.data.TFRecordDataset(path):
      yield event_pb2.Event.FromString(record.numpy())
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


def last_confusion_matrix(validation: Series) -> Tuple[Optional[Tuple[int, np.ndarray]], str]:
  """(step, matrix) of the last evaluation that logged every `confusion/trueI_predJ` cell,
  and '' or why there is none."""
  prefix = metrics.CONFUSION_PREFIX + '/'
  cells = {tag[len(prefix):]: dict(points) for tag, points in validation.items()
           if tag.startswith(prefix)}
  if not cells:
    return None, 'no confusion/... scalars in validation/ (run made before they existed?)'
  size = int(round(len(cells) ** 0.5))
  tags = [metrics.confusion_count_name(t, p)[len(prefix):]
          for t in range(size) for p in range(size)]
  if size * size != len(cells) or set(tags) != set(cells):
    return None, (f'the confusion/... scalars are incomplete ({len(cells)} cells: '
                  f'{sorted(cells)}); damaged event files?')
  common = set.intersection(*(set(points) for points in cells.values()))
  if not common:
    return None, 'no evaluation logged every confusion cell; damaged event files?'
  step = max(common)
  matrix = np.array([[cells[metrics.confusion_count_name(t, p)[len(prefix):]][step]
                      for p in range(size)] for t in range(size)])
  return (step, matrix), ''


def new_figure(command: str = 'tfm report'):
  """(pyplot, an 800 x 500 figure) on the file-only Agg backend."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f'{command} needs matplotlib: pip install "mrpc_task[report]" '
                      '(or pip install matplotlib)') from e
  matplotlib.use('Agg')  # No display: write files only.
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  return pyplot, pyplot.figure(figsize=FIGURE_INCHES, dpi=DPI)


def png_bytes(pyplot, figure) -> bytes:
  """Renders to memory; written through tf.io.gfile, so gs:// model dirs work too."""
  figure.tight_layout()
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=DPI)
  pyplot.close(figure)
  return buffer.getvalue()


def plot_series(title: str, ylabel: str, series: Dict[str, List[Tuple[int, float]]],
                *, percent: bool = False, marker: str = '') -> bytes:
  """One line per named series against the training step."""
  pyplot, figure = new_figure()
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
  return png_bytes(pyplot, figure)


def plot_confusion(step: int, matrix: np.ndarray, names: Optional[List[str]]) -> bytes:
  """The matrix as a heat map with the counts written in each cell."""
  pyplot, figure = new_figure()
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
  return png_bytes(pyplot, figure)


REPORT_FILES = ('loss.png', 'learning_rate.png', 'dev_scores.png', 'confusion_matrix.png')


@dataclasses.dataclass
class Report:
  """The PNGs written, and one line for each plot that could not be made and why."""
  written: List[str]
  problems: List[str]


def write_report(model_dir: str, output_dir: Optional[str] = None, *,
                 overwrite: bool = False) -> Report:
  """Writes the PNGs, each under a temporary name renamed into place.

  Args:
    model_dir: a training directory (with `train/` and/or `validation/` event files).
    output_dir: where to write; default `model_dir/report`.
    overwrite: replace PNGs of an earlier report there.

  Returns:
    The paths written (loss.png, learning_rate.png, dev_scores.png, confusion_matrix.png,
    each when its data was logged) and, for each plot left out, why.

  Raises:
    FileNotFoundError: model_dir holds no event files at all.
    safe_output.OutputError: output_dir is an event folder, or holds an earlier report and
      overwrite is False.
  """
  train_dir, validation_dir = (os.path.join(model_dir, name) for name in ('train', 'validation'))
  output_dir = output_dir or os.path.join(model_dir, 'report')
  safe_output.refuse_overlap(output_dir, {'train/': train_dir, 'validation/': validation_dir},
                             flag='--output_dir')
  for name in REPORT_FILES:
    path = os.path.join(output_dir, name)
    if tf.io.gfile.exists(path) and not overwrite:
      raise safe_output.OutputError(
          f'--output_dir={output_dir} already holds {name} (an earlier report); pass '
          '--overwrite to replace it, or choose another --output_dir')
  train = read_scalars(train_dir)
  validation = read_scalars(validation_dir)
  if not train and not validation:
    raise FileNotFoundError(
        f'--model_dir={model_dir!r}: no TensorBoard event files in its train/ or validation/')
  tf.io.gfile.makedirs(output_dir)
  report = Report([], [])

  def save(name, figure_bytes):
    path = os.path.join(output_dir, name)
    with safe_output.atomic_file(path, 'wb', flag='--output_dir', overwrite=True) as f:
      f.write(figure_bytes)
    report.written.append(path)

  def missing(name, why):
    report.problems.append(f'{name}: {why}')

  if 'training_loss' in train:
    save('loss.png', plot_series('training loss', 'loss',
                                 {'training loss': train['training_loss']}))
  else:
    missing('loss.png', 'no training_loss in train/')
  if 'learning_rate' in train:
    save('learning_rate.png', plot_series('learning rate', 'learning rate',
                                          {'learning rate': train['learning_rate']}))
  else:
    missing('learning_rate.png', 'no learning_rate in train/')
  scores = {name: validation[name] for name in ('accuracy', 'f1') if name in validation}
  if scores:
    save('dev_scores.png', plot_series('dev accuracy and F1 per evaluation', 'percent',
                                       scores, percent=True, marker='o'))
  else:
    missing('dev_scores.png', 'no accuracy or f1 in validation/')
  confusion, why = last_confusion_matrix(validation)
  if confusion:
    save('confusion_matrix.png', plot_confusion(*confusion, class_names(model_dir)))
  else:
    missing('confusion_matrix.png', why)
  return report
