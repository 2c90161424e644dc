"""`tfm predict`: an export's predictions for a file (or stdin) of examples.

TSV or JSON lines in; one row per example out (line, class and probabilities, or the score),
or with --output_format=glue the GLUE leaderboard's rows (index, prediction). The output is
written under a temporary name and renamed into place only when every row was read and
scored (`mrpc_task.predict.predict_file`).
"""

import sys

from absl import flags

from mrpc_task import choices

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('export_dir', None, 'SavedModel written by `tfm export`.')
  flags.DEFINE_string('input', None, 'GLUE TSV or JSON lines with the export\'s inputs '
                      '(sentence, or sentence1/sentence2); - = stdin.')
  flags.DEFINE_string('output', '-', 'Predictions file (.jsonl/.json: JSON lines, else TSV); '
                      '- = stdout.')
  flags.DEFINE_enum('output_format', 'rows', list(choices.PREDICT_FORMATS),
                    'rows: line, class and probabilities (or score); glue: the GLUE '
                    'leaderboard\'s index<TAB>prediction, for a task\'s unlabeled test.tsv.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output file.')
  flags.DEFINE_integer('batch_size', 64, 'Examples per model call.', lower_bound=1)
  flags.DEFINE_string('sentence1_column', '', 'TSV column / JSON key of the (first) text '
                      '(default: detected; JSON: the export\'s input names).')
  flags.DEFINE_string('sentence2_column', '', 'TSV column / JSON key of the second text of a '
                      'pair task.')
  flags.DEFINE_string('label_column', '', 'TSV column / JSON key of the label, if any '
                      '(default: the task\'s, or Quality, label, is_duplicate, gold_label, score '
                      'when present; none: ignore).')
  flags.DEFINE_enum('on_bad_rows', 'error', ['error', 'skip'],
                    'error: stop at the first bad row; skip: count and report them.')
  flags.mark_flags_as_required(['export_dir', 'input'])


def main(_):
  from mrpc_task import predict  # pylint: disable=g-import-not-at-top
  if FLAGS.sentence2_column and not FLAGS.sentence1_column:
    raise flags.ValidationError('--sentence2_column needs --sentence1_column too')
  texts = tuple(c for c in (FLAGS.sentence1_column, FLAGS.sentence2_column) if c)
  stats, skipped = predict.predict_file(
      FLAGS.export_dir, FLAGS.input, FLAGS.output,
      columns=predict.Columns(texts=texts, label=FLAGS.label_column),
      batch_size=FLAGS.batch_size, on_bad_rows=FLAGS.on_bad_rows,
      output_format=FLAGS.output_format, overwrite=FLAGS.overwrite,
      labels=('--export_dir', '--input', '--output'))
  for line in predict.summary_lines(stats, skipped):
    print(line, file=sys.stderr)
