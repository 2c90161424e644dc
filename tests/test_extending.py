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

from mrpc_task import configs
from mrpc_task import predict
from tests import tiny_runs
from tests.conftest import REPO_ROOT, TFM, run_tfm, scalars

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


@pytest.mark.parametrize('name, texts, kind, metrics', [
    ('headlines', 1, 'classes', ['accuracy', 'f1']),
    ('sick_relatedness', 2, 'score', ['pearson', 'spearman']),
    ('sick_entailment', 2, 'classes', ['accuracy']),
])
def test_each_example_task_trains_evaluates_exports_and_predicts(my_tasks, name, texts, kind,
                                                                 metrics, tmp_path):
  """The registered experiment is the spec's: its texts, label kind and metrics; a few steps
  on its files report those metrics; the export takes its inputs and predict scores its
  labeled dev file with them."""
  _, folders, _ = my_tasks
  params = tiny_runs.tiny_params(f'minilm_{name}', folders[name])
  task = params.task
  assert (task.name, task.num_texts, task.label_kind, list(task.metrics)) == (
      name, texts, kind, metrics)
  assert task.model.num_classes == {'headlines': 2, 'sick_relatedness': 1,
                                    'sick_entailment': 3}[name]
  scores = tiny_runs.train(params, str(tmp_path / 'model'))
  assert set(configs.score_names(task)) <= set(scores)
  tiny_runs.export(params, str(tmp_path / 'model'), str(tmp_path / 'export'))
  _, info = predict.load_export(str(tmp_path / 'export'))
  assert info.inputs == (['sentence'] if texts == 1 else ['sentence1', 'sentence2'])
  stats, _ = predict.predict_file(str(tmp_path / 'export'),
                                  os.path.join(folders[name], 'dev.tsv'),
                                  str(tmp_path / 'predictions.tsv'))
  assert stats.labeled == 12 and set(metrics) <= set(stats.scores())
  header = (tmp_path / 'predictions.tsv').read_text().splitlines()[0].split('\t')
  assert header == {'headlines': ['line', 'class', 'probability_clickbait'],
                    'sick_relatedness': ['line', 'score'],
                    'sick_entailment': ['line', 'class', 'probability_neutral',
                                        'probability_entailment',
                                        'probability_contradiction']}[name]


@pytest.mark.slow
def test_tfm_imports_the_example_module(my_tasks, tmp_path):
  """`tfm train_experiment --import=my_tasks` (run from the module's folder) trains the
  one-sentence task, shrunk by YAML and an override as a user would."""
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
  os.environ['HEADLINES_DATA_DIR'] = folders['headlines']
  try:
    result = run_tfm([TFM, 'train_experiment', '--import=my_tasks',
                      '--experiment=minilm_headlines', '--mode=train_and_eval',
                      f'--model_dir={tmp_path / "model"}',
                      f'--config_file={os.path.join(REPO_ROOT, "registry/templates/tiny.yaml")}',
                      f'--params_override={json.dumps(override)}'], cwd=module_dir)
  finally:
    del os.environ['HEADLINES_DATA_DIR']
  evals = scalars(str(tmp_path / 'model' / 'validation'))
  assert set(evals['accuracy']) == {3}
  assert sum(evals[f'confusion/true{t}_pred{p}'][3] for t in (0, 1) for p in (0, 1)) == 12
  assert 'summary | final dev: accuracy' in result.stdout
  assert '--import=my_tasks --experiment=minilm_headlines' in result.stdout
