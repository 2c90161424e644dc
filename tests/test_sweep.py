"""tfm sweep and tfm evaluate: grids, overrides, the results table, resuming, and refusals."""

import csv
import json
import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf
import yaml

from mrpc_task.tuning import sweep
from tests.conftest import read_mrpc, TFM, TINY_CLI_OVERRIDE, child_env, run_tfm, scalars, REPO_ROOT


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


def _sweep_args(output_dir, grid='task.model.dropout_rate=0.0,0.1', override=None):
  override = override or TINY_CLI_OVERRIDE
  return [TFM, 'sweep', '--experiment=bert_mrpc_tiny', f'--grid={grid}', '--seeds=1',
          '--first_seed=3', f'--output_dir={output_dir}',
          f'--params_override={json.dumps(override)}']


@pytest.mark.slow
def test_sweep_runs_every_point_writes_results_and_resumes(tmp_path):
  """Two points x one seed: each run trained without the selection split and scored on it
  and on dev; a second call runs nothing; other shared settings are refused."""
  output_dir = tmp_path / 'sweep'
  first = run_tfm(_sweep_args(output_dir))
  assert '2 point(s) x 1 seed(s) = 2 runs; 0 already done, 2 to run' in first.stdout
  for dropout in ('0.0', '0.1'):
    run_dir = output_dir / 'runs' / f'task.model.dropout_rate={dropout}' / 'seed_3'
    params = yaml.safe_load((run_dir / 'params.yaml').read_text())
    assert params['task']['seed'] == params['task']['train_data']['seed'] == 3
    assert params['task']['model']['dropout_rate'] == float(dropout)
    assert params['task']['train_data']['selection_split'] == 'exclude'
    assert params['task']['validation_data']['selection_split'] == 'only'
    scores = json.loads((run_dir / 'scores.json').read_text())
    assert scores['checkpoint'].endswith('ckpt-6')
    assert 'summary | final selection: accuracy' in (run_dir / 'train.log').read_text()
    # The trainer's last evaluation (on the selection split) is what evaluate scores again.
    logged = scalars(str(run_dir / 'validation'))
    assert scores['selection']['accuracy'] == pytest.approx(logged['accuracy'][6], abs=1e-6)
  with open(output_dir / 'results.csv') as f:
    rows = list(csv.DictReader(f))
  assert [(r['task.model.dropout_rate'], r['seeds']) for r in rows] == [('0.0', '1'),
                                                                          ('0.1', '1')]
  assert (output_dir / 'results.png').read_bytes()[:4] == b'\x89PNG'
  assert '| task.model.dropout_rate | seeds |' in (output_dir / 'results.md').read_text()
  again = run_tfm(_sweep_args(output_dir))
  assert '2 already done, 0 to run' in again.stdout
  _check_soup_of_the_two_runs(output_dir, tmp_path)
  other = dict(TINY_CLI_OVERRIDE, runtime={'mixed_precision_dtype': 'bfloat16'})
  refused = subprocess.run(_sweep_args(output_dir, override=other), capture_output=True,
                           text=True, env=child_env(), cwd=REPO_ROOT, timeout=300)
  assert refused.returncode == 1
  assert refused.stderr.strip().splitlines()[-1] == (
      f'tfm sweep: error: --output_dir={output_dir} holds a sweep with other params_override '
      f'({output_dir}/sweep.json); its runs cannot be mixed with these: use another '
      '--output_dir')


def _check_soup_of_the_two_runs(output_dir, tmp_path):
  """tfm soup of the two runs (same seed, so the same initial head): its checkpoint holds the
  mean of their final weights, and tfm evaluate scores it as tfm soup reported."""
  soup_dir = tmp_path / 'soup'
  result = run_tfm([TFM, 'soup', f'--runs={output_dir}/runs/*/seed_3', '--method=uniform',
                    f'--output_dir={soup_dir}'])
  record = json.loads((soup_dir / 'soup.json').read_text())
  assert len(record['kept']) == 2 and 'Soup of 2 of 2 runs (uniform)' in result.stdout
  name = 'model/layer_with_weights-1/out_proj/kernel/.ATTRIBUTES/VARIABLE_VALUE'  # The head.
  members = [tf.train.load_checkpoint(path).get_tensor(name) for path in record['kept']]
  souped = tf.train.load_checkpoint(str(soup_dir)).get_tensor(name)
  np.testing.assert_allclose(souped, np.mean(members, axis=0), rtol=1e-6)
  run_tfm([TFM, 'evaluate', f'--model_dir={soup_dir}', '--data=dev',
           f'--output={tmp_path / "soup_scores.json"}'])
  scores = json.loads((tmp_path / 'soup_scores.json').read_text())
  assert scores['dev']['accuracy'] == pytest.approx(record['scores']['dev']['accuracy'])


