"""The Model Garden Task: sentence-pair classification with a BERT classifier.

Only the Task's hook methods live here; reading data, scoring and checkpoint handling are in
their own modules. `train_lib.run_experiment` and Orbit drive it.
"""

from typing import Optional

import tensorflow as tf
import tf_keras
from official.core import base_task
from official.core import task_factory
from official.modeling import tf_utils
from official.nlp.configs import encoders

from mrpc_task import configs
from mrpc_task import data
from mrpc_task import dense_updates
from mrpc_task import fast_dropout
from mrpc_task import layer_decay
from mrpc_task import metrics as metrics_lib
from mrpc_task import modeling
from mrpc_task import conversion_cache
from mrpc_task import pretrained
from mrpc_task import tokenization


def _check_vocab_fits_encoder(params: configs.SentencePairTaskConfig):
  """Fails when a local vocab file's size differs from the encoder's vocab_size.

  A smaller vocab trains without error but leaves embedding rows unused; a larger one crashes
  inside the embedding lookup. Remote vocab files (gs://) are checked when the data is read.
  """
  expected = getattr(params.model.encoder.get(), 'vocab_size', None)
  for name in ('train_data', 'validation_data'):
    vocab_file = getattr(params, name).vocab_file
    if expected is None or '://' in vocab_file:
      continue
    if not tf.io.gfile.exists(vocab_file):
      raise FileNotFoundError(f'task.{name}.vocab_file={vocab_file!r} does not exist')
    size = tokenization.count_vocab(vocab_file)
    if size != expected:
      raise configs.ConfigError(
          f'task.{name}.vocab_file={vocab_file!r}: has {size} tokens but '
          f'task.model.encoder vocab_size is {expected}')


@task_factory.register_task_cls(configs.SentencePairTaskConfig)
class SentencePairTask(base_task.Task):
  """Fine-tunes a BERT-family encoder to classify sentence pairs (MRPC: paraphrase or not)."""

  def __init__(self, params: configs.SentencePairTaskConfig, logging_dir: Optional[str] = None,
               name: Optional[str] = None):
    params.validate()
    _check_vocab_fits_encoder(params)
    if params.seed is not None:
      tf_keras.utils.set_random_seed(params.seed)
    super().__init__(params, logging_dir=logging_dir, name=name)

  def build_model(self) -> tf_keras.Model:
    model_config = self.task_config.model
    model = modeling.build_classifier(
        encoders.build_encoder(model_config.encoder),
        num_classes=model_config.num_classes,
        pooling=model_config.pooling,
        dropout_rate=model_config.dropout_rate,
        initializer=tf_keras.initializers.TruncatedNormal(
            stddev=model_config.encoder.get().initializer_range))
    if model_config.fast_dropout:
      fast_dropout.use_fast_dropout(model)
    layer_decay.check_layers([v.name for v in model.trainable_variables],
                             num_layers=self._num_layers(), decay=self.task_config.layer_decay)
    return model

  def _num_layers(self) -> int:
    return getattr(self.task_config.model.encoder.get(), 'num_layers', 0)

  def initialize(self, model: tf_keras.Model):
    """Restores the pretrained encoder; Orbit calls this only when model_dir has no checkpoint."""
    config = self.task_config
    if config.init_from_hf:
      prefix = conversion_cache.converted_hf_checkpoint(config.init_from_hf)
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

  def build_inputs(self, params: configs.SentencePairDataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None):
    return data.build_dataset(params, input_context)

  def build_losses(self, labels, model_outputs, aux_losses=None) -> tf.Tensor:
    """Mean sparse categorical cross-entropy from logits (float32 under mixed precision)."""
    loss = tf_keras.losses.sparse_categorical_crossentropy(
        labels, tf.cast(model_outputs, tf.float32), from_logits=True)
    loss = tf_utils.safe_mean(loss)
    if aux_losses:
      loss += tf.add_n(aux_losses)
    return loss

  def build_metrics(self, training: Optional[bool] = None):
    # Confusion-matrix cells and the loss metric only for evaluation: training logs stay short.
    scores = metrics_lib.pair_classification_metrics(
        self.task_config.model.num_classes, self.task_config.positive_class_id,
        with_counts=not training)
    return scores if training else scores + [metrics_lib.validation_loss_metric()]

  def validation_step(self, inputs, model: tf_keras.Model, metrics=None):
    """Updates the metrics only; the loss is one of them (see `validation_loss_metric`).

    Model Garden's trainer averages the loss returned here per replica and step, so with
    several replicas an uneven last batch (some replicas empty, loss 0) skews it. Returning
    no loss leaves `validation_loss` to the per-example metric, exact on any replica count.
    """
    features, labels = inputs
    outputs = self.inference_step(features, model)
    if metrics:
      self.process_metrics(metrics, labels, outputs)
    return {}

  def process_metrics(self, metrics, labels, model_outputs, **kwargs):
    for metric in metrics:
      metric.update_state(labels, model_outputs)
