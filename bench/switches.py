"""Wall-clock A/B of each speed switch of `bert_mrpc_minilm`: is it worth its place?

For every switch, short trainings of the real recipe on real MRPC run with the switch on and
off (Model Garden's default), everything else as `bert_mrpc_minilm` has it, alternating which
goes first from round to round so that a drift of the machine hits both. A run's rate is the
median examples/s of its training loops after the first (tracing). A switch has its place in
`registry/templates/cpu_fast.yaml` (bfloat16: `cpu_bfloat16.yaml`; an environment switch:
tfm's defaults, `cli.main.set_tensorflow_defaults`) only when every `on` run is faster than
every `off` run: the gain is then larger than the run-to-run spread. `one_call_per_step` is a candidate that
failed this (docs/PERFORMANCE.md); it stays here to be measured again.

    MRPC_DATA_DIR=../shared/data/mrpc .venv/bin/python bench/switches.py --rounds=2

Writes OUTPUT_DIR/switches.json and prints a Markdown table (docs/PERFORMANCE.md).
"""

import json
import os
import statistics

from absl import app
from absl import flags

import measure
from mrpc_task import cpu_features

flags.DEFINE_string('output_dir', 'runs/switches', 'Where run logs and switches.json go.')
flags.DEFINE_integer('rounds', 2, 'Runs per switch and arm.')
flags.DEFINE_integer('steps_per_loop', 38, 'Steps per training loop: the recipe\'s 38 by default.')
flags.DEFINE_integer('loops', 4, 'Loops per run; the first (tracing) is not timed.')
flags.DEFINE_list('switches', None, 'Only these switches (default: all of SWITCHES).')
FLAGS = flags.FLAGS

EXPERIMENT = 'bert_mrpc_minilm'
# name: (override with the switch on, override with it off as Model Garden has it).
SWITCHES = {
    'bucketed_padding': ({'task': {'train_data': {'padding': 'bucketed'}}},
                         {'task': {'train_data': {'padding': 'static'}}}),
    'bfloat16': ({'runtime': {'mixed_precision_dtype': 'bfloat16'}},
                 {'runtime': {'mixed_precision_dtype': ''}}),
    'fast_dropout': ({'task': {'model': {'fast_dropout': True}}},
                     {'task': {'model': {'fast_dropout': False}}}),
    'xla_training_kernels': ({'task': {'model': {'xla_training_kernels': True}}},
                             {'task': {'model': {'xla_training_kernels': False}}}),
    'dense_embedding_updates': ({'task': {'dense_embedding_updates': True}},
                                {'task': {'dense_embedding_updates': False}}),
    'one_call_per_step': ({'trainer': {'train_tf_while_loop': False}},
                          {'trainer': {'train_tf_while_loop': True}}),
    'output_range_1': ({'task': {'model': {'encoder': {'bert': {'output_range': 1}}}}},
                       {'task': {'model': {'encoder': {'bert': {'output_range': None}}}}}),
}
# name: (environment with the switch on, environment with it off), for what TensorFlow reads
# from its environment when it starts (tfm's defaults: `cli.main.set_tensorflow_defaults`).
# The off arm is forced off, which is TensorFlow's own default only where it is measured for:
# x86 CPUs without AVX512_VNNI, AVX512_BF16, AVX-VNNI or AMX (tfm sets it on x86 only).
ENV_SWITCHES = {
    'onednn': ({'TF_ENABLE_ONEDNN_OPTS': '1'}, {'TF_ENABLE_ONEDNN_OPTS': '0'}),
}


def _merged(*overrides):
  """Deep merge of nested override dicts (later wins)."""
  merged = {}
  for override in overrides:
    for key, value in override.items():
      if isinstance(value, dict) and isinstance(merged.get(key), dict):
        merged[key] = _merged(merged[key], value)
      else:
        merged[key] = value
  return merged


