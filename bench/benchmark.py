"""Stock Model Garden vs mrpc_task on the same data, encoder and recipe, in one run.

For each seed it trains (train_and_eval, the full recipe of `bert_mrpc_minilm`):
  stock: `bert/sentence_prediction` on TFRecords from Model Garden's classifier_data_lib
         (padded to 128, float32), with the same converted MiniLM encoder and optimizer;
  ours:  `bert_mrpc_minilm` with its defaults (bfloat16 on a CPU with AVX512_BF16 or AMX,
         float32 elsewhere: the summary's `ours_dtype` says which).
and records steady-state training examples/s, wall time, peak RSS and final dev accuracy/F1.
Then it exports our model twice (our export, and a tutorial-style one padding to 128) and
measures one-pair latency and batch-64 throughput. The last line printed is
`speedup: N.NNx` (our steady-state training examples/s over stock's).
"""

import json
import os
import statistics
import subprocess
import sys

from absl import app
from absl import flags

import measure

flags.DEFINE_string('output_dir', 'runs/bench', 'Where runs, exports and results go.')
flags.DEFINE_integer('seeds', 3, 'Training runs per system (seeds 0..N-1).')
flags.DEFINE_integer('train_steps', 0, 'Override the recipe length (0: the full recipe).')
flags.DEFINE_list('systems', ['stock', 'ours'], 'Which systems to train.')
FLAGS = flags.FLAGS

