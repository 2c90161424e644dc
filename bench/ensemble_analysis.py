"""Single runs, both-order averaging and probability ensembles, scored from one pass per run.

    .venv/bin/python bench/ensemble_analysis.py SWEEP_DIR [SWEEP_DIR ...] [--output=FILE.md]

For every finished run of the sweeps (`tfm sweep` folders), the final checkpoint's class
probabilities on the selection split and on dev, in both sentence orders, are computed once
(in float32, as `tfm evaluate` and the export compute) and kept in RUN/probabilities.npz;
every combination is then scored from those arrays:
- single: each run alone (mean ± std over seeds), as `tfm evaluate` scores it;
- orders: each run with both orders averaged (`tfm export --average_orders`);
- ensemble of k: the mean probability of k runs of one point (`tfm export --members`),
  mean ± std over every choice of k of its seeds.
"""

import argparse
import glob
import itertools
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mrpc_task.cli import main as cli_main  # pylint: disable=wrong-import-position

PROBABILITIES = 'probabilities.npz'


def _scores(labels, probabilities, positive=1):
  predictions = probabilities.argmax(-1)
  tp = np.sum((predictions == positive) & (labels == positive))
  precision = tp / max(1, np.sum(predictions == positive))
  recall = tp / max(1, np.sum(labels == positive))
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return 100 * float(np.mean(predictions == labels)), 100 * float(f1)


def run_probabilities(run_dir):
  """{data_order: probabilities, data_labels: labels} of the run's final checkpoint (cached)."""
  path = os.path.join(run_dir, PROBABILITIES)
  if os.path.exists(path):
    return dict(np.load(path))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import data  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  from mrpc_task import runs  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  _, params = runs.load_run_config(run_dir)
  task = task_factory.get_task(params.task)
  model = task.build_model()
  export.restore_classifier(model, tf.train.latest_checkpoint(run_dir))
  predict = tf.function(lambda f: tf.nn.softmax(tf.cast(model(f, training=False), tf.float32)),
                        reduce_retracing=True)
  arrays = {}
  for name in ('selection', 'dev'):
    config = evaluation.named_data(params.task, name).replace(padding='static')
    for order, swap in (('ab', False), ('ba', True)):
      probabilities, labels = [], []
      for features, label in data.build_dataset(config, swap_sentences=swap):
        probabilities.append(predict(features).numpy())
        labels.append(label.numpy())
      arrays[f'{name}_{order}'] = np.concatenate(probabilities)
      arrays[f'{name}_labels'] = np.concatenate(labels)
  partial = f'{path}.partial.npz'  # Renamed when complete: a cut write leaves no cache.
  np.savez(partial, **arrays)
  os.replace(partial, path)
  return arrays


def _cell(pairs):
  accuracy = [a for a, _ in pairs]
  f1 = [f for _, f in pairs]
  std = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
  return (f'{statistics.fmean(accuracy):.2f} ± {std(accuracy):.2f} / '
          f'{statistics.fmean(f1):.2f} ± {std(f1):.2f}')


def point_rows(point, runs):
  """Markdown rows for one sweep point's runs."""
  arrays = [run_probabilities(run) for run in runs]
  rows = []
  for label, orders, k in [('single', ('ab',), 1), ('single, both orders', ('ab', 'ba'), 1)] + [
      (f'ensemble of {k}', ('ab',), k) for k in range(2, len(runs) + 1)] + [
          (f'ensemble of {k}, both orders', ('ab', 'ba'), k) for k in range(2, len(runs) + 1)]:
    cells = []
    for name in ('selection', 'dev'):
      pairs = []
      for chosen in itertools.combinations(arrays, k):
        mean = np.mean([a[f'{name}_{o}'] for a in chosen for o in orders], axis=0)
        pairs.append(_scores(chosen[0][f'{name}_labels'], mean))
      cells.append(_cell(pairs))
    rows.append(f'| {point} | {label} | {len(runs)} | {cells[0]} | {cells[1]} |')
  return rows


def main():
  # Sets environment variables only: TensorFlow, if a run needs it, then starts as in tfm.
  cli_main.set_tensorflow_defaults()
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('sweeps', nargs='+')
  parser.add_argument('--output', default='')
  args = parser.parse_args()
  lines = ['| sweep / point | combination | seeds | selection accuracy / F1 | '
           'dev accuracy / F1 |', '| --- | --- | --- | --- | --- |']
  for sweep_dir in args.sweeps:
    for point_dir in sorted(glob.glob(os.path.join(sweep_dir, 'runs', '*'))):
      runs = sorted(r for r in glob.glob(os.path.join(point_dir, 'seed_*'))
                    if os.path.exists(os.path.join(r, 'scores.json')))
      if runs:
        name = f'{os.path.basename(sweep_dir.rstrip("/"))} / {os.path.basename(point_dir)}'
        lines += point_rows(name, runs)
  text = '\n'.join(lines) + '\n'
  print(text)
  if args.output:
    with open(args.output, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  main()