def _short_run() -> dict:
  steps = FLAGS.steps_per_loop * FLAGS.loops
  return {'trainer': {
      'train_steps': steps, 'steps_per_loop': FLAGS.steps_per_loop,
      'summary_interval': FLAGS.steps_per_loop,
      'checkpoint_interval': steps,
      'optimizer_config': {'learning_rate': {'polynomial': {'decay_steps': steps}},
                           'warmup': {'linear': {'warmup_steps': steps // 10}}}}}


def _train(name: str, arm: str, round_: int, override: dict, env: dict) -> float:
  model_dir = os.path.join(FLAGS.output_dir, f'{name}-{arm}-{round_}')
  log = model_dir + '.log'
  measure.run_measured(
      [f'{measure.BIN}/tfm', 'train_experiment', f'--experiment={EXPERIMENT}', '--mode=train',
       f'--model_dir={model_dir}', f'--params_override={json.dumps(override)}'], log,
      env={**os.environ, **env})
  rate = measure.steady_examples_per_second(log)
  print(json.dumps({'switch': name, 'arm': arm, 'round': round_, 'examples_per_s': rate}),
        flush=True)
  return rate


def main(_):
  if os.path.exists(FLAGS.output_dir):
    raise SystemExit(f'--output_dir={FLAGS.output_dir} exists; choose another or delete it')
  os.makedirs(FLAGS.output_dir)
  names = FLAGS.switches or [*SWITCHES, *ENV_SWITCHES]
  if not cpu_features.is_x86() and not FLAGS.switches:
    names.remove('onednn')  # tfm leaves it to TensorFlow there.
  unknown = sorted(set(names) - set(SWITCHES) - set(ENV_SWITCHES))
  if unknown:
    raise SystemExit(f'--switches: unknown {unknown}; known: {[*SWITCHES, *ENV_SWITCHES]}')
  fast_bfloat16 = cpu_features.has_fast_bfloat16()
  if fast_bfloat16 is False and not FLAGS.switches:
    # Emulated bfloat16 trains ~18x slower here: its on arm alone would take hours.
    names.remove('bfloat16')
    print('bfloat16 left out: this CPU has neither AVX512_BF16 nor AMX (--switches=bfloat16 '
          'measures it anyway)', flush=True)
  # The baseline the other switches are measured against: the experiment computes in
  # bfloat16 only on a CPU with it (registry/experiments.py).
  results = {'cpu_has_fast_bfloat16': fast_bfloat16}
  for name in names:
    if name in SWITCHES:
      (on, off), (on_env, off_env) = SWITCHES[name], ({}, {})
    else:
      (on, off), (on_env, off_env) = ({}, {}), ENV_SWITCHES[name]
    arms = {'on': (on, on_env), 'off': (off, off_env)}
    rates = {'on': [], 'off': []}
    for round_ in range(FLAGS.rounds):
      for arm in ('on', 'off') if round_ % 2 == 0 else ('off', 'on'):
        override, env = arms[arm]
        rates[arm].append(_train(name, arm, round_, _merged(_short_run(), override), env))
    gain = statistics.mean(rates['on']) / statistics.mean(rates['off']) - 1
    results[name] = {**rates, 'gain': gain, 'keeps_its_place': min(rates['on']) > max(rates['off'])}
  with open(os.path.join(FLAGS.output_dir, 'switches.json'), 'w') as f:
    json.dump(results, f, indent=2)
  print('| switch | on: examples/s | off: examples/s | gain | every on run faster |')
  print('| --- | --- | --- | ---: | --- |')
  for name, r in results.items():
    if not isinstance(r, dict):
      continue
    print(f"| {name} | {' / '.join(f'{v:.1f}' for v in r['on'])} | "
          f"{' / '.join(f'{v:.1f}' for v in r['off'])} | {100 * r['gain']:+.1f}% | "
          f"{'yes' if r['keeps_its_place'] else 'no'} |")


if __name__ == '__main__':
  app.run(main)
