"""Preemption: `kill -9` a training run at random points and start the same command again.

What a kill may cost: checkpoints are saved every `checkpoint_interval` steps, in the
background (`--enable_async_checkpointing`, on by default as in `official.nlp.train`). A save
waits for the one before it to finish, so when a loop ending at step N has run, every save
up to one interval before the last one started is complete: a kill loses at most
2 x checkpoint_interval steps (1 x with --noenable_async_checkpointing). That holds however
slow or busy the machine is, and it is what is asserted here, not how fast saves are.
"""

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

STEPS, LOOP, CHECKPOINT_EVERY, KILLS = 120, 5, 15, 3
PROGRESS = re.compile(r'^progress \| step (\d+)/(\d+)')


def _command(model_dir):
  data = {'source': 'tsv', 'tsv_dir': FIXTURE_MRPC, 'seq_length': 32, 'global_batch_size': 8}
  override = {
      'task': {'train_data': data, 'validation_data': data},
      'trainer': {'train_steps': STEPS, 'validation_interval': STEPS // 2,
                  'checkpoint_interval': CHECKPOINT_EVERY, 'steps_per_loop': LOOP,
                  'summary_interval': LOOP, 'max_to_keep': 3,
                  'optimizer_config': {'learning_rate': {'polynomial': {'decay_steps': STEPS}},
                                       'warmup': {'linear': {'warmup_steps': 10}}}},
  }
  return [TFM, 'train_experiment', '--experiment=bert_mrpc_tiny', '--mode=train_and_eval',
          f'--model_dir={model_dir}', f'--params_override={json.dumps(override)}']


def _start(model_dir):
  # A killed process cannot delete its temporary files (AutoGraph's generated modules, ~17 a
  # process): they go to a folder of this test's, not to the machine's /tmp.
  scratch = os.path.join(os.path.dirname(model_dir), 'tmp')
  os.makedirs(scratch, exist_ok=True)
  return subprocess.Popen(_command(model_dir), cwd=REPO_ROOT, env=child_env(TMPDIR=scratch),
                          text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _steps_until(process, kill_after=None, lines=None, delay=0.0):
  """Progress steps printed; with kill_after, SIGKILL `delay` seconds after a step >=
  kill_after is printed."""
  steps = []
  for line in process.stdout:
    if lines is not None:
      lines.append(line)
    match = PROGRESS.match(line)
    if match:
      steps.append(int(match.group(1)))
      if kill_after is not None and steps[-1] >= kill_after:
        time.sleep(delay)  # Land anywhere: mid-step, mid-save, mid-eval.
        process.send_signal(signal.SIGKILL)
        break
  process.wait(timeout=600)
  return steps


def _saved_step(model_dir):
  """The step of the latest complete checkpoint; 0 before the first."""
  latest = tf.train.latest_checkpoint(model_dir)
  return int(latest.rsplit('-', 1)[1]) if latest else 0


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
  """3 kills: every checkpoint stays readable; each restart continues right after the last
  checkpoint (no step skipped, none lost beyond what the save schedule allows); the run ends
  at exactly step 120 with the dev scores of an uninterrupted run."""
  rng = random.Random(20261125)
  model_dir = str(tmp_path / 'killed')
  resumed_from = []
  kills = 0
  while kills < KILLS:
    start = _saved_step(model_dir)
    resumed_from.append(start)
    # Somewhere in the next third of what is left, so there is room for every kill.
    target = start + LOOP * (1 + rng.randrange(max(1, (STEPS - start) // (3 * LOOP))))
    steps = _steps_until(_start(model_dir), kill_after=target, delay=rng.uniform(0, 0.3))
    assert steps and steps[0] == start + LOOP, (start, steps)  # Continues, skips nothing.
    assert steps == list(range(start + LOOP, steps[-1] + 1, LOOP))
    assert steps[-1] < STEPS, 'the run finished before the kill landed'
    kills += 1
    _assert_every_checkpoint_readable(model_dir)
    saved = _saved_step(model_dir)
    # The module docstring's promise.
    assert steps[-1] - saved <= 2 * CHECKPOINT_EVERY, (steps[-1], saved)
  print('resumed from', resumed_from)

  final_start = _saved_step(model_dir)
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
  # The synthetic pairs are learnable: both runs get every one of the 20 dev pairs right, and
  # their dev losses (~0.08) differ only by the data order, which a restart begins anew.
  assert resumed['accuracy'][STEPS] == clean['accuracy'][STEPS] == 1.0
  assert resumed['validation_loss'][STEPS] == pytest.approx(
      clean['validation_loss'][STEPS], abs=0.03)
  assert clean['validation_loss'][STEPS] < 0.2
