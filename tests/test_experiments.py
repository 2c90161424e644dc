"""Every registered experiment builds and validates; bert_mrpc is the tutorial's recipe."""

import os

import numpy as np
import pytest
import tensorflow as tf
from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from official.modeling.optimization import optimizer_factory
from official.nlp.configs import encoders

from mrpc_task import activations
from mrpc_task import configs
from mrpc_task import cpu_features
from mrpc_task import glue
from registry import experiments

OURS = ('bert_mrpc', 'bert_mrpc_tiny', 'bert_mrpc_minilm')


@pytest.mark.parametrize('name', OURS)
@pytest.mark.parametrize('data_dir', ['', '/data/glue/MRPC'])
def test_registered_experiment_builds_and_validates(name, data_dir, monkeypatch):
  """Each experiment validates, with TFDS by default and TSV when MRPC_DATA_DIR is set."""
  if data_dir:
    monkeypatch.setenv(experiments.DATA_DIR_ENV, data_dir)
  else:
    monkeypatch.delenv(experiments.DATA_DIR_ENV, raising=False)
  params = exp_factory.get_exp_config(name)
  params.validate()
  for data in (params.task.train_data, params.task.validation_data):
    assert data.source == ('tsv' if data_dir else 'tfds')
    assert data.tsv_dir == data_dir
  assert params.task.train_data.tsv_split == 'train'
  assert params.task.validation_data.tsv_split == 'dev'
  assert params.task.validation_data.tfds_split == 'validation'
  assert not params.task.validation_data.drop_remainder


def test_bert_mrpc_is_the_tutorial_recipe(monkeypatch):
  """BERT-base from gs://, seq 128, batch 32, 570 steps, Adam 2e-5, 57 warm-up steps."""
  monkeypatch.delenv(experiments.DATA_DIR_ENV, raising=False)
  params = exp_factory.get_exp_config('bert_mrpc')
  bert = params.task.model.encoder.bert
  assert (bert.num_layers, bert.hidden_size, bert.num_attention_heads) == (12, 768, 12)
  assert bert.vocab_size == 30522 and bert.hidden_activation == 'gelu'
  gcs = 'gs://cloud-tpu-checkpoints/bert/v3/uncased_L-12_H-768_A-12'
  assert params.task.init_checkpoint == f'{gcs}/bert_model.ckpt'
  assert params.task.train_data.vocab_file == f'{gcs}/vocab.txt'
  assert params.task.train_data.tfds_name == 'glue/mrpc'
  assert params.task.train_data.seq_length == 128
  assert params.task.train_data.global_batch_size == 32
  assert params.task.validation_data.global_batch_size == 32
  trainer = params.trainer
  assert trainer.train_steps == 570  # 5 epochs x (3668 // 32)
  assert trainer.validation_interval == 114 and trainer.validation_steps == -1
  opt = trainer.optimizer_config
  assert opt.optimizer.type == 'adam' and opt.optimizer.adam.global_clipnorm is None
  assert opt.learning_rate.polynomial.initial_learning_rate == 2e-5
  assert opt.learning_rate.polynomial.decay_steps == 570
  assert opt.learning_rate.polynomial.end_learning_rate == 0.0
  assert opt.learning_rate.polynomial.power == 1.0
  assert opt.warmup.linear.warmup_steps == 57
  schedule = optimizer_factory.OptimizerFactory(opt).build_learning_rate()
  assert float(schedule(0)) == 0.0
  # Model Garden's (and the tutorial's) LinearWarmup ramps to the decayed value at step 57.
  assert float(schedule(28)) == pytest.approx(2e-5 * (1 - 57 / 570) * 28 / 57, rel=1e-5)
  assert float(schedule(57)) == pytest.approx(2e-5 * (1 - 57 / 570), rel=1e-5)
  assert float(schedule(300)) == pytest.approx(2e-5 * (1 - 300 / 570), rel=1e-5)
  assert float(schedule(570)) == 0.0


