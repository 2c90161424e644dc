"""Preemption: `kill -9` a training run at random points and start the same command again."""

import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
import tensorflow as tf

from tests.conftest import FIXTURE_MRPC, TFM, REPO_ROOT, child_env, scalars

STEPS, LOOP, CHECKPOINT_EVERY = 300, 5, 15
PROGRESS = re.compile(r'^progress \| step (\d+)/(\d+)')


def _command(model_dir):
  data = {'source': 'tsv', 'tsv_dir': FIXTURE_MRPC, 'seq_length': 32, 'global_batch_size': 8}
  override = {
      'task': {'train_data': data, 'validation_data': data},
      'trainer': {'train_steps': STEPS, 'validation_interval': 150,
                  'checkpoint_interval': CHECKPOINT_EVERY, 'steps_per_loop': LOOP,
                  'summary_interval': LOOP, 'max_to_keep': 3,
                  'optimizer_config': {'learning_rate': {'polynomial': {'decay_steps': STEPS}},
                                       'warmup': {'linear': {'warmup_steps': 30}}}},
  }
  return [TFM, 'train_experiment', '--experiment=bert_mrpc_tiny', '--mode=train_and_eval',
          f'--model_dir={model_dir}', f'--params_override={json.dumps(override)}']


def _start(model_dir):
  return subprocess.Popen(_command(model_dir), cwd=REPO_ROOT, env=child_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _steps_until(process, kill_after=None, lines=None):
  """Progress steps printed; with kill_after, SIGKILL once a step >= kill_after is printed."""
  steps = []
  for line in process.stdout:
    if lines is not None:
      lines.append(line)
    match = PROGRESS.match(line)
    if match:
      steps.append(int(match.group(1)))
      if kill_after is not None and steps[-1] >= kill_after:
        time.sleep(random.uniform(0, 0.3))  # Land anywhere: mid-step, mid-save, mid-eval.
        process.send_signal(signal.SIGKILL)
        break
  process.wait(timeout=600)
  return steps


def _assert_every_checkpoint_readable(model_dir):
  """Each ckpt-N.index on disk loads, and holds the global step N."""
  prefixes = [os.path.join(model_dir, name[:-len('.index')])
              for name in os.listdir(model_dir) if re.fullmatch(r'ckpt-\d+\.index', name)]
  for prefix in prefixes:
    reader = tf.train.load_checkpoint(prefix)
    step_keys = [k for k in reader.get_variable_to_shape_map() if k.startswith('global_step')]
    assert step_keys, prefix
    assert int(reader.get_tensor(step_keys[0])) == int(prefix.rsplit('-', 1)[1]), prefix
  return prefixes


@pytest.mark.slow
def test_kill_nine_at_random_points_then_resume(tmp_path):
  """5 kills: every checkpoint stays readable; each restart continues right after the last
  checkpoint (no step skipped, none repeated beyond one checkpoint interval); the run ends at
  exactly step 300 with the dev scores of an uninterrupted run (within noise)."""
  rng = random.Random(20261125)
  model_dir = str(tmp_path / 'killed')
  resumed_from = []
  kills = 0
  while kills < 5:
    latest = tf.train.latest_checkpoint(model_dir)
    start = int(latest.rsplit('-', 1)[1]) if latest else 0
    resumed_from.append(start)
    # Somewhere in the next quarter of what is left, so there is room for five kills.
    target = start + LOOP * (1 + rng.randrange(max(1, (STEPS - start) // (4 * LOOP))))
    steps = _steps_until(_start(model_dir), kill_after=target)
    assert steps and steps[0] == start + LOOP, (start, steps)  # Continues, skips nothing.
    assert steps == list(range(start + LOOP, steps[-1] + 1, LOOP))
    assert steps[-1] < STEPS, 'the run finished before the kill landed'
    kills += 1
    _assert_every_checkpoint_readable(model_dir)
    saved = int(tf.train.latest_checkpoint(model_dir).rsplit('-', 1)[1])
    # At most one checkpoint interval (and the loop in flight) is lost to the kill.
    assert steps[-1] - saved <= CHECKPOINT_EVERY + LOOP, (steps[-1], saved)
  print('resumed from', resumed_from)

  final_start = int(tf.train.latest_checkpoint(model_dir).rsplit('-', 1)[1])
  lines = []
  steps = _steps_until(_start(model_dir), lines=lines)
  assert steps[0] == final_start + LOOP and steps[-1] == STEPS
  assert any(f'(this process from step {final_start})' in line for line in lines)
  assert tf.train.latest_checkpoint(model_dir).endswith(f'ckpt-{STEPS}')
  _assert_every_checkpoint_readable(model_dir)

  # The best checkpoint by dev F1 survived the restarts and is the best evaluation's.
  with open(os.path.join(model_dir, 'best_ckpt', 'info.json')) as f:
    best = json.load(f)
  evals = scalars(os.path.join(model_dir, 'validation'))
  assert best['f1'] == pytest.approx(max(evals['f1'].values()), abs=1e-6)
  assert tf.train.latest_checkpoint(os.path.join(model_dir, 'best_ckpt'))

  clean_dir = str(tmp_path / 'uninterrupted')
  assert _steps_until(_start(clean_dir))[-1] == STEPS
  resumed, clean = scalars(os.path.join(model_dir, 'validation')), scalars(
      os.path.join(clean_dir, 'validation'))
  assert STEPS in resumed['accuracy']
  # 20 dev pairs: one pair is 0.05. Data order after a restart differs, so allow 3 pairs.
  assert abs(resumed['accuracy'][STEPS] - clean['accuracy'][STEPS]) <= 0.15
  assert abs(resumed['validation_loss'][STEPS] - clean['validation_loss'][STEPS]) <= 0.1
