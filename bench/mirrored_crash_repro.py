"""Does mirrored training over 2 logical CPUs crash now and then? Counts it, child by child.

    .venv/bin/python bench/mirrored_crash_repro.py --runs=10 [--case=keras|tests]

`keras`: TensorFlow and tf-keras only (no Model Garden, no mrpc_task): a small embedding
classifier trained for 12 steps with `MirroredStrategy` over the CPU split into 2 logical
devices, the way tests/two_cpus.py splits it. `tests`: the suite's own mirrored training case
(tests/test_distribution.py), for comparison. Each run is a fresh child process under glibc's
heap checks (MALLOC_CHECK_=3, MALLOC_PERTURB_), so heap corruption aborts at once; the script
prints how each child ended and the signals seen.
"""

import collections
import os
import signal
import subprocess
import sys

from absl import app
from absl import flags

flags.DEFINE_integer('runs', 10, 'Child processes to run.')
flags.DEFINE_enum('case', 'keras', ['keras', 'tests'], 'What each child trains.')
FLAGS = flags.FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keras_case():
  """12 mirrored training steps of a small classifier: TensorFlow and tf-keras only."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf.config.set_logical_device_configuration(
      tf.config.list_physical_devices('CPU')[0],
      [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
  strategy = tf.distribute.MirroredStrategy(
      [d.name for d in tf.config.list_logical_devices('CPU')])
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 41, size=(96, 32)).astype(np.int32)
  labels = rng.integers(0, 2, size=(96,)).astype(np.int32)
  dataset = strategy.experimental_distribute_dataset(
      tf.data.Dataset.from_tensor_slices((ids, labels)).batch(8, drop_remainder=True).repeat())
  with strategy.scope():
    inputs = tf_keras.Input((32,), dtype=tf.int32)
    hidden = tf_keras.layers.Embedding(41, 32)(inputs)
    hidden = tf_keras.layers.LayerNormalization()(hidden)
    hidden = tf_keras.layers.Dense(64, activation='gelu')(hidden)
    hidden = tf_keras.layers.GlobalAveragePooling1D()(hidden)
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(2)(hidden))
    optimizer = tf_keras.optimizers.legacy.Adam(1e-3, global_clipnorm=1.0)

  @tf.function
  def step(iterator):
    def replica_step(batch):
      features, target = batch
      with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf_keras.losses.sparse_categorical_crossentropy(
            target, model(features, training=True), from_logits=True)) / 2
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables))
      return loss
    return strategy.reduce('SUM', strategy.run(replica_step, args=(next(iterator),)), axis=None)

  iterator = iter(dataset)
  for _ in range(12):
    step(iterator)


def _child_command():
  if FLAGS.case == 'keras':
    return [sys.executable, '-X', 'faulthandler', __file__, '--child']
  return [sys.executable, '-X', 'faulthandler', '-m', 'tests.two_cpus',
          'tests/test_distribution.py', '_mirrored_training_case']


def main(_):
  env = dict(os.environ, MALLOC_CHECK_='3', MALLOC_PERTURB_='165', TF_CPP_MIN_LOG_LEVEL='2')
  endings = collections.Counter()
  for run in range(FLAGS.runs):
    result = subprocess.run(_child_command(), cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=900)
    ending = (signal.Signals(-result.returncode).name if result.returncode < 0
              else f'exit {result.returncode}')
    endings[ending] += 1
    print(f'run {run + 1}: {ending}', flush=True)
    if result.returncode != 0:
      print(result.stderr.split('\nExtension modules:')[0][-1500:], flush=True)
  print(f'{FLAGS.case}: ' + ', '.join(f'{n} x {e}' for e, n in endings.most_common()))


if __name__ == '__main__':
  if '--child' in sys.argv:
    keras_case()
  else:
    app.run(main)
