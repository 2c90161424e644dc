"""Several devices and several workers give the single-device results.

MirroredStrategy over 2 logical CPUs, in a child process (tests/two_cpus.py); and (marked
slow, CI runs it) MultiWorkerMirroredStrategy with 2 `tfm` workers on 127.0.0.1.
"""

import contextlib
import json
import os
import socket
import subprocess
import time

import numpy as np
import pytest
import tensorflow as tf
from official.core import base_trainer
from official.core import task_factory

from mrpc_task import training

from tests import two_cpus
from tests.conftest import FIXTURE_MRPC, TFM, REPO_ROOT, child_env, scalars, tiny_experiment


def _deterministic_experiment():
  """Tiny experiment with no dropout and no shuffling: any split of a batch is the same math."""
  params = tiny_experiment(warmup_fraction=0.0, learning_rate=5e-3)
  params.task.model.dropout_rate = 0.0
  params.task.train_data.shuffle_buffer_size = 1
  params.trainer.steps_per_loop = 1
  return params


def _trainer(strategy, params, weights=None):
  with strategy.scope():
    task = task_factory.get_task(params.task)
    model = task.build_model()
    model(next(iter(task.build_inputs(params.task.validation_data)))[0])
    if weights is not None:
      model.set_weights(weights)
    optimizer = task.create_optimizer(params.trainer.optimizer_config, params.runtime)
    return base_trainer.Trainer(params, task, model=model, optimizer=optimizer)


def _losses(trainer, steps):
  return [float(trainer.train(tf.constant(1))['training_loss']) for _ in range(steps)]


def _mirrored_training_case():
  params = _deterministic_experiment()
  single = _trainer(tf.distribute.get_strategy(), params)
  start = single.model.get_weights()
  mirrored = _trainer(two_cpus.mirrored_strategy(), params, weights=start)
  assert mirrored.strategy.num_replicas_in_sync == 2
  single_losses, mirrored_losses = _losses(single, 12), _losses(mirrored, 12)
  np.testing.assert_allclose(mirrored_losses, single_losses, rtol=1e-5)
  assert single_losses[-1] < single_losses[0] - 0.01  # It did learn.
  for a, b in zip(single.model.get_weights(), mirrored.model.get_weights()):
    np.testing.assert_allclose(a, b, atol=2e-5)


@pytest.mark.slow
def test_mirrored_two_devices_follow_the_single_device_loss_trajectory():
  """Global batch 8 on 1 device or as 2 x 4 on 2 replicas: the same losses, step by step."""
  two_cpus.run(_mirrored_training_case, reruns_after_crash=2)


def _mirrored_evaluation_case():
  params = _deterministic_experiment()
  single = _trainer(tf.distribute.get_strategy(), params)
  mirrored = _trainer(two_cpus.mirrored_strategy(), params,
                      weights=single.model.get_weights())
  want = {k: float(v) for k, v in single.evaluate(tf.constant(-1)).items()}
  got = {k: float(v) for k, v in mirrored.evaluate(tf.constant(-1)).items()}
  assert sum(v for k, v in got.items() if k.startswith('confusion/')) == 20
  for key in ('accuracy', 'f1', 'confusion/true0_pred0', 'confusion/true1_pred1'):
    assert got[key] == pytest.approx(want[key], abs=1e-6), key
  assert got['validation_loss'] == pytest.approx(want['validation_loss'], rel=1e-5)


@pytest.mark.slow
def test_mirrored_evaluation_scores_the_whole_set():
  """20 dev rows in batches of 8 (last one 4, split 2+2): the same scores as one device."""
  two_cpus.run(_mirrored_evaluation_case)


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def _override(strategy):
  data = {'source': 'tsv', 'tsv_dir': FIXTURE_MRPC, 'seq_length': 32, 'global_batch_size': 8}
  return json.dumps({
      'runtime': {'distribution_strategy': strategy},
      'task': {'train_data': {**data, 'shuffle_buffer_size': 1},
               'validation_data': data,
               'model': {'dropout_rate': 0.0,
                         'encoder': {'bert': {'dropout_rate': 0.0,
                                              'attention_dropout_rate': 0.0}}}},
      'trainer': {'train_steps': 12, 'validation_interval': 6, 'checkpoint_interval': 6,
                  'steps_per_loop': 1, 'summary_interval': 1,
                  'optimizer_config': {'learning_rate': {'polynomial': {'decay_steps': 12}},
                                       'warmup': {'linear': {'warmup_steps': 1}}}},
  })


# As the 2-CPU mirrored child (README, "mirrored training"): a worker killed by a signal inside
# TensorFlow's runtime may be run again, at most twice, each rerun printed at the end.
_RERUNS_AFTER_CRASH = 2
_WORKERS_TIMEOUT_S = 600


