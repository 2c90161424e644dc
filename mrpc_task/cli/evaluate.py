"""`tfm evaluate`: one checkpoint of a run scored on named data (an evaluation split, the
selection split, the training split), with the task's own metrics.

By default the latest checkpoint (the final weights), not the best one: a best checkpoint was
chosen on the data the trainer evaluated on, and scoring it there again flatters it. It
computes in float32, as the export serves, whatever the run trained in: bfloat16 scores move
by a borderline pair from one process to the next. Prints one line per data; `--output=FILE.json`
also writes them (under a temporary name first).
"""

import json

from absl import flags

from mrpc_task.cli import main as cli_main

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('experiment', None, 'Registered experiment name. Default: the one '
                      'recorded in MODEL_DIR by tfm train_experiment.')
  flags.DEFINE_string('model_dir', None, 'Training directory: its params.yaml and checkpoints.')
  flags.DEFINE_string('checkpoint_path', None, 'Checkpoint prefix or directory. Default: see '
                      '--pick.')
  flags.DEFINE_enum('pick', 'final', ['final', 'best'], 'Which checkpoint of each run '
                    '(model_dir and --members) when --checkpoint_path is not given: final (the '
                    'latest) or best (its best_ckpt/ if kept), as tfm export --pick.')
  flags.DEFINE_list('data', ['dev'], "Comma-separated: the task's evaluation splits (dev; "
                    "MNLI's dev_matched, dev_mismatched), selection (the selection split of the "
                    'training split), or the training split (train).')
  flags.DEFINE_string('output', None, 'Also write the scores to this JSON file.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output file.')
  flags.DEFINE_list('members', [], 'Further training folders of the same model: score the '
                    'ensemble, as tfm export --members serves it.')
  flags.DEFINE_bool('average_orders', False, 'Score the mean over both sentence orders, as '
                    'tfm export --average_orders serves it (symmetric tasks only).')
  flags.DEFINE_multi_string('config_file', None, 'YAML files applied after params.yaml.')
  flags.DEFINE_string('params_override', None, 'YAML/JSON string applied last.')
  flags.mark_flags_as_required(['model_dir'])


def _line(name: str, scores: dict, checkpoint: str) -> str:
  shown = ' | '.join(f'{key} {value:.4f}' for key, value in scores.items()
                     if '/' not in key)  # Confusion cells stay in the JSON.
  return f'{name}: {shown} | {checkpoint}'


def main(_):
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import safe_output  # pylint: disable=g-import-not-at-top
  from mrpc_task.tuning import evaluation  # pylint: disable=g-import-not-at-top
  if FLAGS.output:
    safe_output.refuse_overlap(FLAGS.output, {'--model_dir': FLAGS.model_dir},
                               label='--output', allow_inside=True)
    safe_output.check_destination(FLAGS.output, label='--output', overwrite=FLAGS.overwrite,
                                  folder=False)
  scores = evaluation.evaluate_run(
      FLAGS.model_dir, FLAGS.data, experiment=FLAGS.experiment,
      checkpoint_path=FLAGS.checkpoint_path, pick=FLAGS.pick, members=FLAGS.members,
      average_orders=FLAGS.average_orders, config_files=FLAGS.config_file or (),
      params_override=FLAGS.params_override, known=cli_main.registered(),
      labels={'model_dir': '--model_dir', 'checkpoint_path': '--checkpoint_path',
              'members': '--members'})
  for name in dict.fromkeys(FLAGS.data):
    print(_line(name, scores[name], scores['checkpoint']), flush=True)
  if FLAGS.output:
    with safe_output.atomic_file(FLAGS.output, label='--output',
                                 overwrite=FLAGS.overwrite) as f:
      json.dump(scores, f, indent=1)
