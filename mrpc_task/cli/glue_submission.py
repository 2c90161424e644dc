"""`tfm glue_submission`: the GLUE leaderboard's files from one export per task.

    tfm glue_submission --glue_dir=GLUE --export_dirs=mrpc=runs/mrpc/export,mnli=... \
      --output_dir=submission

Writes CoLA.tsv, SST-2.tsv, MRPC.tsv, STS-B.tsv, QQP.tsv, MNLI-m.tsv, MNLI-mm.tsv, QNLI.tsv,
RTE.tsv, WNLI.tsv (and AX.tsv from the MNLI export when GLUE_DIR holds
diagnostic/diagnostic.tsv) for the tasks given, into a new folder ready to zip
(`mrpc_task.glue_submission`); lists the files a complete submission still needs.
"""

from absl import flags

from mrpc_task.cli import main as cli_main

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('glue_dir', None, 'GLUE\'s data folder (CoLA/, SST-2/, ..., '
                      'diagnostic/), as download_glue_data.py writes it.')
  flags.DEFINE_list('export_dirs', [], 'TASK=EXPORT_DIR,...: the export answering each task '
                    '(cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli; or GLUE\'s folder '
                    'names).')
  flags.DEFINE_string('output_dir', None, 'The new folder of leaderboard files.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output_dir, whole.')
  flags.DEFINE_integer('batch_size', 64, 'Examples per model call.', lower_bound=1)
  flags.mark_flags_as_required(['glue_dir', 'output_dir'])


def main(_):
  from mrpc_task import glue_submission  # pylint: disable=g-import-not-at-top
  exports = {}
  for item in FLAGS.export_dirs:
    task, equals, path = item.partition('=')
    if not equals or not task.strip() or not path.strip():
      raise cli_main.UsageError(f'--export_dirs: {item!r} is not TASK=EXPORT_DIR')
    if task.strip() in exports:
      raise cli_main.UsageError(f'--export_dirs: {task.strip()} is given twice')
    exports[task.strip()] = path.strip()
  if not exports:
    raise cli_main.UsageError('--export_dirs is required: TASK=EXPORT_DIR for each task')
  submission = glue_submission.write_submission(
      FLAGS.glue_dir, exports, FLAGS.output_dir, overwrite=FLAGS.overwrite,
      batch_size=FLAGS.batch_size, labels=('--glue_dir', '--export_dirs', '--output_dir'))
  for path, rows in submission.written:
    print(f'Wrote {path} ({rows} rows)')
  if submission.missing:
    print(f'Missing for a complete GLUE submission: {", ".join(submission.missing)}')
