"""How fast the experiment could train and serve on this CPU if TensorFlow's matrix multiplies
were all the work: a ceiling for speed bars, from this machine's own multiply rate, so a bar
set on another CPU can be judged here.

    MRPC_DATA_DIR=../shared/data/mrpc .venv/bin/python bench/matmul_ceiling.py

Counts the encoder's multiply FLOPs (dense layers and attention's two products; a training
step is forward plus the two products of each backward multiply, 3x) at the real padded
lengths: the training batches of one epoch (unshuffled) as the experiment buckets them, and
the dev pairs in file order as the export pads and chunks them for benchmark.py's probe (the
median of its first 60 pairs one at a time; the first 384 in batches of 64). Then times one
graph of the encoder's dense multiplies, in the experiment's compute type, at those row
counts (forward and backward for training).

The ceilings are optimistic: element-wise passes, Adam and tokenization count as free,
attention's small batched products and the last layer's one-row multiplies (output_range) as
fast as the full dense ones, and each rate is the fastest of a few rounds.
"""

import math
import platform
import time
from typing import NamedTuple, Optional

from absl import app
from absl import flags
import numpy as np

# Before TensorFlow: it makes TensorFlow start as in tfm.
import measure  # pylint: disable=unused-import
from mrpc_task import choices

flags.DEFINE_string('experiment', 'bert_mrpc_minilm', 'Registered experiment.')
flags.DEFINE_string('params_override', '', 'Applied to the experiment, as tfm takes it.')
flags.DEFINE_float('seconds', 2.0, 'Time of one measurement of a row count.')
flags.DEFINE_integer('rounds', 3, 'Measurements of each row count; the fastest is taken.')
flags.DEFINE_integer('pad_multiple', choices.DEFAULT_PAD_MULTIPLE,
                     'As tfm export --pad_multiple.')
flags.DEFINE_integer('sort_chunk_size', choices.DEFAULT_SORT_CHUNK_SIZE,
                     'As tfm export --sort_chunk_size.')
flags.DEFINE_integer('probe_pairs', 60, 'Dev pairs the one-pair probe sends (benchmark.py).')
flags.DEFINE_integer('serving_batch', 64, 'Pairs per request of the batch probe.')
flags.DEFINE_integer('serving_pairs', 384, 'Dev pairs the batch probe sends (benchmark.py).')
FLAGS = flags.FLAGS


class EncoderShape(NamedTuple):
  layers: int
  hidden: int
  inner: int
  output_range: Optional[int]  # Rows the last layer computes (None: all).


def forward_flops(length: int, shape: EncoderShape) -> float:
  """Multiply FLOPs of one sequence of `length` tokens through the encoder. Model Garden's
  last layer with an output_range computes queries, attention output and feed-forward for
  that many rows only, from keys and values of every token."""
  def layer(rows):
    projections = 2 * shape.hidden * (2 * length * shape.hidden + 2 * rows * shape.hidden)
    feed_forward = 2 * 2 * rows * shape.hidden * shape.inner
    attention = 2 * 2 * rows * length * shape.hidden  # Scores, then the weighted values.
    return projections + feed_forward + attention
  last_rows = min(shape.output_range or length, length)
  return (shape.layers - 1) * layer(length) + layer(last_rows)


def dense_flops(rows: int, shape: EncoderShape) -> float:
  """Forward FLOPs of the graph `matmul_rate` times: every layer's six dense multiplies."""
  return shape.layers * 2.0 * rows * (4 * shape.hidden ** 2 + 2 * shape.hidden * shape.inner)


def matmul_rate(tf, rows: int, shape: EncoderShape, dtype, backward: bool = False) -> float:
  """FLOP/s of the encoder's dense multiplies alone on `rows` rows in `dtype`: one graph of
  every layer's six (query, key, value, output, and the two feed-forward ones), each layer's
  input its previous layer's output, timed over whole calls so that per-call overhead is
  spread as in a step; with `backward`, with the gradients of the input and every weight."""
  random = tf.random.Generator.from_seed(0)
  sizes = ((shape.hidden, shape.hidden),) * 4 + ((shape.hidden, shape.inner),
                                                  (shape.inner, shape.hidden))
  weights = [[tf.cast(random.normal(size, stddev=size[0] ** -0.5), dtype) for size in sizes]
             for _ in range(shape.layers)]

  def forward(x):
    for query, key, value, output, up, down in weights:
      # Combined so that their backward multiplies differ: with a plain sum, the three weight
      # gradients would be one product, which Grappler computes once.
      attended = tf.matmul(x, query) * tf.matmul(x, key) + tf.matmul(x, value)
      x = tf.matmul(tf.matmul(tf.matmul(attended, output), up), down)
    return x

  @tf.function
  def step(x):
    if not backward:
      return forward(x)
    flat = [weight for layer in weights for weight in layer]
    with tf.GradientTape() as tape:
      tape.watch([x] + flat)
      y = forward(x)
    return tape.gradient(y, [x] + flat)

  x = tf.cast(random.normal([rows, shape.hidden]), dtype)
  def call():  # Waits for every output.
    tf.nest.map_structure(lambda t: t.numpy(), step(x))
  call()  # Traced and warm.
  best = 0.0
  for _ in range(FLAGS.rounds):
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < FLAGS.seconds or calls < 3:
      call()
      calls += 1
    best = max(best, calls / (time.perf_counter() - start))
  return best * dense_flops(rows, shape) * (3 if backward else 1)


