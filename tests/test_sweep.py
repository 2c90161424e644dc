"""tfm sweep and tfm evaluate: grids, overrides, the results table, resuming, and refusals."""

import collections
import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import yaml

from mrpc_task.tuning import sweep
from tests import cli_batch
from tests.conftest import TINY_CLI_OVERRIDE, scalars


def test_grid_values_are_typed_and_points_cover_every_combination():
  """Numbers, booleans and null are parsed; the first key varies slowest."""
  axes = sweep.parse_grid('task.layer_decay=0.8, 1;trainer.optimizer_config.optimizer.adam.'
                          'global_clipnorm=null,1e-1 ; task.model.pooling=mean')
  assert axes[0] == ('task.layer_decay', [0.8, 1])
  assert axes[1][1] == [None, 0.1]
  assert sweep.parse_value('true') is True and sweep.parse_value('2e-4') == 2e-4
  assert [dict(p)['task.layer_decay'] for p in sweep.points(axes)] == [0.8, 0.8, 1, 1]
  assert sweep.points([]) == [()] and sweep.point_name(()) == 'default'


@pytest.mark.parametrize('grid, message', [
    ('task.layer_decay', 'is not KEY=V1,V2'),
    ('task.layer_decay=0.8,', 'has an empty value'),
    ('a=1;a=2', 'a is given twice'),
    ('=1', 'is not KEY=V1,V2'),
])
def test_malformed_grids_name_the_part(grid, message):
  """A malformed --grid fails with the part at fault."""
  with pytest.raises(sweep.GridError, match=message):
    sweep.parse_grid(grid)


def test_point_names_are_folder_safe_and_bounded():
  """Slashes and spaces become '_'; a very long point is cut and given a digest."""
  assert sweep.point_name((('task.x', 'a/b c'), ('y', 2))) == 'task.x=a_b_c__y=2'
  long = sweep.point_name(tuple((f'task.key{i}', 'v' * 20) for i in range(10)))
  assert len(long) == 120 and long != sweep.point_name((('task.key0', 'v' * 20),))


def test_train_steps_alone_carries_the_schedule_with_it():
  """Setting train_steps alone moves decay_steps, keeps the warm-up share, shrinks intervals."""
  trainer = {'train_steps': 300, 'validation_interval': 100, 'checkpoint_interval': 100,
             'steps_per_loop': 50, 'summary_interval': 50,
             'optimizer_config': {'learning_rate': {'type': 'polynomial'},
                                  'warmup': {'type': 'linear', 'linear': {'warmup_steps': 30}}}}
  follow = sweep.follow_train_steps({'trainer': {'train_steps': 60}}, trainer)
  assert follow['trainer']['optimizer_config'] == {
      'learning_rate': {'polynomial': {'decay_steps': 60}},
      'warmup': {'linear': {'warmup_steps': 6}}}
  assert {k: follow['trainer'].get(k) for k in ('validation_interval', 'steps_per_loop')} == {
      'validation_interval': 60, 'steps_per_loop': None}  # 50 still fits.
  explicit = {'trainer': {'train_steps': 60, 'optimizer_config': {
      'warmup': {'linear': {'warmup_steps': 0}}}}}
  kept = sweep.follow_train_steps(explicit, trainer)
  assert kept['trainer']['optimizer_config']['warmup']['linear']['warmup_steps'] == 0
  assert sweep.follow_train_steps({'task': {'seed': 1}}, trainer) == {'task': {'seed': 1}}


def test_params_override_takes_every_form_tfm_train_takes():
  """YAML, JSON and Model Garden's dotted KEY=VALUE form give the same nested override."""
  nested = {'trainer': {'train_steps': 684}, 'task': {'train_data': {'pair_order': 'both'}}}
  assert sweep.parse_override('trainer.train_steps=684,task.train_data.pair_order=both') == nested
  assert sweep.parse_override(json.dumps(nested)) == nested
  assert sweep.parse_override('{trainer: {train_steps: 684}, task: {train_data: '
                              '{pair_order: both}}}') == nested
  assert sweep.parse_override('') == {}
  assert sweep.parse_override('{a: 1e-8}') == {'a': 1e-8}  # Model Garden's float rule.
  with pytest.raises(sweep.OverrideError, match=r"^params override '684': must be a mapping"):
    sweep.parse_override('684')
  with pytest.raises(sweep.OverrideError, match=r"^params override '\{a: \[1,': not YAML"):
    sweep.parse_override('{a: [1,')


