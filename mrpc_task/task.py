"""The Model Garden Task: one text or a pair -> a class or a score, on a BERT-family encoder.

Only the Task's hook methods live here; reading data, scoring and checkpoint handling are in
their own modules. `train_lib.run_experiment` and Orbit drive it. What the task is (its texts,
label kind, metrics, evaluation splits) comes from its config: `configs.TextTaskConfig`.
"""

import io
import os
from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf
import tf_keras
from official.core import base_task
from official.core import task_factory
from official.modeling import tf_utils
from official.nlp.configs import encoders

from mrpc_task import activations  # Also registers the exact GELU.
from mrpc_task import configs
from mrpc_task import data
from mrpc_task import dense_updates
from mrpc_task import fast_dropout
from mrpc_task import layer_decay
from mrpc_task import metrics as metrics_lib
from mrpc_task import modeling
from mrpc_task import norm_gradient
from mrpc_task import safe_output
from mrpc_task import tokenization
from mrpc_task import tsv_reader
from mrpc_task.checkpoints import cache
from mrpc_task.checkpoints import pretrained

# The last evaluation's predictions of a score task, for `tfm report`'s scatter plot.
PREDICTIONS_FILE = 'eval_predictions.npz'


def _check_vocab_fits_encoder(params: configs.TextTaskConfig):
  """Fails when a local vocab file's size differs from the encoder's vocab_size.

  A smaller vocab trains without error but leaves embedding rows unused; a larger one crashes
  inside the embedding lookup. Remote vocab files (gs://) are checked when the data is read.
  """
  expected = getattr(params.model.encoder.get(), 'vocab_size', None)
  for name in ('train_data', 'validation_data'):
    vocab_file = getattr(params, name).vocab_file
    if expected is None or '://' in vocab_file or params.hub_module_url:
      continue
    if not tf.io.gfile.exists(vocab_file):
      raise FileNotFoundError(f'task.{name}.vocab_file={vocab_file!r} does not exist')
    size = tokenization.count_vocab(vocab_file)
    if size != expected:
      raise configs.ConfigError(
          f'task.{name}.vocab_file={vocab_file!r}: has {size} tokens but '
          f'task.model.encoder vocab_size is {expected}')


def label_spec(task: configs.TextTaskConfig,
               params: configs.TextDataConfig) -> tsv_reader.LabelSpec:
  """How the task's labels are read from `params`' files (with the task's score range)."""
  return data.label_spec(params, list(task.score_range))


