"""Where a steady training step's time goes, by op type: TensorFlow's profiler around a few
training loops of the main job's experiment, after a warm-up that traces its batch lengths.

    MRPC_DATA_DIR=../shared/data/mrpc .venv/bin/python bench/step_profile.py [--steps=20]

Prints each op type's share of the host's op time (self time of the op events on TensorFlow's
executor threads, read from the profiler's XSpace file), the biggest first, with the time per
step.
"""

import collections
import glob
import os
import tempfile
import time

from absl import app
from absl import flags

import measure  # Before TensorFlow: it sets how TensorFlow loads Keras.

flags.DEFINE_string('experiment', 'bert_mrpc_minilm', 'Registered experiment to profile.')
flags.DEFINE_integer('warmup_steps', 114, 'Steps before profiling (one MRPC epoch: every '
                     'bucket length traced).')
flags.DEFINE_integer('steps', 20, 'Steps profiled.')
flags.DEFINE_string('params_override', '', 'Applied to the experiment, as tfm takes it.')
flags.DEFINE_integer('top', 25, 'Op types listed.')
FLAGS = flags.FLAGS


def _self_times(events):
  """(event, self duration in ps) of one thread's events: each event's duration minus that of
  the events nested in it (a While op holds the whole loop's ops; ExecutorState::Process holds
  one op)."""
  events = sorted(events, key=lambda e: (e.offset_ps, -e.duration_ps))
  selfs = [event.duration_ps for event in events]
  stack = []  # indices of the open events
  for index, event in enumerate(events):
    while stack and events[stack[-1]].offset_ps + events[stack[-1]].duration_ps <= event.offset_ps:
      stack.pop()
    if stack:
      selfs[stack[-1]] -= event.duration_ps
    stack.append(index)
  return zip(events, selfs)


def op_times(logdir: str):
  """{op type: microseconds of self time} and the number of op events, from the XSpace files
  in logdir: the host's executor threads (`tf_Compute`, `tf_numa...`), whose op events are
  named `op name:OpType`."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  totals = collections.Counter()
  count = 0
  for path in glob.glob(os.path.join(logdir, '**', '*.xplane.pb'), recursive=True):
    space = xplane_pb2.XSpace()
    with open(path, 'rb') as f:
      space.ParseFromString(f.read())
    for plane in space.planes:
      if not plane.name.startswith('/host:CPU'):
        continue
      for line in plane.lines:
        if not line.name.startswith(('tf_Compute', 'tf_numa', 'tf_inter', 'tf_data')):
          continue
        for event, self_ps in _self_times(line.events):
          name = plane.event_metadata[event.metadata_id].name
          if ':' not in name or name.startswith('ExecutorState'):
            continue
          totals[name.rsplit(':', 1)[-1]] += self_ps / 1e6
          count += 1
  return totals, count


def main(_):
  params, _, trainer = measure.in_process_trainer(FLAGS.experiment, FLAGS.params_override)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (imported as tfm does, above)
  loop = params.trainer.steps_per_loop
  done = 0
  while done < FLAGS.warmup_steps:
    steps = min(loop, FLAGS.warmup_steps - done)
    trainer.train(tf.constant(steps, tf.int32))
    done += steps
  with tempfile.TemporaryDirectory(prefix='step_profile_') as logdir:  # Read, then deleted.
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    trainer.train(tf.constant(FLAGS.steps, tf.int32))
    seconds = time.perf_counter() - start
    tf.profiler.experimental.stop()
    totals, events = op_times(logdir)
  total = sum(totals.values())
  batch = params.task.train_data.global_batch_size
  print(f'{FLAGS.steps} steps in {seconds:.2f} s ({FLAGS.steps * batch / seconds:.1f} '
        f'examples/s under the profiler); {events} op events, {total / 1e3:.0f} ms of op time '
        f'on the host ({total / 1e3 / FLAGS.steps:.0f} ms per step; 2 cores run ops at once)')
  print(f'{"op type":<36} {"share":>6} {"ms/step":>8}')
  for name, micros in totals.most_common(FLAGS.top):
    print(f'{name:<36} {100 * micros / total:>5.1f}% {micros / 1e3 / FLAGS.steps:>8.1f}')


if __name__ == '__main__':
  app.run(main)
