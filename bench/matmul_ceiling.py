"""How fast this CPU could train and serve the experiment if its matrix multiplies were all
the work: a ceiling for the speed bars, from this machine's own multiply rate.

    MRPC_DATA_DIR=../shared/data/mrpc .venv/bin/python bench/matmul_ceiling.py

Counts the encoder's multiply FLOPs (dense layers and attention's two products; training is
forward plus the two products of each backward multiply, 3x) at the real padded lengths of the
experiment's training batches and of its dev pairs as the export pads them, and times
`tf.matmul` in the experiment's compute type at the dense layers' shapes and row counts. The
ceilings are optimistic: everything else (element-wise passes, Adam, tokenization) is taken as
free, and attention's small batched products as fast as the dense ones.
"""

import math
import platform
import time

from absl import app
from absl import flags
import numpy as np

# Before TensorFlow: it makes TensorFlow start as in tfm.
import measure  # pylint: disable=unused-import

flags.DEFINE_string('experiment', 'bert_mrpc_minilm', 'Registered experiment.')
flags.DEFINE_string('params_override', '', 'Applied to the experiment, as tfm takes it.')
flags.DEFINE_float('seconds', 2.0, 'Time of one measurement of a row count.')
flags.DEFINE_integer('rounds', 3, 'Measurements of each row count; the fastest is taken.')
flags.DEFINE_integer('train_examples', 3668, 'Training examples read for the lengths (one '
                     'MRPC epoch).')
flags.DEFINE_integer('pad_multiple', 8, 'The export\'s padding of a request (tfm export).')
flags.DEFINE_integer('chunk', 8, 'The export\'s sorted chunk size (tfm export).')
flags.DEFINE_integer('serving_batch', 64, 'Pairs per request of the batch probe.')
FLAGS = flags.FLAGS


def forward_flops(length: int, shape, rows_last: int) -> float:
  """Multiply FLOPs of one sequence of `length` tokens through the encoder; the last layer
  computes `rows_last` rows (its output_range) from keys and values of every token."""
  layers, hidden, inner = shape
  def layer(rows):
    dense = 2 * hidden * (2 * length * hidden + 2 * rows * hidden + 2 * rows * inner)
    attention = 2 * 2 * rows * length * hidden
    return dense + attention
  return (layers - 1) * layer(length) + layer(min(rows_last, length))


def matmul_rate(tf, rows: int, shape, dtype) -> float:
  """FLOP/s of the encoder's dense multiplies alone on `rows` rows in `dtype`: one graph of
  every layer's six (query, key, value, output, and the two feed-forward ones), each layer's
  input its previous layer's output, timed over whole calls, so per-call overhead is spread
  over the whole graph as in a training step."""
  layers, hidden, inner = shape
  random = tf.random.Generator.from_seed(0)
  weights = [[tf.cast(random.normal([k, n], stddev=k ** -0.5), dtype)
              for k, n in ((hidden, hidden),) * 4 + ((hidden, inner), (inner, hidden))]
             for _ in range(layers)]

  @tf.function
  def dense_multiplies(x):
    for query, key, value, output, up, down in weights:
      attended = tf.matmul(x, query) + tf.matmul(x, key) + tf.matmul(x, value)
      x = tf.matmul(tf.matmul(tf.matmul(attended, output), up), down)
    return x

  x = tf.cast(random.normal([rows, hidden]), dtype)
  dense_multiplies(x).numpy()
  best = 0.0
  for _ in range(FLAGS.rounds):  # The fastest round: the ceiling is meant to be optimistic.
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < FLAGS.seconds or calls < 3:
      dense_multiplies(x).numpy()
      calls += 1
    best = max(best, calls / (time.perf_counter() - start))
  return best * layers * 2.0 * rows * (4 * hidden * hidden + 2 * hidden * inner)


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def _round_up(value: int, multiple: int) -> int:
  return int(math.ceil(value / multiple) * multiple)


def _lengths(task, params):
  """(batch, padded length) of the training batches of one epoch, and the token count of
  each dev pair."""
  train, examples = [], 0
  for features, _ in task.build_inputs(params.task.train_data):
    batch, length = features['input_word_ids'].shape
    train.append((batch, length))
    examples += batch
    if examples >= FLAGS.train_examples:
      break
  dev = [int(n) for features, _ in task.build_inputs(params.task.validation_data)
         for n in np.sum(features['input_mask'], axis=1)]
  return train, dev


def main(_):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  params = experiment_config.parse_experiment(FLAGS.experiment,
                                              params_override=FLAGS.params_override or None)
  bert = params.task.model.encoder.get()
  shape = (bert.num_layers, bert.hidden_size, bert.intermediate_size)
  rows_last = bert.output_range or 1 << 30
  dtype = tf.bfloat16 if params.runtime.mixed_precision_dtype == 'bfloat16' else tf.float32
  train_lengths, dev = _lengths(task_factory.get_task(params.task), params)

  train_examples = sum(batch for batch, _ in train_lengths)
  train_flops = sum(3 * batch * forward_flops(length, shape, rows_last)
                    for batch, length in train_lengths) / train_examples
  train_rows = int(np.mean([batch * length for batch, length in train_lengths]))
  pair_lengths = [_round_up(n, FLAGS.pad_multiple) for n in dev]
  pair_flops = np.mean([forward_flops(n, shape, rows_last) for n in pair_lengths])
  pair_rows = int(np.mean(pair_lengths))
  chunk_flops, chunk_rows = 0.0, []
  for start in range(0, len(dev), FLAGS.serving_batch):
    ordered = sorted(dev[start:start + FLAGS.serving_batch])
    for first in range(0, len(ordered), FLAGS.chunk):
      chunk = ordered[first:first + FLAGS.chunk]
      length = _round_up(max(chunk), FLAGS.pad_multiple)
      chunk_flops += len(chunk) * forward_flops(length, shape, rows_last)
      chunk_rows.append(len(chunk) * length)
  chunk_flops /= len(dev)
  chunk_rows = int(np.mean(chunk_rows))

  print(f'{_cpu_name()}; {dtype.name} multiplies; encoder: {shape[0]} layers, hidden '
        f'{shape[1]}, intermediate {shape[2]}')
  rate = matmul_rate(tf, train_rows, shape, dtype)
  print(f'training: {len(train_lengths)} batches, {train_rows} rows on average; '
        f'{train_flops / 1e9:.2f} GFLOP of multiplies per example; multiplies of '
        f'{train_rows} rows at {rate / 1e9:.0f} GFLOP/s: at most '
        f'{rate / train_flops:.1f} examples/s')
  rate = matmul_rate(tf, pair_rows, shape, dtype)
  print(f'one pair: {pair_rows} tokens on average (padded to a multiple of '
        f'{FLAGS.pad_multiple}); {pair_flops / 1e9:.2f} GFLOP; multiplies of {pair_rows} rows '
        f'at {rate / 1e9:.0f} GFLOP/s: at least {1e3 * pair_flops / rate:.1f} ms')
  rate = matmul_rate(tf, chunk_rows, shape, dtype)
  print(f'batches of {FLAGS.serving_batch} in sorted chunks of {FLAGS.chunk}: {chunk_rows} '
        f'rows a chunk on average; {chunk_flops / 1e9:.2f} GFLOP per pair; multiplies of '
        f'{chunk_rows} rows at {rate / 1e9:.0f} GFLOP/s: at most {rate / chunk_flops:.1f} '
        'pairs/s')


if __name__ == '__main__':
  app.run(main)