@task_factory.register_task_cls(configs.TextTaskConfig)
class TextTask(base_task.Task):
  """Fine-tunes a BERT-family encoder to classify or score texts (MRPC: paraphrase or not)."""

  def __init__(self, params: configs.TextTaskConfig, logging_dir: Optional[str] = None,
               name: Optional[str] = None):
    params.validate()
    _check_vocab_fits_encoder(params)
    super().__init__(params, logging_dir=logging_dir, name=name)
    # The strategy the trainer runs under (the Task is built in its scope): only its chief
    # writes files.
    self._strategy = tf.distribute.get_strategy()
    self._seeded = False

  def build_model(self) -> tf_keras.Model:
    """The classifier (one output for a score task).

    With `task.seed` set, the first model a Task builds is seeded (Keras' set_random_seed,
    which dropout draws from too), so its new layers start from the same weights and its
    dropout draws the same masks every run; further models of the same Task (an ensemble's
    members) continue the random stream and differ.
    """
    config = self.task_config
    if config.seed is not None and not self._seeded:
      tf_keras.utils.set_random_seed(config.seed)
      self._seeded = True
    model_config = config.model
    if config.hub_module_url:
      network = pretrained.encoder_from_hub(config.hub_module_url)
    else:
      network = encoders.build_encoder(model_config.encoder)
    model = modeling.build_classifier(
        network,
        num_classes=model_config.num_classes,
        pooling=model_config.pooling,
        dropout_rate=model_config.dropout_rate,
        initializer=tf_keras.initializers.TruncatedNormal(
            stddev=model_config.encoder.get().initializer_range))
    if model_config.fast_dropout:
      fast_dropout.use_fast_dropout(model)
    layer_decay.check_layers([v.name for v in model.trainable_variables],
                             num_layers=self._num_layers(), decay=config.layer_decay)
    return model

  def _num_layers(self) -> int:
    return getattr(self.task_config.model.encoder.get(), 'num_layers', 0)

  def initialize(self, model: tf_keras.Model):
    """Restores the pretrained encoder; Orbit calls this only when model_dir has no checkpoint.

    A TF Hub encoder (`hub_module_url`) arrives with its weights: nothing to restore.
    """
    config = self.task_config
    if config.init_from_hf:
      prefix = cache.converted_hf_checkpoint(config.init_from_hf)
      pretrained.check_encoder_config(prefix, config.model.encoder.get().as_dict())
      pretrained.restore_encoder(model.checkpoint_items['encoder'], prefix, 'task.init_from_hf')
    elif config.init_checkpoint:
      pretrained.restore_encoder(model.checkpoint_items['encoder'], config.init_checkpoint)

  def create_optimizer(self, optimizer_config, runtime_config=None, dp_config=None):
    """Model Garden's optimizer, with `task.layer_decay` and `dense_embedding_updates`."""
    optimizer = super().create_optimizer(optimizer_config, runtime_config, dp_config)
    optimizer = layer_decay.apply_layer_decay(
        optimizer, num_layers=self._num_layers(), decay=self.task_config.layer_decay)
    if self.task_config.dense_embedding_updates:
      optimizer = dense_updates.apply_sparse_as_dense(optimizer)
    return optimizer

  def train_step(self, inputs, model: tf_keras.Model, optimizer, metrics=None):
    """Model Garden's training step; with `task.model.xla_training_kernels`, traced with the
    kernels only training compiles: the GELU's forward pass (`activations.training_kernels`)
    with the casts around it (`activations.RoundingGeluActivation`), and the layer norms'
    gradients (`norm_gradient`)."""
    if not self.task_config.model.xla_training_kernels:
      return super().train_step(inputs, model, optimizer, metrics=metrics)
    norm_gradient.use_norm_gradient(model)  # Once: later calls find no Keras layer norm.
    activations.use_rounding_gelu(model)  # Likewise.
    with activations.training_kernels():
      return super().train_step(inputs, model, optimizer, metrics=metrics)

  def build_inputs(self, params: configs.TextDataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None):
    return data.build_dataset(params, input_context,
                              labels=label_spec(self.task_config, params))

  def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
    """Mean cross-entropy from logits (classes) or mean squared error (scores), in float32
    under mixed precision."""
    outputs = tf.cast(model_outputs, tf.float32)
    if self.task_config.is_regression:
      loss = tf.math.squared_difference(tf.reshape(outputs, [-1]),
                                        tf.reshape(tf.cast(labels, tf.float32), [-1]))
    else:
      loss = tf_keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=True)
    loss = tf_utils.safe_mean(loss)
    if aux_losses:
      loss += tf.add_n(aux_losses)
    return loss

  def build_metrics(self, training: Optional[bool] = None):
    # Confusion-matrix cells and the loss metric only for evaluation: training logs stay short.
    return metrics_lib.task_metrics(self.task_config, training=bool(training))

  def validation_step(self, inputs, model: tf_keras.Model, metrics=None):
    """Updates the metrics; a score task also returns every prediction, gathered from all
    replicas (Pearson and Spearman need them all: `reduce_aggregated_logs`).

    Model Garden's trainer averages a loss returned here per replica and step, so with
    several replicas an uneven last batch (some replicas empty, loss 0) skews it. Returning
    no loss leaves `validation_loss` to the per-example metric, exact on any replica count.
    """
    features, labels = inputs
    features = dict(features)
    split_ids = features.pop(data.SPLIT_ID, None)
    outputs = self.inference_step(features, model)
    if metrics:
      self.process_metrics(metrics, labels, outputs, split_ids=split_ids)
    if not self.task_config.is_regression:
      return {}
    if split_ids is None:
      split_ids = tf.zeros_like(labels, tf.int32)
    context = tf.distribute.get_replica_context()
    return {name: context.all_gather(tf.reshape(tf.cast(value, dtype), [-1]), axis=0)
            for name, value, dtype in (('predictions', outputs, tf.float32),
                                       ('labels', labels, tf.float32),
                                       ('split_ids', split_ids, tf.int32))}

  def process_metrics(self, metrics, labels, model_outputs, split_ids=None, **kwargs):
    metrics_lib.update_metrics(metrics, labels, model_outputs, split_ids)

  def aggregate_logs(self, state=None, step_outputs=None):
    """Collects a score task's gathered predictions (every replica holds all of them: the
    first replica's copy is taken)."""
    if not step_outputs:
      return state
    state = state or {name: [] for name in step_outputs}
    for name, values in step_outputs.items():
      state[name].append(np.asarray(values[0]))
    return state

  def reduce_aggregated_logs(self, aggregated_logs, global_step=None):
    """Pearson, Spearman and glue_score of each evaluation split, over all its predictions.

    The chief also saves them (`PREDICTIONS_FILE` in the model folder), for `tfm report`.
    """
    config = self.task_config
    arrays = {name: np.concatenate(values) if values else np.zeros([0])
              for name, values in aggregated_logs.items()}
    splits = config.eval_splits
    logs = {}
    for index, split in enumerate(splits):
      rows = arrays['split_ids'] == index
      scores = metrics_lib.correlation_scores(arrays['predictions'][rows],
                                              arrays['labels'][rows], config.metrics)
      prefix = configs.split_prefix(split, splits)
      logs.update({prefix + name: value for name, value in scores.items()
                   if name in list(config.metrics) + [configs.GLUE_SCORE]})
    self._save_predictions(arrays, global_step)
    return logs

  def _save_predictions(self, arrays, global_step):
    if not self.logging_dir or not self._strategy.extended.should_checkpoint:
      return
    buffer = io.BytesIO()
    np.savez(buffer, step=int(global_step.numpy()) if global_step is not None else -1,
             splits=np.asarray(self.task_config.eval_splits), **arrays)
    path = os.path.join(self.logging_dir, PREDICTIONS_FILE)
    try:
      tf.io.gfile.makedirs(self.logging_dir)
      with safe_output.atomic_file(path, 'wb', label='predictions file', overwrite=True) as f:
        f.write(buffer.getvalue())
    except (OSError, tf.errors.OpError) as e:  # A plot's data: never worth failing a run.
      logging.warning('%s not written: %s', path, e)
