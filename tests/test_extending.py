"""docs/EXTENDING.md's example runs as written: its module registers a one-sentence task, a
score task and a 3-class task, each of which reads files in its own layout, trains a few
steps, evaluates with its own metrics, exports and predicts; `tfm --import` finds them."""

import importlib
import json
import os
import re
import sys

import numpy as np
import pytest
import tensorflow as tf

from mrpc_task import configs
from mrpc_task import predict
from tests import tiny_runs
from tests import cli_batch
from tests.conftest import REPO_ROOT, scalars

WORDS = 'the cat sat on a mat dog ran in park market stock rose fell'.split()


def _example_module() -> str:
  """The Python block under 'The example' in docs/EXTENDING.md."""
  with open(os.path.join(REPO_ROOT, 'docs', 'EXTENDING.md')) as f:
    text = f.read()
  section = text.split('## The example', 1)[1]
  return re.search(r'```python\n(.*?)```', section, re.S).group(1)


@pytest.fixture(scope='module')
def my_tasks(tmp_path_factory):
  """The example imported as `my_tasks`, and its data folders in their layouts."""
  folder = tmp_path_factory.mktemp('my_tasks')
  (folder / 'my_tasks.py').write_text(_example_module())
  sys.path.insert(0, str(folder))
  try:
    module = importlib.import_module('my_tasks')
  finally:
    sys.path.remove(str(folder))
  rng = np.random.RandomState(7)

  def sentence():
    return ' '.join(rng.choice(WORDS, size=rng.randint(3, 9)))

  headlines, sick = folder / 'headlines', folder / 'sick'
  for split, rows in (('train', 24), ('dev', 12)):
    headlines.mkdir(exist_ok=True)
    (headlines / f'{split}.tsv').write_text('headline\tverdict\n' + ''.join(
        f'{sentence()}\t{["news", "clickbait"][i % 2]}\n' for i in range(rows)))
    sick.mkdir(exist_ok=True)
    (sick / f'{split}.tsv').write_text(
        'pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n' + ''.join(
            f'{i}\t{sentence()}\t{sentence()}\t{rng.uniform(1, 5):.1f}\t'
            f'{["NEUTRAL", "ENTAILMENT", "CONTRADICTION"][i % 3]}\n' for i in range(rows)))
  return module, {'headlines': str(headlines), 'sick_relatedness': str(sick),
                  'sick_entailment': str(sick)}, str(folder)


@pytest.mark.parametrize('name, texts, kind, metrics, outputs', [
    ('headlines', 1, 'classes', ['accuracy', 'f1'], 2),
    ('sick_relatedness', 2, 'score', ['pearson', 'spearman'], 1),
    ('sick_entailment', 2, 'classes', ['accuracy'], 3),
])
def test_each_example_task_reads_its_files_trains_and_scores_with_its_metrics(
    my_tasks, name, texts, kind, metrics, outputs):
  """The registered experiment is the spec's (texts, label kind, metrics, outputs); its
  files read through the input pipeline with their own columns and labels; a training step
  moves the model; an evaluation of the dev file reports the task's metrics and glue_score."""
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  _, folders, _ = my_tasks
  params = tiny_runs.tiny_params(f'minilm_{name}', folders[name])
  task_config = params.task
  assert (task_config.name, task_config.num_texts, task_config.label_kind,
          list(task_config.metrics), task_config.model.num_classes) == (
              name, texts, kind, metrics, outputs)
  task = task_factory.get_task(task_config)
  model = task.build_model()
  features, labels = next(iter(task.build_inputs(task_config.train_data)))
  assert labels.dtype.name == ('float32' if kind == 'score' else 'int32')
  assert int(tf.reduce_max(features['input_type_ids'])) == texts - 1  # A second segment?
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  optimizer.learning_rate = 1e-2
  before = model.trainable_variables[0].numpy().copy()
  logs = task.train_step((features, labels), model, optimizer, metrics=task.build_metrics())
  assert np.isfinite(float(logs['loss']))
  assert not np.array_equal(model.trainable_variables[0].numpy(), before)
  scores = evaluation.evaluate(task, model, evaluation.named_data(task_config, 'dev'))
  assert set(configs.score_names(task_config)) <= set(scores)
  assert scores['glue_score'] == pytest.approx(np.mean([scores[m] for m in metrics]))


@pytest.mark.slow
def test_tfm_imports_the_example_module_and_serves_its_task(my_tasks, tmp_path):
  """`tfm train_experiment --import=my_tasks` (run from the module's folder) trains the
  one-sentence task, shrunk by YAML and an override as a user would; `tfm export` and `tfm
  predict` then serve it: the export takes `sentence`, and predict scores the labeled dev
  file with the task's metrics."""
  _, folders, module_dir = my_tasks
  override = {'runtime': {'mixed_precision_dtype': ''},
              'task': {'train_data': {'global_batch_size': 8, 'padding': 'static',
                                      'seq_length': 32},
                       'validation_data': {'global_batch_size': 8, 'padding': 'static',
                                           'seq_length': 32}},
              'trainer': {'train_steps': 3, 'validation_interval': 3, 'checkpoint_interval': 3,
                          'steps_per_loop': 3, 'summary_interval': 3,
                          'optimizer_config': {'learning_rate': {'polynomial': {
                              'decay_steps': 3}}, 'warmup': {'linear': {'warmup_steps': 0}}}}}
  model_dir, export_dir = tmp_path / 'model', tmp_path / 'export'
  env = {'HEADLINES_DATA_DIR': folders['headlines']}
  trained, exported, predicted = cli_batch.run([
      {'argv': ['train_experiment', '--import=my_tasks', '--experiment=minilm_headlines',
                '--mode=train_and_eval', f'--model_dir={model_dir}',
                f'--config_file={os.path.join(REPO_ROOT, "registry/templates/tiny.yaml")}',
                f'--params_override={json.dumps(override)}'], 'env': env, 'cwd': module_dir},
      {'argv': ['export', '--import=my_tasks', f'--model_dir={model_dir}',
                f'--export_dir={export_dir}', '--pick=final'], 'cwd': module_dir},
      {'argv': ['predict', f'--export_dir={export_dir}',
                f'--input={os.path.join(folders["headlines"], "dev.tsv")}']},
  ])
  for result in (trained, exported, predicted):
    assert result['code'] == 0, result['stderr'][-3000:]
  evals = scalars(str(model_dir / 'validation'))
  assert set(evals['accuracy']) == {3}
  assert sum(evals[f'confusion/true{t}_pred{p}'][3] for t in (0, 1) for p in (0, 1)) == 12
  assert 'summary | final dev: accuracy' in trained['stdout']
  assert '--import=my_tasks --experiment=minilm_headlines' in trained['stdout']
  _, info = predict.load_export(str(export_dir))
  assert info.inputs == ['sentence'] and info.name == 'headlines'
  assert predicted['stdout'].splitlines()[0] == 'line\tclass\tprobability_clickbait'
  assert '12 labeled examples: accuracy' in predicted['stderr']
