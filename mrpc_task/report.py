"""PNG plots of a training run, read back from what the trainer wrote.

TensorBoard needs a browser; a report folder of PNGs can be attached to an issue or a review.
Everything comes from what the trainer already logged (`train/` and `validation/` event files
written by Orbit; `params.yaml` for the task's metrics, splits and class names; for a score
task, its last evaluation's predictions), so any run, finished or not, can be reported:
loss, learning rate, the task's scores per evaluation, and the last evaluation's confusion
matrix (classes) or predicted-vs-gold scatter plot (scores).
"""

import collections
import dataclasses
import io
import math
import os
from typing import Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow.core.util import event_pb2
import yaml

from mrpc_task import configs
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


@dataclasses.dataclass
class RunTask:
  """What the report needs of a run's task (from its params.yaml; MRPC's when absent)."""
  metrics: List[str]
  splits: List[str]
  class_names: Optional[List[str]]
  regression: bool


def run_task(model_dir: str) -> RunTask:
  """The task of the run in model_dir, as its params.yaml describes it."""
  path = os.path.join(model_dir, 'params.yaml')
  task: Dict = {}
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      try:
        task = (yaml.safe_load(f) or {}).get('task') or {}
      except (yaml.YAMLError, AttributeError):
        task = {}
  try:
    splits = [read.name for read in configs.TextDataConfig(
        **{k: v for k, v in (task.get('validation_data') or {}).items()
           if k in ('tsv_split', 'tfds_split', 'selection_split', 'selection_from')}).reads]
  except (TypeError, ValueError, KeyError):
    splits = ['dev']
  return RunTask(metrics=list(task.get('metrics') or metrics.DEFAULT_METRICS),
                 splits=splits or ['dev'],
                 class_names=list(task['class_names']) if task.get('class_names') else None,
                 regression=task.get('label_kind') == 'score')


def last_confusion_matrix(validation: Series, prefix: str = ''
                          ) -> Tuple[Optional[Tuple[int, np.ndarray]], str]:
  """(step, matrix) of the last evaluation that logged every `confusion/trueI_predJ` cell
  (of the split whose tags start with `prefix`), and '' or why there is none."""
  prefix = prefix + metrics.CONFUSION_PREFIX + '/'
  cells = {tag[len(prefix):]: dict(points) for tag, points in validation.items()
           if tag.startswith(prefix)}
  if not cells:
    return None, f'no {prefix}... scalars in validation/ (run made before they existed?)'
  size = int(round(len(cells) ** 0.5))
  tags = [metrics.confusion_count_name(t, p)[len(metrics.CONFUSION_PREFIX) + 1:]
          for t in range(size) for p in range(size)]
  if size * size != len(cells) or set(tags) != set(cells):
    return None, (f'the {prefix}... scalars are incomplete ({len(cells)} cells: '
                  f'{sorted(cells)}); damaged event files?')
  common = set.intersection(*(set(points) for points in cells.values()))
  if not common:
    return None, 'no evaluation logged every confusion cell; damaged event files?'
  step = max(common)
  matrix = np.array([[cells[tag][step] for tag in tags[t * size:(t + 1) * size]]
                     for t in range(size)])
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


def plot_confusion(step: int, matrix: np.ndarray, names: Optional[List[str]],
                   split: str = 'dev') -> bytes:
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
  axes.set_title(f'{split} confusion matrix at step {step} ({int(matrix.sum())} examples)')
  return png_bytes(pyplot, figure)


