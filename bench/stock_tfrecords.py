"""Writes MRPC TFRecords the stock way: Model Garden's classifier_data_lib, padded to 128.

Model Garden 2.20's `create_finetuning_data.py` reads MRPC through TFDS, which is unreachable
offline; this feeds the same library (`generate_tf_record_from_data_file`, `FullTokenizer`) from
the GLUE TSV files instead, with the original BERT `MrpcProcessor` reading logic.
"""

import json
import os

from absl import app
from absl import flags
from official.nlp.data import classifier_data_lib
from official.nlp.tools import tokenization

flags.DEFINE_string('data_dir', None, 'GLUE MRPC folder (train.tsv, dev.tsv).')
flags.DEFINE_string('vocab_file', None, 'WordPiece vocab.')
flags.DEFINE_string('output_dir', None, 'Where to write train/eval TFRecords and meta data.')
flags.DEFINE_integer('max_seq_length', 128, 'Pad/truncate length.')
FLAGS = flags.FLAGS


class TsvMrpcProcessor(classifier_data_lib.DataProcessor):
  """MRPC from GLUE TSV files, as google-research/bert's run_classifier.py reads it."""

  def get_train_examples(self, data_dir):
    return self._examples(os.path.join(data_dir, 'train.tsv'), 'train')

  def get_dev_examples(self, data_dir):
    return self._examples(os.path.join(data_dir, 'dev.tsv'), 'dev')

  def get_test_examples(self, data_dir):
    raise NotImplementedError('the benchmark uses train and dev only')

  def get_labels(self):
    return ['0', '1']

  @staticmethod
  def get_processor_name():
    return 'MRPC'

  def _examples(self, path, set_type):
    return [
        classifier_data_lib.InputExample(
            guid=f'{set_type}-{i}', text_a=tokenization.convert_to_unicode(line[3]),
            text_b=tokenization.convert_to_unicode(line[4]),
            label=tokenization.convert_to_unicode(line[0]))
        for i, line in enumerate(self._read_tsv(path)) if i > 0
    ]


def main(_):
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  tokenizer = tokenization.FullTokenizer(vocab_file=FLAGS.vocab_file, do_lower_case=True)
  meta = classifier_data_lib.generate_tf_record_from_data_file(
      TsvMrpcProcessor(), FLAGS.data_dir, tokenizer,
      train_data_output_path=os.path.join(FLAGS.output_dir, 'train.tf_record'),
      eval_data_output_path=os.path.join(FLAGS.output_dir, 'eval.tf_record'),
      max_seq_length=FLAGS.max_seq_length)
  with open(os.path.join(FLAGS.output_dir, 'meta_data.json'), 'w') as f:
    json.dump(meta, f, indent=2)
  print(json.dumps(meta))


if __name__ == '__main__':
  flags.mark_flags_as_required(['data_dir', 'vocab_file', 'output_dir'])
  app.run(main)