def test_summary_rows_hold_exact_means_and_sample_stds():
  """Mean and sample std over seeds per score; a point without runs has NaN and no cell."""
  point_a, point_b = (('k', 1),), (('k', 2),)
  metrics, data = ['accuracy', 'f1'], ['selection', 'dev']

  def scores(selection_accuracy, selection_f1):
    return {'checkpoint': 'ckpt-6', 'members': [],
            'selection': {'accuracy': selection_accuracy, 'f1': selection_f1,
                          'glue_score': (selection_accuracy + selection_f1) / 2,
                          'confusion/true0_pred0': 3.0},
            'dev': {'accuracy': 0.7, 'f1': 0.8, 'glue_score': 0.75}}

  results = [sweep.RunResult(point_a, 0, sweep.run_scores(scores(0.80, 0.90), metrics)),
             sweep.RunResult(point_a, 1, sweep.run_scores(scores(0.84, 0.86), metrics))]
  assert results[0].scores['selection'] == pytest.approx(
      {'accuracy': 80.0, 'f1': 90.0, 'glue_score': 85.0})
  rows = sweep.summarize(results, [point_a, point_b], metrics, data)
  assert rows[0]['seeds'] == 2 and rows[0]['k'] == 1
  assert rows[0]['selection_accuracy'] == pytest.approx(82.0)
  assert rows[0]['selection_accuracy_std'] == pytest.approx(2 ** 0.5 * 2)
  assert rows[0]['selection_glue_score'] == pytest.approx(85.0)
  assert rows[0]['selection_glue_score_std'] == pytest.approx(0.0)
  assert rows[0]['dev_f1'] == pytest.approx(80.0)
  table = sweep.markdown_table(rows, ['k'], metrics, data).splitlines()
  assert table[0] == ('| k | seeds | selection accuracy | selection f1 | selection glue_score | '
                      'dev accuracy | dev f1 | dev glue_score |')
  assert table[2].startswith('| 1 | 2 | 82.00 ± 2.83 | 88.00 ± 2.83 | 85.00 ± 0.00 |')
  assert table[3] == '| 2 | 0 |' + '  |' * 6


def _train_here(plan):
  """A sweep's training, run in this process through the library tfm's driver calls."""
  from mrpc_task import training  # pylint: disable=g-import-not-at-top

  def train(run_dir, override, log_path):
    del log_path
    training.train_experiment(plan.experiment, run_dir, 'train_and_eval',
                              config_files=plan.config_files,
                              params_override=json.dumps(override),
                              enable_async_checkpointing=False)
  return train


def _score_here(run_dir, data, scores_path, log_path):
  """A sweep's scoring, as `tfm evaluate --output` writes it."""
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  del log_path
  with open(scores_path, 'w') as f:
    json.dump(evaluation.evaluate_run(run_dir, data), f)


def _tiny_plan(output_dir):
  from registry import experiments  # pylint: disable=g-import-not-at-top
  return sweep.plan('bert_mrpc_tiny', grid='task.model.dropout_rate=0.0,0.1', seeds=[3],
                    output_dir=output_dir, params_override=json.dumps(TINY_CLI_OVERRIDE),
                    selection_template=experiments.template_path('selection'))


def test_a_sweep_is_not_resumed_in_another_compute_type(tmp_path):
  """The type the experiment resolves to is recorded (bert_*_minilm's follows the CPU): a
  folder recorded with another is refused, naming it; one recorded before the key was kept
  is taken as this machine's."""
  plan = _tiny_plan(str(tmp_path / 'sweep'))
  assert plan.shared['mixed_precision_dtype'] == 'float32'
  sweep.claim_folder(plan)
  recorded_path = tmp_path / 'sweep' / sweep.SWEEP_FILE
  recorded = json.loads(recorded_path.read_text())
  recorded_path.write_text(json.dumps(dict(recorded, mixed_precision_dtype='bfloat16')))
  with pytest.raises(sweep.SweepError, match=r'holds a sweep with other mixed_precision_dtype'):
    sweep.claim_folder(plan)
  del recorded['mixed_precision_dtype']
  recorded_path.write_text(json.dumps(recorded))
  sweep.claim_folder(plan)
  assert json.loads(recorded_path.read_text()) == plan.shared