def plot_scatter(step: int, predictions: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> bytes:
  """Predicted against gold score, one colour per split, with the diagonal of a perfect
  model."""
  pyplot, figure = new_figure()
  axes = figure.add_subplot(1, 1, 1)
  low, high = math.inf, -math.inf
  for split, (predicted, gold) in predictions.items():
    axes.scatter(gold, predicted, s=8, alpha=0.5, label=f'{split} ({len(gold)})')
    if len(gold):
      low = min(low, float(np.min(gold)), float(np.min(predicted)))
      high = max(high, float(np.max(gold)), float(np.max(predicted)))
  if low < high:
    axes.plot([low, high], [low, high], color='grey', linewidth=1)
  axes.set_xlabel('gold score')
  axes.set_ylabel('predicted score')
  axes.set_title(f'predicted vs gold at step {step}')
  axes.grid(alpha=0.3)
  axes.legend()
  return png_bytes(pyplot, figure)


def last_predictions(model_dir: str
                    ) -> Tuple[Optional[Tuple[int, Dict[str, Tuple[np.ndarray, np.ndarray]]]], str]:
  """(step, {split: (predicted, gold)}) of a score task's last evaluation, and '' or why
  there is none."""
  from mrpc_task import task as task_lib  # pylint: disable=g-import-not-at-top
  path = os.path.join(model_dir, task_lib.PREDICTIONS_FILE)
  if not tf.io.gfile.exists(path):
    return None, f'no {task_lib.PREDICTIONS_FILE} (no evaluation yet?)'
  try:
    with tf.io.gfile.GFile(path, 'rb') as f:
      saved = np.load(io.BytesIO(f.read()))
      splits = [str(name) for name in saved['splits']]
      found = {split: (saved['predictions'][saved['split_ids'] == index],
                       saved['labels'][saved['split_ids'] == index])
               for index, split in enumerate(splits)}
      return (int(saved['step']), found), ''
  except (OSError, ValueError, KeyError) as e:
    return None, f'{path}: unreadable ({e})'


REPORT_FILES = ('loss.png', 'learning_rate.png', 'scores.png', 'confusion_matrix*.png',
                'scatter.png')


@dataclasses.dataclass
class Report:
  """The PNGs written, and one line for each plot that could not be made and why."""
  written: List[str]
  problems: List[str]


def write_report(model_dir: str, output_dir: Optional[str] = None, *,
                 overwrite: bool = False, labels: Tuple[str, str] = ('model_dir', 'output_dir')
                 ) -> Report:
  """Writes the PNGs, each under a temporary name renamed into place.

  Args:
    model_dir: a training directory (with `train/` and/or `validation/` event files).
    output_dir: where to write; default `model_dir/report`.
    overwrite: replace PNGs of an earlier report there.
    labels: how messages name model_dir and output_dir.

  Returns:
    The paths written (loss.png, learning_rate.png, scores.png, and confusion_matrix.png
    (confusion_matrix_SPLIT.png per split when there are several) or scatter.png, each when
    its data was logged) and, for each plot left out, why.

  Raises:
    FileNotFoundError: model_dir is not a folder, or holds no event files at all.
    safe_output.OutputError: output_dir is a file or an event folder, or holds an earlier
      report and overwrite is False.
  """
  model_label, output_label = labels
  if not tf.io.gfile.isdir(model_dir):
    raise FileNotFoundError(f'{model_label}={model_dir!r}: no such folder')
  train_dir, validation_dir = (os.path.join(model_dir, name) for name in ('train', 'validation'))
  output_dir = output_dir or os.path.join(model_dir, 'report')
  safe_output.refuse_overlap(output_dir, {'train/': train_dir, 'validation/': validation_dir},
                             label=output_label)
  if tf.io.gfile.exists(output_dir) and not tf.io.gfile.isdir(output_dir):
    raise safe_output.OutputError(f'{output_label}={output_dir}: is a file, not a folder')
  if tf.io.gfile.isdir(output_dir):
    earlier = [name for pattern in REPORT_FILES
               for name in tf.io.gfile.glob(os.path.join(output_dir, pattern))]
    if earlier and not overwrite:
      raise safe_output.DestinationExistsError(
          f'{output_label}={output_dir} already holds {os.path.basename(earlier[0])} (an '
          'earlier report)', output_label)
  train = read_scalars(train_dir)
  validation = read_scalars(validation_dir)
  if not train and not validation:
    raise FileNotFoundError(
        f'{model_label}={model_dir!r}: no TensorBoard event files in its train/ or validation/')
  tf.io.gfile.makedirs(output_dir)
  task = run_task(model_dir)
  report = Report([], [])

  def save(name, figure_bytes):
    path = os.path.join(output_dir, name)
    with safe_output.atomic_file(path, 'wb', label=output_label, overwrite=True) as f:
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
  tags = [configs.split_prefix(split, task.splits) + name for split in task.splits
          for name in task.metrics + [configs.GLUE_SCORE]]
  scores = {tag: validation[tag] for tag in tags if tag in validation}
  if scores:
    save('scores.png', plot_series(f'{", ".join(task.splits)} scores per evaluation', 'x 100',
                                   scores, percent=True, marker='o'))
  else:
    missing('scores.png', f'none of {tags} in validation/')
  if task.regression:
    found, why = last_predictions(model_dir)
    if found:
      save('scatter.png', plot_scatter(*found))
    else:
      missing('scatter.png', why)
    return report
  for split in task.splits:
    prefix = configs.split_prefix(split, task.splits)
    name = f'confusion_matrix_{split}.png' if prefix else 'confusion_matrix.png'
    confusion, why = last_confusion_matrix(validation, prefix)
    if confusion:
      save(name, plot_confusion(*confusion, task.class_names, split))
    else:
      missing(name, why)
  return report