def test_minilm_experiment_uses_packaged_model_with_exact_gelu(monkeypatch):
  """bert_mrpc_minilm restores the packaged MiniLM and selects the exact GELU."""
  monkeypatch.delenv(experiments.DATA_DIR_ENV, raising=False)
  params = exp_factory.get_exp_config('bert_mrpc_minilm')
  bert = params.task.model.encoder.bert
  assert (bert.num_layers, bert.hidden_size, bert.intermediate_size) == (6, 384, 1536)
  assert bert.hidden_activation == activations.EXACT_GELU
  assert params.task.init_from_hf == experiments.minilm_dir()
  assert params.task.train_data.vocab_file.startswith(experiments.minilm_dir())
  # The dev-chosen recipe: 3 epochs at 2e-4 with layer decay 0.8, clipped to norm 1,
  # bucketed padding.
  assert params.trainer.optimizer_config.optimizer.adam.global_clipnorm == 1.0
  assert params.trainer.train_steps == 342
  assert params.trainer.optimizer_config.learning_rate.polynomial.initial_learning_rate == 2e-4
  assert params.task.layer_decay == 0.8
  assert params.trainer.optimizer_config.warmup.linear.warmup_steps == 34
  assert params.task.train_data.padding == params.task.validation_data.padding == 'bucketed'
  # bfloat16 where the CPU has it (tests/test_cpu_features.py).
  assert params.runtime.mixed_precision_dtype == (
      'bfloat16' if cpu_features.has_fast_bfloat16() else None)
  # Its speed switches are cpu_fast.yaml's: applying the template again changes nothing.
  again = hyperparams.override_params_dict(
      exp_factory.get_exp_config('bert_mrpc_minilm'), experiments.template_path('cpu_fast'),
      is_strict=True)
  assert again.as_dict() == params.as_dict()


def test_unknown_override_key_fails():
  """A misspelt --params_override key is rejected, naming the key."""
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  with pytest.raises(KeyError, match='seq_lenght'):
    hyperparams.override_params_dict(
        params, {'task': {'train_data': {'seq_lenght': 64}}}, is_strict=True)


@pytest.mark.parametrize('override, key', [
    ({'task': {'train_data': {'source': 'csv'}}}, 'task.train_data.source'),
    ({'task': {'train_data': {'seq_length': 1024}}}, 'task.train_data.seq_length'),
    ({'task': {'validation_data': {'tsv_split': '../dev', 'source': 'tsv',
                                   'tsv_dir': 'x'}}}, 'task.validation_data.tsv_split'),
    ({'task': {'train_data': {'tsv_split': 'train,dev'}}}, 'task.train_data.tsv_split'),
    ({'task': {'validation_data': {'tsv_split': 'dev,dev'}}}, 'task.validation_data.tsv_split'),
    ({'task': {'validation_data': {'source': 'tfds', 'tfds_split': 'validation,test'}}},
     'task.validation_data.tfds_split'),
    ({'task': {'metrics': ['accuracy', 'pearson']}}, 'task.metrics'),
    ({'task': {'label_kind': 'score'}}, 'task.model.num_classes'),
    ({'task': {'hub_module_url': 'x', 'init_from_hf': 'y'}}, 'task.hub_module_url'),
    ({'task': {'train_data': {'sentence2_key': ''}}}, 'task.train_data.sentence2_key'),
    ({'trainer': {'best_checkpoint_eval_metric': 'matthews'}},
     'trainer.best_checkpoint_eval_metric'),
    ({'task': {'validation_data': {'selection_split': 'only'}}},
     'task.train_data.selection_split'),
    ({'task': {'init_checkpoint': 'a', 'init_from_hf': 'b'}}, 'task.init_from_hf'),
    ({'task': {'class_names': ['only_one']}}, 'task.class_names'),
    ({'task': {'train_data': {'padding': 'bucketed', 'bucket_boundaries': [64, 32]}}},
     'task.train_data.bucket_boundaries'),
    ({'runtime': {'num_gpus': 3}}, 'task.train_data.global_batch_size'),
    ({'task': {'train_data': {'label_vocabulary': ['1', '1']}}},
     'task.train_data.label_vocabulary'),
    ({'task': {'class_names': ['same', 'same']}}, 'task.class_names'),
    ({'runtime': {'distribution_strategy': 'tpu'},
      'task': {'validation_data': {'padding': 'bucketed'}}}, 'task.validation_data.padding'),
    ({'task': {'train_data': {'source': 'tsv', 'tsv_dir': 'x', 'tsv_columns': {'label': ''}}}},
     'task.train_data.tsv_columns.label'),
    ({'task': {'model': {'pooling': 'mean'}}}, 'task.model.encoder.bert.output_range'),
    ({'trainer': {'train_steps': 200}},
     'trainer.optimizer_config.learning_rate.polynomial.decay_steps'),
    ({'trainer': {'optimizer_config': {'warmup': {'linear': {'warmup_steps': 100}}}}},
     'trainer.optimizer_config.warmup.linear.warmup_steps'),
])
def test_invalid_values_fail_validation_naming_the_key(override, key):
  """Cross-field rules fail in validate(), before training, with the key in the message."""
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  params.override(override, is_strict=True)
  with pytest.raises(configs.ConfigError, match=key.replace('.', r'\.')):
    params.validate()


