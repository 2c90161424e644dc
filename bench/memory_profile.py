"""Where the main job's memory goes: resident memory at the end of each phase and its peak
during it, for the main job's experiment run in this one process, phase by phase.

    MRPC_DATA_DIR=../shared/data/mrpc .venv/bin/python bench/memory_profile.py \
        [--experiment=bert_mrpc_minilm] [--epochs=1] [--params_override=...]

Phases, in the order the main job meets them: imports (TensorFlow, Model Garden, this
package); the Task, model, optimizer and pretrained encoder; the first training step (input
pipeline made, training loop traced); the rest of the first pass over the data (tokenized
and cached as it goes); steady training, loop by loop; an evaluation of the whole dev set; a
checkpoint write; the export. It drives Model Garden's own Trainer object (the one
`tfm train_experiment` runs through Orbit) a loop at a time, so the phases can be told
apart; a background thread samples VmRSS every 20 ms for the peaks. Prints a table (MiB)
and writes it as JSON with --output.
"""

import json
import os
import tempfile
import threading
import time

from absl import app
from absl import flags

import measure  # Before TensorFlow: it sets how TensorFlow loads Keras.
from mrpc_task.cli import main as cli_main

flags.DEFINE_string('experiment', 'bert_mrpc_minilm', 'Registered experiment to profile.')
flags.DEFINE_float('epochs', 1.0, 'Training epochs to run (the main job runs 3).')
flags.DEFINE_string('params_override', '', 'Applied to the experiment, as tfm takes it.')
flags.DEFINE_string('output', '', 'Also write the phases as JSON here.')
FLAGS = flags.FLAGS


def rss_mib() -> float:
  with open('/proc/self/status') as f:
    for line in f:
      if line.startswith('VmRSS:'):
        return int(line.split()[1]) / 1024
  return float('nan')


class Sampler:
  """Peak VmRSS per phase, sampled in the background."""

  def __init__(self, every: float = 0.02):
    self.every, self.peak, self.rows = every, rss_mib(), []
    self.phase_started = time.monotonic()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self):
    while not self._stop.is_set():
      self.peak = max(self.peak, rss_mib())
      time.sleep(self.every)

  def mark(self, phase: str):
    """Ends a phase: its end RSS, its peak, and its duration."""
    end = rss_mib()
    self.peak = max(self.peak, end)
    row = {'phase': phase, 'end_mib': round(end), 'peak_mib': round(self.peak),
           'seconds': round(time.monotonic() - self.phase_started, 1)}
    self.rows.append(row)
    print(f'{phase:<40} end {row["end_mib"]:>6} MiB  peak {row["peak_mib"]:>6} MiB  '
          f'{row["seconds"]:>6} s', flush=True)
    self.peak, self.phase_started = end, time.monotonic()

  def stop(self):
    self._stop.set()
    self._thread.join()


def _profile_run(sampler: Sampler, model_dir: str):
  """The main job's phases after the imports, each marked on `sampler`; checkpoints go to
  `model_dir`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  params, task, trainer = measure.in_process_trainer(
      FLAGS.experiment, FLAGS.params_override, evaluate=True, model_dir=model_dir)
  sampler.mark('Task, model, optimizer, encoder restored')

  trainer.train(tf.constant(1, tf.int32))
  sampler.mark('first step (input pipeline made, training loop traced)')
  loop = params.trainer.steps_per_loop
  total = int(FLAGS.epochs * params.trainer.validation_interval)
  done = 1
  while done < total:
    steps = min(loop - done % loop, total - done)  # Back on the loop's boundaries.
    trainer.train(tf.constant(steps, tf.int32))
    done += steps
    sampler.mark(f'training to step {done}' + (' (first pass over the data)'
                                               if done == loop else ''))
  trainer.evaluate(tf.constant(-1, tf.int32))
  sampler.mark('evaluation of the whole dev set')
  manager = tf.train.CheckpointManager(trainer.checkpoint, model_dir, max_to_keep=1)
  manager.save(checkpoint_number=done)
  sampler.mark('checkpoint write')
  with tempfile.TemporaryDirectory() as export_dir:
    export.export_model(params.task, task.build_model(), os.path.join(export_dir, 'e'),
                        manager.latest_checkpoint)
  sampler.mark('export (a new model, the checkpoint, SavedModel)')


def main(_):
  sampler = Sampler()
  sampler.mark('python')
  cli_main.import_tensorflow()  # As a tfm command imports it.
  import official.core.train_utils  # pylint: disable=g-import-not-at-top,unused-import
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import export  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import training  # pylint: disable=g-import-not-at-top,unused-import
  sampler.mark('imports (TensorFlow, Model Garden, mrpc_task)')

  with tempfile.TemporaryDirectory(prefix='memory_profile_') as model_dir:
    _profile_run(sampler, model_dir)
  sampler.stop()
  peak = max(row['peak_mib'] for row in sampler.rows)
  print(f'peak resident memory: {peak} MiB')
  if FLAGS.output:
    with open(FLAGS.output, 'w') as f:
      json.dump({'experiment': FLAGS.experiment, 'epochs': FLAGS.epochs,
                 'phases': sampler.rows, 'peak_mib': peak}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
