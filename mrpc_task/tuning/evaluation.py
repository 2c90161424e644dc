"""Scores of one checkpoint on named data: an evaluation split, the selection split, or train.

The trainer evaluates on `validation_data` only; recipe selection needs the same weights
scored on the selection split and on dev (mrpc_task/tuning/selection.py), with the task's own
metrics (its declared ones, glue_score and the loss), computed as the export serves: in
float32, averaged over ensemble members and sentence orders when asked.
"""

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from mrpc_task import configs
from mrpc_task import data
from mrpc_task import metrics as metrics_lib
from mrpc_task import modeling

SELECTION = configs.SELECTION


class UnknownDataError(configs.ConfigError):
  """A data name that is none of the task's; the message lists them."""


def data_names(task: configs.TextTaskConfig) -> List[str]:
  """What a task can be scored on: its declared evaluation splits (dev; MNLI's dev_matched,
  dev_mismatched), `selection` and its training split (train)."""
  return list(task.validation_data.splits) + [SELECTION, task.train_data.tsv_split]


def named_data(task: configs.TextTaskConfig, name: str) -> configs.TextDataConfig:
  """The evaluation config reading `name`: one of `data_names(task)`.

  An evaluation split reads that split as evaluation does; `selection` the selection split
  of the training split (only for runs that trained without it); the training split's name
  all of it.

  Raises:
    UnknownDataError: a name that is none of the task's.
    configs.ConfigError: a tfrecord source (its files name no split), or `selection` for a
      run that trained on it.
  """
  known = data_names(task)
  if name not in known:
    raise UnknownDataError(f'data {name!r}: this task has {", ".join(known)}')
  train, validation = task.train_data, task.validation_data
  if train.source == 'tfrecord':
    raise configs.ConfigError(
        f'data {name!r}: task.train_data.source=tfrecord names files, not splits; evaluate '
        "with the trainer's eval mode and task.validation_data.input_path instead")
  if name == SELECTION and train.selection_split != 'exclude':
    raise configs.ConfigError(
        f'data {name!r}: this run trained on its selection split '
        f"(task.train_data.selection_split={train.selection_split!r}, not 'exclude'), so "
        'scores there would be on training examples; train with '
        'registry/templates/selection.yaml (tfm sweep does) to score it')
  if name in validation.splits:
    tfds = validation.tfds_splits[validation.splits.index(name)]
    return validation.replace(tsv_split=name, tfds_split=tfds, selection_split='')
  reading_train = dict(source=train.source, tsv_dir=train.tsv_dir, tfds_name=train.tfds_name,
                       tfds_data_dir=train.tfds_data_dir, input_path=train.input_path,
                       tsv_columns=train.tsv_columns.as_dict())
  if name == SELECTION:
    return validation.replace(selection_split='only', selection_from=train.tsv_split,
                              selection_fraction=train.selection_fraction, **reading_train)
  return validation.replace(tsv_split=train.tsv_split, tfds_split=train.tfds_split,
                            selection_split='', **reading_train)


def evaluate(task, model, data_config: configs.TextDataConfig, *,
             members: Sequence = (), average_orders: bool = False) -> Dict[str, float]:
  """The task's evaluation scores of `model` over the whole of `data_config` (one split).

  With `members` and/or `average_orders`, the scored outputs are averaged over the models
  and both sentence orders, as the export serves them (`modeling.average_outputs`).
  """
  config = task.task_config.replace(validation_data=data_config.as_dict())
  regression = config.is_regression
  metrics = metrics_lib.task_metrics(config, training=False)
  models = [model] + list(members)

  @tf.function(reduce_retracing=True)
  def outputs(features):
    return [tf.cast(m(features, training=False), tf.float32) for m in models]

  @tf.function(reduce_retracing=True)
  def update(labels, values):
    metrics_lib.update_metrics(metrics, labels, values)

  datasets = [task.build_inputs(data_config)]
  if average_orders:
    configs.check_order_free(config, 'average_orders')
    datasets.append(data.build_dataset(data_config, swap_sentences=True,
                                       labels=_labels(task, data_config)))
  predictions, labels_seen = [], []
  for batches in zip(*datasets):
    labels = batches[0][1]
    for _, other_labels in batches[1:]:
      tf.debugging.assert_equal(other_labels, labels)  # Both orders batch alike.
    values = [value for features, _ in batches for value in outputs(features)]
    combined = (values[0] if len(values) == 1 else
                modeling.average_outputs(values, regression=regression))
    update(labels, combined)
    if regression:
      predictions.append(combined.numpy().reshape(-1))
      labels_seen.append(labels.numpy().reshape(-1))
  scores = {metric.name: float(metric.result()) for metric in metrics}
  if regression:
    scores.update(metrics_lib.correlation_scores(
        np.concatenate(predictions) if predictions else [],
        np.concatenate(labels_seen) if labels_seen else [], config.metrics))
  return scores


def _labels(task, data_config):
  from mrpc_task import task as task_lib  # pylint: disable=g-import-not-at-top
  return task_lib.label_spec(task.task_config, data_config)


def evaluate_run(model_dir: str, data: Sequence[str], *, experiment: Optional[str] = None,
                 checkpoint_path: Optional[str] = None, pick: str = 'final',
                 members: Sequence[str] = (), average_orders: bool = False,
                 config_files: Sequence[str] = (), params_override: Optional[str] = None,
                 known: Sequence[str] = (), labels: Optional[Mapping[str, str]] = None
                 ) -> Dict[str, object]:
  """One checkpoint of a run (by default the final one) scored on named data, as `tfm
  evaluate` does; with members and/or average_orders, the ensemble the export would serve.

  Returns:
    {'checkpoint': ..., 'members': [...], 'average_orders': bool, NAME: {score: value}, ...}
    for each name in `data` (in order, repeats dropped).

  Raises:
    UnknownDataError, runs.ModelDirError, configs.ConfigError and the checkpoint errors of
    `export.restore_classifier`, each naming what is wrong.
  """
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  from mrpc_task import runs  # pylint: disable=g-import-not-at-top
  label = {'model_dir': 'model_dir', 'checkpoint_path': 'checkpoint_path',
           'members': 'members', **(labels or {})}
  run = runs.select(model_dir, experiment=experiment, checkpoint_path=checkpoint_path,
                    pick=pick, members=members, average_orders=average_orders,
                    config_files=config_files, params_override=params_override, known=known,
                    labels=label)
  params, checkpoint, member_paths = run.params, run.checkpoint, run.members
  data_configs = {name: named_data(params.task, name) for name in dict.fromkeys(data)}
  task = task_factory.get_task(params.task, logging_dir=model_dir)
  model = task.build_model()
  checkpoint = export.restore_classifier(model, checkpoint, key=label['checkpoint_path'])
  member_models = []
  for path in member_paths:
    member_models.append(task.build_model())
    export.restore_classifier(member_models[-1], path, key=label['members'])
  scores: Dict[str, object] = {'checkpoint': checkpoint, 'members': member_paths,
                               'average_orders': average_orders}
  for name, config in data_configs.items():
    scores[name] = evaluate(task, model, config, members=member_models,
                            average_orders=average_orders)
  return scores
