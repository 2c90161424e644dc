"""`tfm convert_checkpoint`: Hugging Face or TF1 BERT weights -> a Model Garden encoder.

Writes `encoder.*`, `bert_config.json` and `vocab.txt` into a temporary folder beside --output,
renamed into place when complete; the input's own folder is never written
(`mrpc_task.checkpoints.conversion.convert`). Prints the config keys that restore it.
"""

import os

from absl import flags

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_enum('from', None, ['hf', 'tf1'], 'Checkpoint format to convert from.')
  flags.DEFINE_string('input', None,
                      'hf: folder with config.json + model.safetensors (+ vocab.txt). '
                      'tf1: checkpoint prefix, with bert_config.json and vocab.txt beside it.')
  flags.DEFINE_string('output', None, 'Output folder (new): encoder checkpoint, config, vocab.')
  flags.DEFINE_bool('overwrite', False, 'Replace an existing --output folder, whole.')
  flags.mark_flags_as_required(['from', 'input', 'output'])


def main(_):
  from mrpc_task.checkpoints import conversion  # pylint: disable=g-import-not-at-top
  encoder_config = conversion.convert(FLAGS['from'].value, FLAGS.input, FLAGS.output,
                                      overwrite=FLAGS.overwrite, labels=('--input', '--output'))
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