def test_sweep_with_a_misspelt_key_fails_before_running(tmp_path):
  """An unknown grid key fails through Model Garden's strict override, nothing written."""
  output_dir = tmp_path / 'sweep'
  result = subprocess.run(_sweep_args(output_dir, grid='task.layer_decy=0.8'),
                          capture_output=True, text=True, env=child_env(), cwd=REPO_ROOT,
                          timeout=300)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "tfm sweep: error: grid point task.layer_decy=0.8: params override: unknown key "
      "'layer_decy' (in TextTaskConfig); did you mean layer_decay?")
  assert not output_dir.exists()


def test_evaluate_scores_the_final_checkpoint_as_the_trainer_did(trained, tmp_path):
  """tfm evaluate --data=dev on the latest checkpoint equals the trainer's step-6 evaluation;
  its JSON is written and an existing one kept without --overwrite."""
  output = tmp_path / 'scores.json'
  result = run_tfm([TFM, 'evaluate', f'--model_dir={trained}', '--data=dev,train',
                    f'--output={output}'])
  scores = json.loads(output.read_text())
  logged = scalars(os.path.join(trained, 'validation'))
  for name in ('accuracy', 'f1', 'validation_loss'):
    assert scores['dev'][name] == pytest.approx(logged[name][6], abs=1e-5)
  assert scores['checkpoint'].endswith('ckpt-6')
  assert sum(v for k, v in scores['train'].items() if k.startswith('confusion/')) == 48
  assert result.stdout.startswith('dev: accuracy ')
  again = subprocess.run([TFM, 'evaluate', f'--model_dir={trained}', f'--output={output}'],
                         capture_output=True, text=True, env=child_env(), cwd=REPO_ROOT,
                         timeout=300)
  assert again.returncode == 1 and 'already exists' in again.stderr.splitlines()[-1]


@pytest.mark.slow
def test_sweep_of_rte_runs_and_refuses_swapping_its_sentences(tmp_path):
  """bert_rte_minilm (shrunk to a tiny encoder) sweeps on an RTE-layout folder; a grid that
  swaps sentence orders is refused before running, since RTE is not symmetric."""
  from mrpc_task import tsv_reader  # pylint: disable=g-import-not-at-top
  from tests.conftest import FIXTURE_MRPC  # pylint: disable=g-import-not-at-top
  rte = tmp_path / 'RTE'
  rte.mkdir()
  counts = {}
  for split in ('train', 'dev'):
    pairs = read_mrpc(f'{FIXTURE_MRPC}/{split}.tsv')
    rows = [f'{i}\t{a}\t{b}\t{"entailment" if y else "not_entailment"}'
            for i, (a, b, y) in enumerate(zip(pairs.sentence1, pairs.sentence2, pairs.labels))]
    (rte / f'{split}.tsv').write_text('index\tsentence1\tsentence2\tlabel\n' + '\n'.join(rows))
    counts[split] = [pairs.labels.count(label) for label in (0, 1)]
  override = sweep.merge(TINY_CLI_OVERRIDE, {'task': {
      'init_from_hf': '',
      'model': {'encoder': {'bert': {'hidden_size': 32, 'num_layers': 2,
                                     'num_attention_heads': 2, 'intermediate_size': 64}}},
      'train_data': {'tsv_dir': str(rte)}, 'validation_data': {'tsv_dir': str(rte)}}})
  args = [TFM, 'sweep', '--experiment=bert_rte_minilm', '--seeds=1',
          f'--params_override={json.dumps(override)}']
  refused = subprocess.run(args + ['--grid=task.train_data.pair_order=random',
                                   f'--output_dir={tmp_path / "refused"}'],
                           capture_output=True, text=True, env=child_env(), cwd=REPO_ROOT,
                           timeout=300)
  assert refused.returncode == 1
  assert ("task.train_data.pair_order='random': the task is not declared order-free "
          '(task.symmetric_pairs=false') in refused.stderr.splitlines()[-1]
  run_tfm(args + [f'--output_dir={tmp_path / "rte"}'])
  scores = json.loads((tmp_path / 'rte' / 'runs' / 'default' / 'seed_0' / 'scores.json')
                      .read_text())
  assert sum(v for k, v in scores['dev'].items() if k.startswith('confusion/')) == 20
  selection = sum(v for k, v in scores['selection'].items() if k.startswith('confusion/'))
  assert selection == sum(round(0.15 * n) for n in counts['train'])


def test_seed_keys_choose_what_a_seed_changes():
  """By default a seed sets the task's and the data order's seeds; soup ingredients vary the
  data order alone."""
  assert sweep.seed_override(4) == {'task': {'seed': 4, 'train_data': {'seed': 4}}}
  assert sweep.seed_override(4, ['task.train_data.seed']) == {'task': {'train_data': {'seed': 4}}}
