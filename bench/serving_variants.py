"""Serving cost of a soup, an ensemble and both-order averaging, against one model.

    MRPC_DATA_DIR=... .venv/bin/python bench/serving_variants.py RUN_A RUN_B OUTPUT_DIR

RUN_A and RUN_B are two training folders of bert_mrpc_minilm (e.g. two seeds of a sweep). The
soup is RUN_A's weights written by `tfm soup` (a soup is one model whatever went into it, so
its cost does not depend on its ingredients).
Each variant is exported with `tfm export` (final weights) and measured by benchmark.py's
probe in this same process run: median latency of one pair, and examples/s in batches of 64
dev pairs. Reported as ratios to the single model measured alongside.
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchmark  # pylint: disable=g-import-not-at-top
import measure  # pylint: disable=g-import-not-at-top


def main():
  run_a, run_b, output_dir = sys.argv[1:4]
  os.makedirs(output_dir, exist_ok=True)
  soup_dir = os.path.join(output_dir, 'soup')
  if not os.path.exists(os.path.join(soup_dir, 'soup.json')):
    measure.run_measured([f'{measure.BIN}/tfm', 'soup', f'--runs={run_a}', '--data=',
                          f'--output_dir={soup_dir}', '--overwrite'], soup_dir + '.log')
  variants = {
      'single': [f'--model_dir={run_a}'],
      'soup': [f'--model_dir={soup_dir}'],
      'ensemble_of_2': [f'--model_dir={run_a}', f'--members={run_b}'],
      'single_both_orders': [f'--model_dir={run_a}', '--average_orders'],
      'ensemble_of_2_both_orders': [f'--model_dir={run_a}', f'--members={run_b}',
                                    '--average_orders'],
  }
  results = {}
  for name, flags in variants.items():
    export_dir = os.path.join(output_dir, f'export-{name}')
    measure.run_measured([f'{measure.BIN}/tfm', 'export', '--pick=final', '--overwrite',
                          f'--export_dir={export_dir}'] + flags, export_dir + '.log')
    probe = subprocess.run([sys.executable, '-c', benchmark.SERVING_PROBE, export_dir,
                            measure.REPO, os.environ['MRPC_DATA_DIR']], capture_output=True,
                           text=True, check=True, cwd=measure.REPO)
    results[name] = json.loads(probe.stdout.strip().splitlines()[-1])
  single = results['single']
  for name, result in results.items():
    result['throughput_vs_single'] = (result['batch64_examples_per_s'] /
                                      single['batch64_examples_per_s'])
    print(f'{name:26s} latency p50 {result["latency_ms_p50"]:6.1f} ms | batch-64 '
          f'{result["batch64_examples_per_s"]:6.1f} ex/s ({result["throughput_vs_single"]:.2f}x '
          'single)', flush=True)
  with open(os.path.join(output_dir, 'serving_variants.json'), 'w') as f:
    json.dump(results, f, indent=1)


if __name__ == '__main__':
  main()
