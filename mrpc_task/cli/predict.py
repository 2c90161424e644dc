"""`tfm predict`: an export's predictions for a file (or stdin) of sentence pairs.

The output file is written under a temporary name and renamed into place only when every row
was read and scored, so a bad row at line 3 leaves an existing file untouched; an output that
is the input (or lies in the export) is refused before anything is opened.
"""

import contextlib
import sys

from absl import flags
from absl import logging

from mrpc_task import safe_output

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('export_dir', None, 'SavedModel written by `tfm export`.')
  flags.DEFINE_string('input', None,
                      'GLUE TSV (with header) or JSON lines with sentence1/sentence2; - = stdin.')
  flags.DEFINE_string('output', '-', 'Predictions file (.jsonl/.json: JSON lines, else TSV); '
                      '- = stdout.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output file.')
  flags.DEFINE_integer('batch_size', 64, 'Pairs per model call.', lower_bound=1)
  flags.DEFINE_string('sentence1_column', '', 'TSV column / JSON key of the first sentence '
                      '(default: detected; JSON: sentence1).')
  flags.DEFINE_string('sentence2_column', '', 'TSV column / JSON key of the second sentence.')
  flags.DEFINE_string('label_column', '', 'TSV column / JSON key of the label, if any '
                      '(default: Quality, label or is_duplicate when present; none: ignore).')
  flags.DEFINE_enum('on_bad_rows', 'error', ['error', 'skip'],
                    'error: stop at the first bad row; skip: count and report them.')
  flags.mark_flags_as_required(['export_dir', 'input'])


def _load(export_dir: str):
  """(serving signature, classes) of an export, with a clear error for a wrong folder."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import  (tokenizer ops)
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  from mrpc_task import predict  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.isdir(export_dir):
    raise predict.PredictInputError(f'--export_dir={export_dir}: no such folder')
  if not tf.saved_model.contains_saved_model(export_dir):
    raise predict.PredictInputError(
        f'--export_dir={export_dir}: holds no SavedModel (make one with tfm export)')
  serve = tf.saved_model.load(export_dir).signatures.get(export.SIGNATURE_KEY)
  if serve is None:
    raise predict.PredictInputError(
        f'--export_dir={export_dir}: has no {export.SIGNATURE_KEY!r} signature (not made '
        'by tfm export?)')
  classes = export.read_classes(export_dir)
  if classes is None:  # Exported before classes.json existed: class ids stand in for names.
    num_classes = int(serve(sentence1=tf.constant(['a']),
                            sentence2=tf.constant(['a']))['logits'].shape[-1])
    classes = {'class_names': [str(i) for i in range(num_classes)], 'positive_class_id': 1}
    logging.warning('%s has no %s/%s (re-export to get class names); using class ids and '
                    'F1 of class 1', export_dir, export.EXTRA_ASSETS, export.CLASSES_FILE)
  return serve, classes


def main(_):
  from mrpc_task import predict  # pylint: disable=g-import-not-at-top
  from mrpc_task import tsv_reader  # pylint: disable=g-import-not-at-top

  columns = predict.Columns(FLAGS.sentence1_column, FLAGS.sentence2_column, FLAGS.label_column)
  to_stdout = FLAGS.output in ('', '-')
  if not to_stdout:
    safe_output.refuse_overlap(FLAGS.output, {'--input': FLAGS.input,
                                              '--export_dir': FLAGS.export_dir},
                               flag='--output')
    safe_output.check_destination(FLAGS.output, flag='--output', overwrite=FLAGS.overwrite,
                                  folder=False)
  predict.check_input(FLAGS.input)
  serve, classes = _load(FLAGS.export_dir)
  skipped = tsv_reader.SkipLog()
  with contextlib.ExitStack() as stack:
    lines, name = predict.open_input(FLAGS.input)
    if FLAGS.input != '-':
      stack.callback(lines.close)
    if to_stdout:
      out = sys.stdout
    else:
      out = stack.enter_context(safe_output.atomic_file(
          FLAGS.output, 'w', flag='--output', overwrite=FLAGS.overwrite))
    pairs = predict.read_pairs(
        lines, name, class_names=classes['class_names'],
        label_vocabulary=classes.get('label_vocabulary', ()), columns=columns,
        on_bad_rows=FLAGS.on_bad_rows, skipped=skipped)
    stats = predict.predict(serve, pairs, out, class_names=classes['class_names'],
                            positive_class_id=classes['positive_class_id'],
                            batch_size=FLAGS.batch_size,
                            as_json=predict.is_json_output(FLAGS.output))
  for line in predict.summary_lines(stats, skipped):
    print(line, file=sys.stderr)
