"""`tfm`: the command line. Each sub-command reuses Model Garden's flags and drivers.

    tfm train_experiment --experiment=NAME --mode=MODE --model_dir=DIR [Model Garden flags]
    tfm export --experiment=NAME --model_dir=DIR --export_dir=DIR [--checkpoint_path=CKPT]
    tfm convert_checkpoint --from=hf|tf1 --input=PATH --output=DIR
    tfm predict --export_dir=DIR --input=FILE|- [--output=FILE] [--batch_size=N]
    tfm report --model_dir=DIR [--output_dir=DIR]

`--import=MODULE` (any command, repeatable) imports a module of your own registrations first.
`train_experiment` is `official.nlp.train.main` with our experiments registered, so its flags
(`--config_file`, `--params_override`, `--gin_file`, `--gin_params`, `--tpu`, ...) mean exactly
what they mean for Model Garden's own trainer.
"""

import importlib
import os
import sys
import types
from typing import Callable, Dict, List, Optional

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def _train_experiment(argv: List[str]):
  from official.common import flags as tfm_flags  # pylint: disable=g-import-not-at-top
  from official.nlp import train  # pylint: disable=g-import-not-at-top
  import registry  # pylint: disable=g-import-not-at-top,unused-import

  from mrpc_task import hooks  # pylint: disable=g-import-not-at-top
  from mrpc_task import progress  # pylint: disable=g-import-not-at-top

  tfm_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  hooks.install()

  def main(args):
    train.main(args)
    progress.print_summary(FLAGS.experiment, IMPORTED)

  app.run(main, argv=argv)


def _define_export_flags():
  flags.DEFINE_string('experiment', None, 'Registered experiment name, e.g. bert_mrpc.')
  flags.DEFINE_string('model_dir', None,
                      'Training directory: its params.yaml and checkpoints are used.')
  flags.DEFINE_string('export_dir', None, 'Where to write the SavedModel.')
  flags.DEFINE_string('checkpoint_path', None,
                      'Checkpoint prefix or directory. Default: model_dir/best_ckpt if the '
                      'trainer kept a best checkpoint, else the latest in model_dir.')
  flags.DEFINE_multi_string('config_file', None, 'YAML files applied after params.yaml.')
  flags.DEFINE_string('params_override', None, 'YAML/JSON string applied last.')
  flags.DEFINE_bool('trim_padding', True,
                    'Pad each request batch to its longest pair instead of seq_length.')
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  flags.DEFINE_integer('sort_chunk_size', export.DEFAULT_SORT_CHUNK_SIZE,
                       'With --trim_padding, run each request sorted by length in chunks of '
                       'this many pairs, each padded to its own longest (0: one batch).')
  flags.mark_flags_as_required(['experiment', 'model_dir', 'export_dir'])


class _ParserFlags(types.SimpleNamespace):
  """The flag values `train_utils.ExperimentParser` reads, without defining absl flags."""

  def __contains__(self, name):
    return hasattr(self, name)


def export_params(experiment: str, model_dir: str, config_files: Optional[List[str]] = None,
                  params_override: Optional[str] = None):
  """The experiment config as trained: registered defaults <- params.yaml <- files <- override."""
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  import registry  # pylint: disable=g-import-not-at-top,unused-import

  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  saved = os.path.join(model_dir, 'params.yaml')
  has_saved = tf.io.gfile.exists(saved)
  if not has_saved:
    logging.warning('%s not found: exporting with the registered defaults of %s', saved,
                    experiment)
  files = ([saved] if has_saved else []) + list(config_files or [])
  parser_flags = _ParserFlags(
      experiment=experiment, config_file=files, params_override=params_override, tpu=None,
      tf_data_service=None, tf_data_service_job_name=None)
  params = train_utils.ExperimentParser(parser_flags).parse()
  params.validate()
  params.lock()
  return params


