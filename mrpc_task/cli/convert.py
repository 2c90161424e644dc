"""`tfm convert_checkpoint`: Hugging Face or TF1 BERT weights -> a Model Garden encoder.

Writes `encoder.*`, `bert_config.json` and `vocab.txt` into a temporary folder beside --output,
renamed into place when complete; the input's own folder is never written.
"""

import os

from absl import flags

from mrpc_task import safe_output

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
  from mrpc_task import checkpoint_conversion  # pylint: disable=g-import-not-at-top

  source = FLAGS['from'].value
  input_folder = FLAGS.input if source == 'hf' else os.path.dirname(FLAGS.input) or '.'
  safe_output.refuse_overlap(FLAGS.output, {'--input': input_folder}, flag='--output')
  safe_output.check_destination(FLAGS.output, flag='--output', overwrite=FLAGS.overwrite,
                                folder=True)
  with safe_output.atomic_folder(FLAGS.output, flag='--output',
                                 overwrite=FLAGS.overwrite) as folder:
    if source == 'hf':
      encoder_config = checkpoint_conversion.convert_hf(FLAGS.input, folder)
    else:
      encoder_config = checkpoint_conversion.convert_tf1(
          FLAGS.input, os.path.join(input_folder, 'bert_config.json'),
          os.path.join(input_folder, 'vocab.txt'), folder)
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