def _run_two_workers(model_dir, log_dir):
  """Runs 2 `multi_worker_mirrored` workers on loopback to the end, or until one fails: its
  peer would wait for it until the timeout, so it is stopped. Each worker's TMPDIR is
  `log_dir / f'tmp{index}'`. Returns (the first failure as (exit code, worker index, stderr),
  or None; [(exit code, stdout, stderr)] per worker)."""
  cluster = {'worker': [f'127.0.0.1:{port}' for port in _free_ports(2)]}
  os.makedirs(log_dir)
  workers, logs = [], []
  for index in range(2):
    tf_config = json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})
    out, err = (open(log_dir / f'worker{index}.{name}', 'w+') for name in ('out', 'err'))
    logs.append((out, err))
    os.makedirs(log_dir / f'tmp{index}')
    workers.append(subprocess.Popen(
        _train_command(model_dir, 'multi_worker_mirrored'), cwd=REPO_ROOT,
        env=child_env(TF_CONFIG=tf_config, PYTHONFAULTHANDLER='1',
                      TMPDIR=str(log_dir / f'tmp{index}')),
        stdout=out, stderr=err, text=True))
  deadline = time.monotonic() + _WORKERS_TIMEOUT_S
  first, timed_out = None, False
  while True:
    codes = [worker.poll() for worker in workers]  # Every worker's, each time.
    if None not in codes:
      break
    failed = [index for index, code in enumerate(codes) if code]
    timed_out = time.monotonic() > deadline
    if failed or timed_out:
      if failed:
        first = (codes[failed[0]], failed[0])
      for worker in workers:
        if worker.poll() is None:
          worker.kill()
          worker.wait()
      break
    time.sleep(0.2)
  outputs = []
  for worker, files in zip(workers, logs):
    texts = []
    for f in files:
      f.seek(0)
      texts.append(f.read())
      f.close()
    outputs.append((worker.returncode, *texts))
  assert not timed_out, f'2 workers still running after {_WORKERS_TIMEOUT_S} s: ' + '\n'.join(
      err[-1500:] for _, _, err in outputs)
  if first is None:
    failed = [index for index, (code, _, _) in enumerate(outputs) if code]
    first = (outputs[failed[0]][0], failed[0]) if failed else None
  if first is not None:
    first = (*first, outputs[first[1]][2])
  return first, outputs


def _train_command(model_dir, strategy):
  return [TFM, 'train_experiment', '--experiment=bert_mrpc_tiny', '--mode=train_and_eval',
          f'--model_dir={model_dir}', f'--params_override={_override(strategy)}']


@pytest.mark.slow
def test_two_workers_on_loopback_match_one_worker(tmp_path):
  """2 MultiWorkerMirrored workers: both train on their own shard; only the chief writes;
  the other worker's temporary checkpoints are deleted at its end; the chief's per-step
  losses and final scores equal a single worker's."""
  for attempt in range(1, _RERUNS_AFTER_CRASH + 2):
    model_dir = tmp_path / f'two_workers_{attempt}'
    log_dir = tmp_path / f'logs_{attempt}'
    first, outputs = _run_two_workers(model_dir, log_dir)
    if first is None or first[0] >= 0 or attempt > _RERUNS_AFTER_CRASH:
      break
    code, index, err = first
    two_cpus.record_rerun(f'{__name__}::test_two_workers_on_loopback_match_one_worker',
                          f'worker {index} (with its peer)', code, attempt, err)
  for index, (code, _, err) in enumerate(outputs):
    assert code == 0, f'worker {index} exit {code}:\n{err[-3000:]}'
  for index, (_, out, err) in enumerate(outputs):
    assert 'progress | step 12/12 (100%)' in out  # Both trained to the end ...
    assert f'Input pipeline {index} of 2: source=tsv' in err  # ... each on its own shard.
  # Only the chief wrote summaries and checkpoints into model_dir.
  for sub in ('train', 'validation'):
    assert len(os.listdir(model_dir / sub)) == 1, os.listdir(model_dir / sub)
  assert tf.train.latest_checkpoint(str(model_dir)).endswith('ckpt-12')
  best = os.listdir(model_dir / 'best_ckpt')
  assert len([name for name in best if name.endswith('.index')]) == 1, best
  # Worker 1 saved its checkpoints and best checkpoints into temporary folders, then deleted
  # them.
  assert f'saved checkpoint to {log_dir / "tmp1"}/' in outputs[1][2]
  for index in range(2):
    assert not os.listdir(log_dir / f'tmp{index}'), (index, os.listdir(log_dir / f'tmp{index}'))

  single_dir = tmp_path / 'one_worker'
  subprocess.run(_train_command(single_dir, 'mirrored'), cwd=REPO_ROOT, env=child_env(),
                 check=True, capture_output=True, timeout=600)
  two, one = scalars(str(model_dir / 'train')), scalars(str(single_dir / 'train'))
  assert sorted(two['training_loss']) == list(range(1, 13))
  np.testing.assert_allclose([two['training_loss'][s] for s in range(1, 13)],
                             [one['training_loss'][s] for s in range(1, 13)], rtol=1e-5)
  two_eval = scalars(str(model_dir / 'validation'))
  one_eval = scalars(str(single_dir / 'validation'))
  for tag in ('accuracy', 'f1', 'validation_loss'):
    assert two_eval[tag][12] == pytest.approx(one_eval[tag][12], rel=1e-5), tag


class _FakeManager:
  """A CheckpointManager's `directory` and `sync`, the latter failing if asked to."""

  def __init__(self, directory, sync_error=None):
    self.directory, self.sync_error, self.synced = str(directory), sync_error, False

  def sync(self):
    self.synced = True
    if self.sync_error:
      raise self.sync_error


def test_a_workers_checkpoint_folder_is_deleted_after_its_save_ends_but_never_the_model_dir(
    tmp_path):
  """The folder goes when the run ends, after waiting for a background save, even when that
  save failed; a manager that saves into the model folder leaves it as it is."""
  model_dir = tmp_path / 'model'
  os.makedirs(model_dir)
  (model_dir / 'ckpt-1.index').write_text('x')
  for error in (None, RuntimeError('disk full')):
    scratch = tmp_path / f'scratch_{error is None}'
    os.makedirs(scratch)
    (scratch / 'ckpt-1.index').write_text('x')
    manager = _FakeManager(scratch, error)
    with contextlib.ExitStack() as cleanup:
      training._delete_at_exit(cleanup, manager, str(model_dir))
      assert scratch.exists()
    assert manager.synced and not scratch.exists()
  with contextlib.ExitStack() as cleanup:
    training._delete_at_exit(cleanup, _FakeManager(model_dir / '.'), str(model_dir))
  assert os.listdir(model_dir) == ['ckpt-1.index']
