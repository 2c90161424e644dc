"""`tfm soup`: training runs of one experiment averaged into one model folder.

    tfm soup --runs='sweep/runs/default/seed_*' --method=greedy --output_dir=DIR

DIR is an ordinary model folder (params.yaml, tfm_run.json, one checkpoint of the averaged
weights, soup.json saying what went in), so `tfm export`, `tfm evaluate` and `tfm predict`
treat it as any run: one model's serving cost (`mrpc_task.tuning.soup`). Greedy soups are
chosen on the selection split; the evaluation splits are only reported.
"""

from absl import flags

from mrpc_task import choices
from mrpc_task.cli import main as cli_main

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_list('runs', [], 'Training folders (glob patterns allowed) of one experiment '
                    'and model.')
  flags.DEFINE_enum('method', 'uniform', list(choices.SOUP_METHODS), 'uniform: average every run; '
                    'greedy: best run first, then each run that does not lower the '
                    'selection-split glue_score.')
  flags.DEFINE_enum('pick', 'final', ['final', 'best'], 'Which checkpoint of each run: '
                    'final (the latest) or best (its best_ckpt/ if kept).')
  flags.DEFINE_string('experiment', None, 'Registered experiment name. Default: the one '
                      'recorded in the runs.')
  flags.DEFINE_list('data', ['selection', 'dev'], 'Data to score the soup on (names as tfm '
                    'evaluate --data; empty: none).')
  flags.DEFINE_string('output_dir', None, 'The new model folder.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output_dir, whole.')
  flags.mark_flags_as_required(['output_dir'])


def main(_):
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task.tuning import soup  # pylint: disable=g-import-not-at-top
  if not FLAGS.runs:
    raise cli_main.UsageError('--runs is required: the training folders to average')
  record = soup.soup_runs(
      FLAGS.runs, FLAGS.output_dir, method=FLAGS.method, pick=FLAGS.pick,
      experiment=FLAGS.experiment, data=FLAGS.data, overwrite=FLAGS.overwrite,
      imports=cli_main.IMPORTED, known=cli_main.registered(),
      labels=('--runs', '--output_dir'))
  singles = record.get('singles_selection_glue_score', {})
  for step in record.get('greedy', []):
    print(f'greedy | {"kept   " if step["kept"] else "dropped"} {step["checkpoint"]} | alone '
          f'{singles[step["checkpoint"]]:.2f} | soup {step["soup_selection_glue_score"]:.2f}')
  kept = record['kept']
  for name, scores in record['scores'].items():
    shown = ' | '.join(f'{key} {value:.4f}' for key, value in scores.items() if '/' not in key)
    print(f'soup of {len(kept)} | {name}: {shown}')
  print(f'Soup of {len(kept)} of {len(record["runs"])} runs ({FLAGS.method}) in '
        f'{FLAGS.output_dir}: tfm export --model_dir={FLAGS.output_dir} --export_dir=...')