@pytest.mark.slow
def test_sweep_runs_every_point_writes_results_resumes_and_soups(tmp_path):
  """Two points x one seed (mrpc_task.tuning.sweep, trained in this process): each run trained
  without the selection split and scored on it and on dev; the results table holds both; a
  second plan finds nothing to run; a soup of the two (same seed, so the same initial head)
  holds the mean of their weights and scores as tfm evaluate scores it."""
  from mrpc_task.tuning import soup  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  output_dir = str(tmp_path / 'sweep')
  plan = _tiny_plan(output_dir)
  assert plan.data == ['selection', 'dev'] and plan.metrics == ['accuracy', 'f1']
  sweep.claim_folder(plan)
  lines = []
  sweep.run(plan, train=_train_here(plan), score=_score_here, report=lines.append)
  assert '2 point(s) x 1 seed(s) = 2 runs; 0 already done, 2 to run' in lines[0]
  for dropout in ('0.0', '0.1'):
    run_dir = os.path.join(output_dir, 'runs', f'task.model.dropout_rate={dropout}', 'seed_3')
    with open(os.path.join(run_dir, 'params.yaml')) as f:
      params = yaml.safe_load(f)
    assert params['task']['seed'] == params['task']['train_data']['seed'] == 3
    assert params['task']['model']['dropout_rate'] == float(dropout)
    assert params['task']['train_data']['selection_split'] == 'exclude'
    assert params['task']['validation_data']['selection_split'] == 'only'
    with open(os.path.join(run_dir, 'scores.json')) as f:
      scores = json.load(f)
    assert scores['checkpoint'].endswith('ckpt-6')
    # The trainer's last evaluation (on the selection split) is what evaluate scores again.
    logged = scalars(os.path.join(run_dir, 'validation'))
    assert scores['selection']['accuracy'] == pytest.approx(logged['accuracy'][6], abs=1e-6)
  with open(os.path.join(output_dir, 'results.csv')) as f:
    rows = list(csv.DictReader(f))
  assert [(r['task.model.dropout_rate'], r['seeds']) for r in rows] == [('0.0', '1'),
                                                                          ('0.1', '1')]
  with open(os.path.join(output_dir, 'results.png'), 'rb') as f:
    assert f.read(4) == b'\x89PNG'
  with open(os.path.join(output_dir, 'results.md')) as f:
    assert '| task.model.dropout_rate | seeds |' in f.read()
  assert _tiny_plan(output_dir).pending() == []
  soup_dir = str(tmp_path / 'soup')
  record = soup.soup_runs([f'{output_dir}/runs/*/seed_3'], soup_dir, data=['dev'])
  assert len(record['kept']) == 2
  name = 'model/layer_with_weights-1/out_proj/kernel/.ATTRIBUTES/VARIABLE_VALUE'  # The head.
  members = [tf.train.load_checkpoint(path).get_tensor(name) for path in record['kept']]
  souped = tf.train.load_checkpoint(soup_dir).get_tensor(name)
  np.testing.assert_allclose(souped, np.mean(members, axis=0), rtol=1e-6)
  scores = evaluation.evaluate_run(soup_dir, ['dev'])
  assert scores['dev']['accuracy'] == pytest.approx(record['scores']['dev']['accuracy'])


@pytest.mark.slow
def test_tfm_sweep_runs_one_point_resumes_and_refuses_what_does_not_fit(tmp_path):
  """The real command line (one process for the tfm commands, one per training and scoring
  the sweep starts): a one-run sweep trains and scores, its run recording the sweep's
  --import; run again it runs nothing; another override into the same folder, and a
  misspelt grid key, are refused with one line."""
  output_dir = tmp_path / 'sweep'

  def args(grid='task.model.dropout_rate=0.0', override=None, out=output_dir):
    return {'argv': ['sweep', '--import=registry', '--experiment=bert_mrpc_tiny',
                     f'--grid={grid}', '--seeds=1', f'--output_dir={out}',
                     f'--params_override={json.dumps(override or TINY_CLI_OVERRIDE)}']}

  other = dict(TINY_CLI_OVERRIDE, runtime={'mixed_precision_dtype': 'bfloat16'})
  first, again, refused, misspelt = cli_batch.run([
      args(), args(), args(override=other),
      args(grid='task.layer_decy=0.8', out=tmp_path / 'other')])
  assert first['code'] == 0, first['stderr'][-3000:]
  assert '1 point(s) x 1 seed(s) = 1 runs; 0 already done, 1 to run' in first['stdout']
  run_dir = output_dir / 'runs' / 'task.model.dropout_rate=0.0' / 'seed_0'
  assert 'summary | final selection: accuracy' in (run_dir / 'train.log').read_text()
  assert json.loads((run_dir / 'scores.json').read_text())['checkpoint'].endswith('ckpt-6')
  assert json.loads((run_dir / 'tfm_run.json').read_text()) == {
      'experiment': 'bert_mrpc_tiny', 'imports': ['registry']}
  assert '1 already done, 0 to run' in again['stdout']
  assert refused['code'] == 1 and refused['stderr'].strip().splitlines()[-1] == (
      f'tfm sweep: error: --output_dir={output_dir} holds a sweep with other params_override '
      f'({output_dir}/sweep.json); its runs cannot be mixed with these: use another '
      '--output_dir')
  assert misspelt['code'] == 1 and misspelt['stderr'].strip().splitlines()[-1] == (
      "tfm sweep: error: grid point task.layer_decy=0.8: params override: unknown key "
      "'layer_decy' (in TextTaskConfig); did you mean layer_decay?")
  assert not (tmp_path / 'other').exists()