def _lengths(task, params):
  """(batch, padded length) of each training batch of one epoch, and the word-piece count of
  each dev pair in file order: the probe sends pairs in that order, so its chunks mix
  lengths (the experiment's own evaluation batches would group them by length)."""
  # Once through, every example (a training pipeline repeats, and fills each length bucket's
  # last batch from the next epoch); the lengths do not depend on the pair order.
  epoch = params.task.train_data.replace(is_training=False, drop_remainder=False,
                                         pair_order='as_is')
  train = [tuple(features['input_word_ids'].shape)
           for features, _ in task.build_inputs(epoch)]
  dev = [int(n) for features, _ in
         task.build_inputs(params.task.validation_data.replace(padding='static'))
         for n in np.sum(features['input_mask'], axis=1)]
  return train, dev


def _round_up(value: int, multiple: int) -> int:
  return int(math.ceil(value / multiple) * multiple)


def _serving_chunks(dev):
  """(word-piece counts, padded length) of each chunk the export runs for the batch probe's
  requests: each request's pairs sorted by length, cut into chunks, each padded to its
  longest pair (rounded up to pad_multiple)."""
  pairs = dev[:FLAGS.serving_pairs]
  for start in range(0, len(pairs), FLAGS.serving_batch):
    ordered = sorted(pairs[start:start + FLAGS.serving_batch])
    for first in range(0, len(ordered), FLAGS.sort_chunk_size):
      chunk = ordered[first:first + FLAGS.sort_chunk_size]
      yield chunk, _round_up(max(chunk), FLAGS.pad_multiple)


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine()


def main(_):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import experiment_config  # pylint: disable=g-import-not-at-top
  params = experiment_config.parse_experiment(FLAGS.experiment,
                                              params_override=FLAGS.params_override or None)
  encoder = params.task.model.encoder
  if encoder.type != 'bert':
    raise app.UsageError(f'task.model.encoder.type={encoder.type}: only bert encoders are '
                         'counted here')
  bert = encoder.get()
  shape = EncoderShape(bert.num_layers, bert.hidden_size, bert.intermediate_size,
                       bert.output_range)
  dtype = tf.bfloat16 if params.runtime.mixed_precision_dtype == 'bfloat16' else tf.float32
  train_batches, dev = _lengths(task_factory.get_task(params.task), params)

  train_examples = sum(batch for batch, _ in train_batches)
  train_flops = sum(3 * batch * forward_flops(length, shape)
                    for batch, length in train_batches) / train_examples
  full = params.task.train_data.global_batch_size  # What training runs: full batches.
  train_rows = int(np.mean([full * length for _, length in train_batches]))
  probed = sorted(_round_up(n, FLAGS.pad_multiple) for n in dev[:FLAGS.probe_pairs])
  pair_rows = probed[len(probed) // 2]  # The median request's length.
  pair_flops = forward_flops(pair_rows, shape)
  chunks = list(_serving_chunks(dev))
  chunk_flops = sum(len(chunk) * forward_flops(length, shape)
                    for chunk, length in chunks) / sum(len(chunk) for chunk, _ in chunks)
  chunk_rows = int(np.mean([len(chunk) * length for chunk, length in chunks]))

  print(f'{_cpu_name()}; {dtype.name} multiplies; encoder: {shape.layers} layers, hidden '
        f'{shape.hidden}, intermediate {shape.inner}, last layer rows {shape.output_range}')
  training_rate = matmul_rate(tf, train_rows, shape, dtype, backward=True)
  print(f'training: {train_examples} examples in {len(train_batches)} batches, {train_rows} '
        'rows a full batch on average; '
        f'{train_flops / 1e9:.2f} GFLOP of multiplies per example; forward and backward '
        f'multiplies of {train_rows} rows at {training_rate / 1e9:.0f} GFLOP/s: at most '
        f'{training_rate / train_flops:.1f} examples/s')
  pair_rate = matmul_rate(tf, pair_rows, shape, dtype)
  print(f'one pair: the median of the first {FLAGS.probe_pairs} has {pair_rows} tokens (padded '
        f'to a multiple of {FLAGS.pad_multiple}); {pair_flops / 1e9:.2f} GFLOP; multiplies of '
        f'{pair_rows} rows at {pair_rate / 1e9:.0f} GFLOP/s: at least '
        f'{1e3 * pair_flops / pair_rate:.1f} ms')
  chunk_rate = matmul_rate(tf, chunk_rows, shape, dtype)
  print(f'the first {FLAGS.serving_pairs} dev pairs in batches of {FLAGS.serving_batch}, '
        f'sorted chunks of {FLAGS.sort_chunk_size}: {chunk_rows} rows a chunk on average; '
        f'{chunk_flops / 1e9:.2f} GFLOP per pair; multiplies of {chunk_rows} rows at '
        f'{chunk_rate / 1e9:.0f} GFLOP/s: at most {chunk_rate / chunk_flops:.1f} pairs/s')


if __name__ == '__main__':
  app.run(main)