def recipe():
  """Our default experiment config: the recipe both systems follow."""
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  params = exp_factory.get_exp_config('bert_mrpc_minilm')
  if FLAGS.train_steps:
    trainer = params.trainer
    trainer.train_steps = FLAGS.train_steps
    trainer.optimizer_config.learning_rate.polynomial.decay_steps = FLAGS.train_steps
    trainer.optimizer_config.warmup.linear.warmup_steps = FLAGS.train_steps // 10
    trainer.validation_interval = trainer.checkpoint_interval = FLAGS.train_steps
    # Several loops, so a steady state exists after the first (tracing) one.
    trainer.steps_per_loop = trainer.summary_interval = max(1, FLAGS.train_steps // 5)
  return params


def stock_override(params, records, checkpoint, seed):
  trainer = params.trainer.as_dict()
  # The same encoder as Model Garden configures it by default: every layer on every position.
  encoder = params.task.model.encoder.as_dict()
  encoder[encoder['type']]['output_range'] = None
  data = {'seq_length': 128, 'label_type': 'int', 'global_batch_size':
          params.task.train_data.global_batch_size, 'seed': seed}
  return {
      'task': {
          'init_checkpoint': checkpoint,
          'metric_type': 'f1',
          'model': {'num_classes': 2, 'use_encoder_pooler': True,
                    'encoder': encoder},
          'train_data': dict(data, input_path=os.path.join(records, 'train.tf_record'),
                             is_training=True, drop_remainder=True, shuffle_buffer_size=10000),
          'validation_data': dict(
              data, input_path=os.path.join(records, 'eval.tf_record'), is_training=False,
              drop_remainder=False,
              global_batch_size=params.task.validation_data.global_batch_size),
      },
      'trainer': trainer,
  }


def ours_override(params, seed):
  override = {'task': {'seed': seed, 'train_data': {'seed': seed}}}
  if FLAGS.train_steps:
    override['trainer'] = params.trainer.as_dict()
  return override


def train(system, seed, params, records, checkpoint):
  model_dir = os.path.join(FLAGS.output_dir, f'{system}-seed{seed}')
  subprocess.run(['rm', '-rf', model_dir], check=True)
  if system == 'stock':
    experiment, override = 'bert/sentence_prediction', stock_override(
        params, records, checkpoint, seed)
    accuracy_tag = 'cls_accuracy'
  else:
    experiment, override = 'bert_mrpc_minilm', ours_override(params, seed)
    accuracy_tag = 'accuracy'
  log = model_dir + '.log'
  wall, rss = measure.run_measured(
      [f'{measure.BIN}/tfm', 'train_experiment', f'--experiment={experiment}',
       '--mode=train_and_eval', f'--model_dir={model_dir}',
       f'--params_override={json.dumps(override)}'], log)
  evals = measure.eval_scalars(model_dir)
  final = evals[max(evals)]
  result = {
      'system': system, 'seed': seed, 'model_dir': model_dir, 'wall_s': round(wall, 1),
      'peak_rss_mib': round(rss), 'accuracy': final[accuracy_tag], 'f1': final['f1'],
      'train_examples_per_s': round(measure.steady_examples_per_second(log), 2),
  }
  print(json.dumps(result), flush=True)
  return result


SERVING_PROBE = r'''
import json, statistics, sys, time
import tensorflow as tf, tensorflow_text  # noqa
sys.path.insert(0, sys.argv[2])
from mrpc_task import tsv_reader
dev = tsv_reader.read_examples(sys.argv[3] + '/dev.tsv', text_columns=['#1 String', '#2 String'],
    label_column='Quality', labels=tsv_reader.LabelSpec.classes({'0': 0, '1': 1}))
serve = tf.saved_model.load(sys.argv[1]).signatures['serving_default']
one = dict(sentence1=tf.constant(dev.sentence1[:1]), sentence2=tf.constant(dev.sentence2[:1]))
for _ in range(5): serve(**one)
times = []
for i in range(60):
  pair = dict(sentence1=tf.constant(dev.sentence1[i:i + 1]), sentence2=tf.constant(dev.sentence2[i:i + 1]))
  start = time.perf_counter(); serve(**pair)['logits'].numpy(); times.append(time.perf_counter() - start)
batches = [(dev.sentence1[i:i + 64], dev.sentence2[i:i + 64]) for i in range(0, 384, 64)]
serve(sentence1=tf.constant(batches[0][0]), sentence2=tf.constant(batches[0][1]))
start = time.perf_counter()
for _ in range(2):
  for first, second in batches:
    serve(sentence1=tf.constant(first), sentence2=tf.constant(second))['logits'].numpy()
elapsed = time.perf_counter() - start
print(json.dumps({'latency_ms_p50': 1000 * statistics.median(times),
                  'batch64_examples_per_s': 2 * 384 / elapsed}))
'''


def measure_exports(model_dir, dtype):
  """Our export vs a tutorial-style one, from the same checkpoint (and, for a bfloat16 run,
  ours with float32 weights, to show what the bfloat16 ones bring).

  The tutorial-style one pads to 128, runs every layer on every position (output_range null),
  keeps float32 weights as variables and Model Garden's layers, as the tutorial's classifier
  does; ours is `tfm export` as it is (the run's `dtype` for the weights, fused serving
  layers, weights frozen into the graph when they take under 64 MiB: bfloat16 MiniLM's).
  """
  results = {}
  styles = [('ours', ['--trim_padding=true'])]
  if dtype == 'bfloat16':
    styles.append(('ours_float32', ['--trim_padding=true', '--serving_dtype=float32']))
  for name, flags_of_style in styles + [
      ('tutorial_style', ['--trim_padding=false', '--serving_dtype=float32',
                          '--nofuse_layers', '--freeze_weights=false',
                          '--params_override=task.model.encoder.bert.output_range=null'])]:
    export_dir = os.path.join(FLAGS.output_dir, f'export-{name}')
    measure.run_measured([f'{measure.BIN}/tfm', 'export', '--experiment=bert_mrpc_minilm',
                  f'--model_dir={model_dir}', f'--export_dir={export_dir}', '--overwrite',
                  f'--checkpoint_path={model_dir}'] + flags_of_style,
                 export_dir + '.log')
    probe = subprocess.run([sys.executable, '-c', SERVING_PROBE, export_dir, measure.REPO,
                            os.environ['MRPC_DATA_DIR']], capture_output=True, text=True,
                           check=True, cwd=measure.REPO)
    results[name] = json.loads(probe.stdout.strip().splitlines()[-1])
    print(name, json.dumps(results[name]), flush=True)
  return results


def mean(rows, key):
  return statistics.mean(row[key] for row in rows)


def main(_):
  from mrpc_task.checkpoints import cache  # pylint: disable=g-import-not-at-top
  from registry import experiments  # pylint: disable=g-import-not-at-top
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  params = recipe()
  checkpoint = cache.converted_hf_checkpoint(experiments.minilm_dir())
  records = os.path.join(FLAGS.output_dir, 'stock_tfrecords')
  measure.run_measured([sys.executable, os.path.join(measure.REPO, 'bench', 'stock_tfrecords.py'),
                        f'--data_dir={os.environ["MRPC_DATA_DIR"]}',
                        f'--vocab_file={params.task.train_data.vocab_file}',
                        f'--output_dir={records}'], records + '.log')
  rows = [train(system, seed, params, records, checkpoint)
          for seed in range(FLAGS.seeds) for system in FLAGS.systems]
  dtype = params.runtime.mixed_precision_dtype or 'float32'
  serving = measure_exports(next(r['model_dir'] for r in rows if r['system'] == 'ours'), dtype)
  summary = {}
  for system in FLAGS.systems:
    mine = [r for r in rows if r['system'] == system]
    summary[system] = {key: round(mean(mine, key), 4) for key in
                       ('train_examples_per_s', 'wall_s', 'peak_rss_mib', 'accuracy', 'f1')}
  with open(os.path.join(FLAGS.output_dir, 'results.json'), 'w') as f:
    json.dump({'runs': rows, 'summary': summary, 'serving': serving, 'ours_dtype': dtype},
              f, indent=2)
  print(f'ours computes in {dtype} on this CPU (stock: float32)')
  print('| system | train ex/s | wall s | peak RSS MiB | dev acc | dev F1 |')
  print('| --- | ---: | ---: | ---: | ---: | ---: |')
  for system, s in summary.items():
    print(f"| {system} | {s['train_examples_per_s']:.1f} | {s['wall_s']:.0f} | "
          f"{s['peak_rss_mib']:.0f} | {100 * s['accuracy']:.2f} | {100 * s['f1']:.2f} |")
  print(f"serving: latency p50 {serving['ours']['latency_ms_p50']:.1f} ms vs "
        f"{serving['tutorial_style']['latency_ms_p50']:.1f} ms; batch-64 "
        f"{serving['ours']['batch64_examples_per_s']:.1f} vs "
        f"{serving['tutorial_style']['batch64_examples_per_s']:.1f} ex/s "
        f"({serving['ours']['batch64_examples_per_s'] / serving['tutorial_style']['batch64_examples_per_s']:.2f}x)")
  if 'stock' in summary and 'ours' in summary:
    print(f"speedup: {summary['ours']['train_examples_per_s'] / summary['stock']['train_examples_per_s']:.2f}x")


if __name__ == '__main__':
  app.run(main)