def test_evaluate_scores_the_final_checkpoint_as_the_trainer_did(trained, tmp_path):
  """tfm evaluate --data=dev on the latest checkpoint equals the trainer's step-6 evaluation;
  its JSON is written and an existing one kept without --overwrite."""
  output = tmp_path / 'scores.json'
  result, again = cli_batch.run([
      {'argv': ['evaluate', f'--model_dir={trained}', '--data=dev,train',
                f'--output={output}']},
      {'argv': ['evaluate', f'--model_dir={trained}', f'--output={output}']}])
  assert result['code'] == 0, result['stderr'][-3000:]
  scores = json.loads(output.read_text())
  logged = scalars(os.path.join(trained, 'validation'))
  for name in ('accuracy', 'f1', 'validation_loss'):
    assert scores['dev'][name] == pytest.approx(logged[name][6], abs=1e-5)
  assert scores['checkpoint'].endswith('ckpt-6')
  assert sum(v for k, v in scores['train'].items() if k.startswith('confusion/')) == 48
  assert result['stdout'].startswith('dev: accuracy ')
  assert again['code'] == 1 and 'already exists' in again['stderr'].splitlines()[-1]


def test_a_sweep_of_rte_refuses_swapping_its_sentences_and_reads_its_layout(tmp_path):
  """bert_rte_minilm on RTE's layout: a grid that swaps sentence orders is refused before
  anything runs (RTE is not symmetric); its selection split holds 15% of each class of the
  training file, read with RTE's columns and labels."""
  from mrpc_task import data  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  from registry import experiments  # pylint: disable=g-import-not-at-top
  from tests.conftest import FIXTURE_GLUE  # pylint: disable=g-import-not-at-top
  rte = os.path.join(FIXTURE_GLUE(), 'RTE')
  override = json.dumps({'task': {'train_data': {'tsv_dir': rte, 'source': 'tsv'},
                                  'validation_data': {'tsv_dir': rte, 'source': 'tsv'}}})
  with pytest.raises(sweep.SweepError, match="task.train_data.pair_order='random': the task is "
                     r'not declared order-free \(task.symmetric_pairs=false'):
    sweep.plan('bert_rte_minilm', grid='task.train_data.pair_order=random', seeds=[0],
               output_dir=str(tmp_path / 'refused'), params_override=override,
               selection_template=experiments.template_path('selection'))
  assert not (tmp_path / 'refused').exists()
  plan = sweep.plan('bert_rte_minilm', grid='', seeds=[0], output_dir=str(tmp_path / 'rte'),
                    params_override=override,
                    selection_template=experiments.template_path('selection'))
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  task = experiment_config.parse_experiment('bert_rte_minilm', config_files=plan.config_files,
                                            params_override=override).task
  counts = collections.Counter(
      label for _, labels in data.build_dataset(evaluation.named_data(task, 'train'))
      for label in labels.numpy().tolist())
  chosen = collections.Counter(
      label for _, labels in data.build_dataset(evaluation.named_data(task, 'selection'))
      for label in labels.numpy().tolist())
  assert chosen == {label: round(0.15 * n) for label, n in counts.items()}


def test_seed_keys_choose_what_a_seed_changes():
  """By default a seed sets the task's and the data order's seeds; soup ingredients vary the
  data order alone."""
  assert sweep.seed_override(4) == {'task': {'seed': 4, 'train_data': {'seed': 4}}}
  assert sweep.seed_override(4, ['task.train_data.seed']) == {'task': {'train_data': {'seed': 4}}}
