"""`tfm sweep`: every grid point of an experiment for N seeds, one run after another.

    tfm sweep --experiment=NAME --grid='KEY=V1,V2;KEY2=V3' --seeds=5 --output_dir=DIR

Each run trains on the training split minus its selection split and evaluates on that split
(`registry/templates/selection.yaml`; `--selection=false` keeps the experiment's own data),
then its final weights are scored on the selection split and on the task's evaluation splits
(`tfm evaluate`). Every config is built and validated before the first run, so a misspelt
key fails at once. Resumable: a run whose `scores.json` exists is skipped, one cut short
resumes from its last checkpoint. After each run DIR/results.{csv,md,png} are rewritten: mean
± std over seeds of the task's metrics and glue_score. The plan and the table are
`mrpc_task.tuning.sweep`'s; this module starts one `tfm` process per training and scoring.

Layout: DIR/sweep.json (what the runs share), DIR/runs/POINT/seed_N/ (a model_dir with its
train.log and scores.json).
"""

import json
import subprocess
import sys
from typing import List

from absl import flags

from mrpc_task import choices
from mrpc_task import errors
from mrpc_task.cli import main as cli_main

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('experiment', None, 'Registered experiment name, e.g. bert_mrpc_minilm.')
  flags.DEFINE_string('grid', '', "Points to run: 'KEY=V1,V2;KEY2=V3,V4' (dotted config keys; "
                      'every combination). Empty: the experiment as it is.')
  flags.DEFINE_integer('seeds', 5, 'Runs per point, seeds first_seed, first_seed+1, ...',
                       lower_bound=1)
  flags.DEFINE_integer('first_seed', 0, 'The first seed.', lower_bound=0)
  flags.DEFINE_string('output_dir', None, 'Folder of the sweep (runs and results); an '
                      'existing sweep there is resumed.')
  flags.DEFINE_multi_string('config_file', None, 'YAML files applied to every run.')
  flags.DEFINE_string('params_override', None, 'KEY=VALUE,..., YAML/JSON or a YAML file '
                      '(as tfm train takes it), applied to every run under the grid values '
                      'and seeds.')
  flags.DEFINE_list('seed_keys', list(choices.SEED_KEYS), 'The config keys each seed sets. '
                    'task.train_data.seed alone: runs share their initial head (and '
                    'task.seed), as the ingredients of a weight soup must.')
  flags.DEFINE_bool('selection', True, 'Train without the selection split and evaluate on it '
                    '(false: the experiment\'s own training and evaluation data).')
  flags.mark_flags_as_required(['experiment', 'output_dir'])


class SweepRunError(errors.InputError):
  """A run of the sweep failed; the message names its log."""


def _tfm(command: str, *args: str) -> List[str]:
  imports = [f'--import={module}' for module in cli_main.IMPORTED]
  return [sys.executable, '-m', 'mrpc_task.cli.main', command, *imports, *args]


def _call(command: List[str], log_path: str, what: str):
  with open(log_path, 'a') as log:
    log.write(f'$ {" ".join(command)}\n')
    log.flush()
    code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
  if code:
    raise SweepRunError(f'{what} failed (exit code {code}); its log: {log_path}. Fix it and '
                        'run the same tfm sweep again: finished runs are kept')


def main(_):
  from registry import experiments  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import sweep  # pylint: disable=g-import-not-at-top
  plan = sweep.plan(
      FLAGS.experiment, grid=FLAGS.grid,
      seeds=list(range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds)),
      output_dir=FLAGS.output_dir, config_files=FLAGS.config_file or (),
      params_override=FLAGS.params_override or '', seed_keys=FLAGS.seed_keys,
      selection_template=experiments.template_path('selection') if FLAGS.selection else '',
      imports=cli_main.IMPORTED, known=cli_main.registered())
  sweep.claim_folder(plan, label='--output_dir')

  def train(run_dir, override, log_path):
    _call(_tfm('train_experiment', f'--experiment={plan.experiment}', '--mode=train_and_eval',
               f'--model_dir={run_dir}', *[f'--config_file={p}' for p in plan.config_files],
               f'--params_override={json.dumps(override)}'), log_path, f'training of {run_dir}')

  def score(run_dir, data, scores_path, log_path):
    _call(_tfm('evaluate', f'--model_dir={run_dir}', f'--data={",".join(data)}',
               '--overwrite', f'--output={scores_path}'), log_path, f'scoring of {run_dir}')

  sweep.run(plan, train=train, score=score, report=lambda line: print(line, flush=True))