def test_every_recipe_runs_the_last_layer_on_cls_only_and_mean_pooling_can_undo_it():
  """output_range=1 by default; `--params_override` with null makes mean pooling valid."""
  for name in experiments.REGISTERED:
    assert exp_factory.get_exp_config(name).task.model.encoder.bert.output_range == 1, name
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  params = hyperparams.override_params_dict(
      params, 'task.model.pooling=mean,task.model.encoder.bert.output_range=null',
      is_strict=True)
  assert params.task.model.encoder.bert.output_range is None
  params.validate()


def test_encoders_without_output_range_are_left_alone():
  """The builder sets output_range only where Model Garden's encoder config has it."""
  params = experiments.text_experiment(
      glue.TASKS['mrpc'], encoder=encoders.EncoderConfig(type='albert'), vocab_file='vocab.txt')
  assert 'output_range' not in params.task.model.encoder.albert.as_dict()


def test_task_is_registered_for_the_config():
  """task_factory maps TextTaskConfig to our Task class."""
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  assert type(task_factory.get_task(params.task)).__name__ == 'TextTask'


TEMPLATES = experiments.TEMPLATES_DIR


@pytest.mark.parametrize('template', sorted(os.listdir(TEMPLATES)))
@pytest.mark.parametrize('name', ['bert_mrpc', 'bert_mrpc_tiny'])
def test_yaml_templates_stack_on_experiments(template, name):
  """Every template applies strictly (no unknown key) on top of each experiment and validates."""
  params = exp_factory.get_exp_config(name)
  params = hyperparams.override_params_dict(
      params, os.path.join(TEMPLATES, template), is_strict=True)
  params.validate()


def test_tpu_template_keeps_static_shapes(monkeypatch):
  """With the TPU runtime template every batch is [global_batch, seq_length], eval included."""
  from tests.conftest import tiny_experiment  # pylint: disable=g-import-not-at-top
  from mrpc_task import data  # pylint: disable=g-import-not-at-top
  params = tiny_experiment(monkeypatch, eval_batch_size=8)
  params = hyperparams.override_params_dict(
      params, os.path.join(TEMPLATES, 'tpu.yaml'), is_strict=True)
  params.override({'task': {'validation_data': {'global_batch_size': 4}}})
  params.validate()
  assert params.runtime.distribution_strategy == 'tpu'
  assert params.runtime.mixed_precision_dtype == 'bfloat16'
  train = data.build_dataset(params.task.train_data)
  assert train.element_spec[0]['input_word_ids'].shape.as_list() == [8, 16]
  evaluation = data.build_dataset(params.task.validation_data)
  assert all(f['input_word_ids'].shape == (4, 16) for f, _ in evaluation)  # 20 = 5 x 4


def test_hf_trainer_template_builds_adamw_without_any_clipping():
  """The parity recipe: AdamW 0.01 sparing LayerNorm and biases, and no clipping at all
  (Model Garden's AdamWeightDecay would clip to 1.0 through gradient_clip_norm otherwise)."""
  params = exp_factory.get_exp_config('bert_mrpc_tiny')
  params = hyperparams.override_params_dict(
      params, os.path.join(TEMPLATES, 'hf_trainer.yaml'), is_strict=True)
  params.validate()
  task = task_factory.get_task(params.task)
  optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
  assert type(optimizer).__name__ == 'AdamWeightDecay'
  assert optimizer.gradient_clip_norm == 0.0 and optimizer.global_clipnorm is None
  assert optimizer.weight_decay_rate == 0.01 and optimizer.epsilon == 1e-8
  # A zero gradient leaves Adam's step at 0, so only the decay moves a variable.
  kernel = tf.Variable(tf.ones([2]), name='encoder/layer_0/kernel')
  gamma = tf.Variable(tf.ones([2]), name='encoder/layer_0/LayerNorm/gamma')
  bias = tf.Variable(tf.ones([2]), name='encoder/layer_0/bias')
  optimizer.iterations.assign(50)
  rate = float(optimizer.learning_rate(optimizer.iterations))
  optimizer.apply_gradients([(tf.zeros([2]), v) for v in (kernel, gamma, bias)])
  np.testing.assert_allclose(kernel.numpy(), [1 - rate * 0.01] * 2, rtol=1e-6)
  assert rate > 0 and gamma.numpy().tolist() == bias.numpy().tolist() == [1.0, 1.0]