def default_export_checkpoint(model_dir: str, best_subdir: str) -> str:
  """The best checkpoint kept by the trainer if any, else the latest in model_dir."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  best = os.path.join(model_dir, best_subdir) if best_subdir else ''
  for directory in ([best] if best else []) + [model_dir]:
    if directory and tf.train.latest_checkpoint(directory):
      return tf.train.latest_checkpoint(directory)
  raise FileNotFoundError(f'--model_dir={model_dir!r} holds no checkpoint to export')


def _export_main(_):
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top

  params = export_params(FLAGS.experiment, FLAGS.model_dir, FLAGS.config_file,
                         FLAGS.params_override)
  checkpoint = FLAGS.checkpoint_path or default_export_checkpoint(
      FLAGS.model_dir, params.trainer.best_checkpoint_export_subdir)
  task = task_factory.get_task(params.task, logging_dir=FLAGS.model_dir)
  path = export.export_model(params.task, task.build_model(), FLAGS.export_dir, checkpoint,
                             trim_padding=FLAGS.trim_padding,
                             sort_chunk_size=FLAGS.sort_chunk_size)
  print(f'Exported {checkpoint} to {path}')


def _export(argv: List[str]):
  _define_export_flags()
  app.run(_export_main, argv=argv)


def _define_convert_flags():
  flags.DEFINE_enum('from', None, ['hf', 'tf1'], 'Checkpoint format to convert from.')
  flags.DEFINE_string('input', None,
                      'hf: folder with config.json + model.safetensors (+ vocab.txt). '
                      'tf1: checkpoint prefix, with bert_config.json and vocab.txt beside it.')
  flags.DEFINE_string('output', None, 'Output folder: encoder checkpoint, config, vocab.')
  flags.mark_flags_as_required(['from', 'input', 'output'])


def _convert_main(_):
  from mrpc_task import checkpoint_conversion  # pylint: disable=g-import-not-at-top

  source = FLAGS['from'].value
  if source == 'hf':
    encoder_config = checkpoint_conversion.convert_hf(FLAGS.input, FLAGS.output)
  else:
    folder = os.path.dirname(FLAGS.input)
    encoder_config = checkpoint_conversion.convert_tf1(
        FLAGS.input, os.path.join(folder, 'bert_config.json'),
        os.path.join(folder, 'vocab.txt'), FLAGS.output)
  print(f'Wrote {os.path.join(FLAGS.output, "encoder")} (+ bert_config.json, vocab.txt).')
  print('Use it with:')
  print(f'  task.init_checkpoint: {os.path.join(FLAGS.output, "encoder")}')
  print('  task.model.encoder:')
  print('    type: bert')
  print('    bert:')
  for key, value in encoder_config.get().as_dict().items():
    if key == 'output_range':  # How the model runs, not what the checkpoint is: the
      continue                 # experiment's own value (1 for [CLS] heads) must stay.
    print(f'      {key}: {"null" if value is None else value}')


def _convert(argv: List[str]):
  _define_convert_flags()
  app.run(_convert_main, argv=argv)


def _define_predict_flags():
  flags.DEFINE_string('export_dir', None, 'SavedModel written by `tfm export`.')
  flags.DEFINE_string('input', None,
                      'GLUE TSV (with header) or JSON lines with sentence1/sentence2; - = stdin.')
  flags.DEFINE_string('output', '-', 'Predictions file (.jsonl/.json: JSON lines, else TSV); '
                      '- = stdout.')
  flags.DEFINE_integer('batch_size', 64, 'Pairs per model call.')
  flags.DEFINE_string('sentence1_column', '', 'TSV column / JSON key of the first sentence '
                      '(default: detected; JSON: sentence1).')
  flags.DEFINE_string('sentence2_column', '', 'TSV column / JSON key of the second sentence.')
  flags.DEFINE_string('label_column', '', 'TSV column / JSON key of the label, if any '
                      '(default: Quality, label or is_duplicate when present; none: ignore).')
  flags.DEFINE_enum('on_bad_rows', 'error', ['error', 'skip'],
                    'error: stop at the first bad row; skip: count and report them.')
  flags.mark_flags_as_required(['export_dir', 'input'])


def _predict_main(_):
  import contextlib  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import  (tokenizer ops)
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  from mrpc_task import predict  # pylint: disable=g-import-not-at-top

  if FLAGS.batch_size <= 0:
    raise app.UsageError(f'--batch_size={FLAGS.batch_size}: must be > 0')
  columns = predict.Columns(FLAGS.sentence1_column, FLAGS.sentence2_column, FLAGS.label_column)
  serve = tf.saved_model.load(FLAGS.export_dir).signatures[export.SIGNATURE_KEY]
  classes = export.read_classes(FLAGS.export_dir)
  if classes is None:  # Exported before classes.json existed: class ids stand in for names.
    num_classes = int(serve(sentence1=tf.constant(['a']),
                            sentence2=tf.constant(['a']))['logits'].shape[-1])
    classes = {'class_names': [str(i) for i in range(num_classes)], 'positive_class_id': 1}
    logging.warning('%s has no %s/%s (re-export to get class names); using class ids and '
                    'F1 of class 1', FLAGS.export_dir, export.EXTRA_ASSETS, export.CLASSES_FILE)
  skipped = predict.SkipLog()
  with contextlib.ExitStack() as stack:
    lines, name = predict.open_input(FLAGS.input)
    if hasattr(lines, 'close') and FLAGS.input != '-':
      stack.callback(lines.close)
    out, as_json, close = predict.open_output(FLAGS.output)
    if close:
      stack.callback(out.close)
    pairs = predict.read_pairs(
        lines, name, class_names=classes['class_names'],
        label_vocabulary=classes.get('label_vocabulary', ()), columns=columns,
        on_bad_rows=FLAGS.on_bad_rows, skipped=skipped)
    stats = predict.predict(serve, pairs, out, class_names=classes['class_names'],
                            positive_class_id=classes['positive_class_id'],
                            batch_size=FLAGS.batch_size, as_json=as_json)
  for line in predict.summary_lines(stats, skipped):
    print(line, file=sys.stderr)


def _predict(argv: List[str]):
  _define_predict_flags()
  app.run(_predict_main, argv=argv)


def _define_report_flags():
  flags.DEFINE_string('model_dir', None, 'Training directory (its train/ and validation/ '
                      'TensorBoard event files are read).')
  flags.DEFINE_string('output_dir', None, 'Where to write the PNGs (default: MODEL_DIR/report).')
  flags.mark_flags_as_required(['model_dir'])


def _report_main(_):
  from mrpc_task import report  # pylint: disable=g-import-not-at-top
  for path in report.write_report(FLAGS.model_dir, FLAGS.output_dir):
    print(f'Wrote {path}')


def _report(argv: List[str]):
  _define_report_flags()
  app.run(_report_main, argv=argv)


COMMANDS: Dict[str, Callable[[List[str]], None]] = {
    'train_experiment': _train_experiment,
    'export': _export,
    'convert_checkpoint': _convert,
    'predict': _predict,
    'report': _report,
}


IMPORT_FLAG = '--import='
IMPORTED: List[str] = []  # Modules imported with --import, to repeat them in printed commands.


def import_user_modules(argv: List[str]) -> List[str]:
  """Imports every `--import=MODULE` (your own registrations) and returns argv without them.

  Handled before absl parses flags, so a module's `exp_factory` registrations exist when
  `--experiment` is looked up. The working directory is importable, as with `python -m`.
  """
  modules = [arg[len(IMPORT_FLAG):] for arg in argv if arg.startswith(IMPORT_FLAG)]
  if modules and os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
  for module in modules:
    importlib.import_module(module)
    IMPORTED.append(module)
  return [arg for arg in argv if not arg.startswith(IMPORT_FLAG)]


def main(argv: Optional[List[str]] = None):
  """Dispatches `tfm COMMAND [--import=MODULE ...] [flags]` to the command's absl app."""
  argv = import_user_modules(list(sys.argv if argv is None else argv))
  if len(argv) < 2 or argv[1] not in COMMANDS:
    print(__doc__.split('\n\n')[1], file=sys.stderr)
    print(f'commands: {", ".join(COMMANDS)}', file=sys.stderr)
    return 2
  command = argv[1]
  COMMANDS[command]([f'{os.path.basename(argv[0])} {command}'] + argv[2:])
  return 0


if __name__ == '__main__':
  sys.exit(main())
