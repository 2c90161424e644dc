"""`tfm evaluate`: one checkpoint of a run scored on dev, the selection split or all of train.

By default the latest checkpoint (the final weights), not the best one: a best checkpoint was
chosen on the data the trainer evaluated on, and scoring it there again flatters it. It
computes in float32, as the export serves, whatever the run trained in: bfloat16 scores move
by a borderline pair from one process to the next (seen here: 79.66 and 79.90 dev accuracy
for one checkpoint). Prints one line per data; `--output=FILE.json` also writes them (under a
temporary name first).
"""

import json

from absl import flags

from mrpc_task import safe_output
from mrpc_task.cli import export as export_cli
from mrpc_task.cli import main as cli_main
from mrpc_task.cli import run_dir

FLAGS = flags.FLAGS


def define_flags():
  import registry  # pylint: disable=g-import-not-at-top,unused-import
  from mrpc_task import evaluation  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('experiment', None, 'Registered experiment name. Default: the one '
                      'recorded in MODEL_DIR by tfm train_experiment.')
  flags.DEFINE_string('model_dir', None, 'Training directory: its params.yaml and checkpoints.')
  flags.DEFINE_string('checkpoint_path', None, 'Checkpoint prefix or directory. Default: see '
                      '--pick.')
  flags.DEFINE_enum('pick', 'final', ['final', 'best'], 'Which checkpoint of each run '
                    '(model_dir and --members) when --checkpoint_path is not given: final (the '
                    'latest) or best (its best_ckpt/ if kept), as tfm export --pick.')
  flags.DEFINE_list('data', ['dev'], f'Comma-separated, from {", ".join(evaluation.DATA_NAMES)} '
                    '(selection: the selection split of the training file).')
  flags.DEFINE_string('output', None, 'Also write the scores to this JSON file.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output file.')
  flags.DEFINE_list('members', [], 'Further training folders of the same model: score the '
                    'probability ensemble, as tfm export --members serves it.')
  flags.DEFINE_bool('average_orders', False, 'Score the mean over both sentence orders, as '
                    'tfm export --average_orders serves it (symmetric tasks only).')
  flags.DEFINE_multi_string('config_file', None, 'YAML files applied after params.yaml.')
  flags.DEFINE_string('params_override', None, 'YAML/JSON string applied last.')
  flags.mark_flags_as_required(['model_dir'])


def main(_):
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import evaluation  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top

  if FLAGS.output:
    safe_output.refuse_overlap(FLAGS.output, {'--model_dir': FLAGS.model_dir}, flag='--output',
                               allow_inside=True)
    safe_output.check_destination(FLAGS.output, flag='--output', overwrite=FLAGS.overwrite,
                                  folder=False)
  params = export_cli.export_params(FLAGS.experiment, FLAGS.model_dir, FLAGS.config_file,
                                    FLAGS.params_override)
  names = list(dict.fromkeys(FLAGS.data))
  data_configs = {name: evaluation.named_data(params.task, name) for name in names}
  checkpoint = FLAGS.checkpoint_path or export_cli.default_export_checkpoint(
      FLAGS.model_dir, params.trainer.best_checkpoint_export_subdir, pick=FLAGS.pick)
  experiment = FLAGS.experiment or run_dir.recorded_experiment(FLAGS.model_dir)
  if FLAGS.average_orders and not params.task.symmetric_pairs:
    raise cli_main.UsageError(f'--average_orders: experiment {experiment} declares '
                              'task.symmetric_pairs=false (the order of its sentences matters)')
  member_paths = export_cli.member_checkpoints(FLAGS.members, experiment, params, FLAGS.pick)
  task = task_factory.get_task(params.task, logging_dir=FLAGS.model_dir)
  model = task.build_model()
  checkpoint = export.restore_classifier(model, checkpoint)
  members = []
  for path in member_paths:
    members.append(task.build_model())
    export.restore_classifier(members[-1], path, key='--members')
  scores = {'checkpoint': checkpoint, 'members': member_paths,
            'average_orders': FLAGS.average_orders}
  for name, config in data_configs.items():
    scores[name] = evaluation.evaluate(task, model, config, members=members,
                                       average_orders=FLAGS.average_orders)
    print(f'{name}: accuracy {scores[name]["accuracy"]:.4f} | f1 {scores[name]["f1"]:.4f} | '
          f'loss {scores[name]["validation_loss"]:.4f} | {checkpoint}', flush=True)
  if FLAGS.output:
    with safe_output.atomic_file(FLAGS.output, flag='--output',
                                 overwrite=FLAGS.overwrite) as f:
      json.dump(scores, f, indent=1)
