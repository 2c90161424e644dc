"""`tfm report`: PNG plots of a run from what its trainer logged (`mrpc_task.report`)."""

from absl import flags

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('model_dir', None, 'Training directory (its train/ and validation/ '
                      'TensorBoard event files are read).')
  flags.DEFINE_string('output_dir', None, 'Where to write the PNGs (default: MODEL_DIR/report).')
  flags.DEFINE_bool('overwrite', False, 'Replace PNGs of an earlier report in --output_dir.')
  flags.mark_flags_as_required(['model_dir'])


def main(_):
  from mrpc_task import report  # pylint: disable=g-import-not-at-top
  result = report.write_report(FLAGS.model_dir, FLAGS.output_dir, overwrite=FLAGS.overwrite,
                               labels=('--model_dir', '--output_dir'))
  for path in result.written:
    print(f'Wrote {path}')
  for problem in result.problems:
    print(f'Not written: {problem}')
