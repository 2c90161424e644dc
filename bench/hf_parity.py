"""The parity check of issue #14: one recipe through Hugging Face's Trainer, on the same split.

Runs in its own virtualenv (PyTorch and transformers; this project's TensorFlow is not
needed), e.g.

    python3 -m venv /tmp/hf && /tmp/hf/bin/pip install torch==2.13.0 transformers accelerate \
        scikit-learn pyfarmhash
    /tmp/hf/bin/python bench/hf_parity.py --data_dir=$MRPC_DATA_DIR \
        --model_dir=$(.venv/bin/python -c 'from registry import experiments as e; print(e.minilm_dir())') \
        --seed=0 --output=parity.jsonl

It trains on MRPC train minus the selection split (the same pairs as
mrpc_task/tuning/selection.py picks: the same Fingerprint64 keys, computed with the farmhash package,
which tests/test_selection.py checks against TensorFlow's), with AdamW, a linear warm-up and
decay, for a fixed number of steps, then scores the *final* weights on the selection split
and on dev. One JSON line per run is appended to --output.
"""

import argparse
import csv
import json
import os
import tempfile
import time

import farmhash
import numpy as np

_INT64_MAX = 2**63 - 1


def read_mrpc(path):
  """(sentence1, sentence2, label) rows of a GLUE MRPC TSV (quoting off, as GLUE writes it)."""
  with open(path, encoding='utf-8-sig', newline='') as f:
    rows = list(csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
  header = rows[0]
  s1, s2, label = (header.index(n) for n in ('#1 String', '#2 String', 'Quality'))
  return [(r[s1].strip(), r[s2].strip(), int(r[label].strip())) for r in rows[1:] if r]  # As tsv_reader.


def pair_key(sentence1, sentence2):
  first, second = (farmhash.fingerprint64(s) % _INT64_MAX for s in (sentence1, sentence2))
  return farmhash.fingerprint64(f'{min(first, second)}:{max(first, second)}') % _INT64_MAX


def selection_split(rows, fraction):
  """(rest, selection): per label, the round(fraction * n) smallest keys (ties included)."""
  keys = [pair_key(a, b) for a, b, _ in rows]
  selected = set()
  for label in sorted({r[2] for r in rows}):
    label_keys = sorted(k for k, r in zip(keys, rows) if r[2] == label)
    limit = label_keys[max(1, int(round(fraction * len(label_keys)))) - 1]
    selected |= {i for i, (k, r) in enumerate(zip(keys, rows)) if r[2] == label and k <= limit}
  return ([r for i, r in enumerate(rows) if i not in selected],
          [r for i, r in enumerate(rows) if i in selected])


def scores(labels, predictions):
  labels, predictions = np.asarray(labels), np.asarray(predictions)
  tp = int(np.sum((predictions == 1) & (labels == 1)))
  precision = tp / max(1, int(np.sum(predictions == 1)))
  recall = tp / max(1, int(np.sum(labels == 1)))
  f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
  return {'accuracy': float(np.mean(labels == predictions)), 'f1': f1}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--model_dir', required=True, help='Hugging Face BERT folder.')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--learning_rate', type=float, default=1e-4)
  parser.add_argument('--steps', type=int, default=342)
  parser.add_argument('--warmup_fraction', type=float, default=0.1)
  parser.add_argument('--weight_decay', type=float, default=0.01)
  parser.add_argument('--max_grad_norm', type=float, default=0.0, help='0: no clipping.')
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--selection_fraction', type=float, default=0.15)
  parser.add_argument('--threads', type=int, default=2)
  parser.add_argument('--output', required=True)
  args = parser.parse_args()

  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.threads)
  train, selection = selection_split(read_mrpc(os.path.join(args.data_dir, 'train.tsv')),
                                     args.selection_fraction)
  dev = read_mrpc(os.path.join(args.data_dir, 'dev.tsv'))
  tokenizer = transformers.AutoTokenizer.from_pretrained(args.model_dir)

  class Pairs(torch.utils.data.Dataset):
    def __init__(self, rows):
      self.encoded = tokenizer([r[0] for r in rows], [r[1] for r in rows], truncation=True,
                               max_length=128)
      self.labels = [r[2] for r in rows]

    def __len__(self):
      return len(self.labels)

    def __getitem__(self, i):
      return dict({k: v[i] for k, v in self.encoded.items()}, labels=self.labels[i])

  transformers.set_seed(args.seed)
  model = transformers.AutoModelForSequenceClassification.from_pretrained(args.model_dir,
                                                                          num_labels=2)
  with tempfile.TemporaryDirectory(prefix='hf_parity_') as scratch:  # Trainer's output_dir.
    training = transformers.TrainingArguments(
        output_dir=scratch, seed=args.seed,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=64,
        learning_rate=args.learning_rate, max_steps=args.steps, weight_decay=args.weight_decay,
        warmup_steps=int(args.warmup_fraction * args.steps), lr_scheduler_type='linear',
        max_grad_norm=args.max_grad_norm, save_strategy='no', eval_strategy='no',
        report_to=[], logging_steps=50, use_cpu=True, dataloader_num_workers=0)
    trainer = transformers.Trainer(
        model=model, args=training, train_dataset=Pairs(train),
        data_collator=transformers.DataCollatorWithPadding(tokenizer))
    started = time.time()
    trainer.train()
    result = {'seed': args.seed, 'learning_rate': args.learning_rate, 'steps': args.steps,
              'weight_decay': args.weight_decay, 'max_grad_norm': args.max_grad_norm,
              'train_pairs': len(train), 'seconds': round(time.time() - started, 1),
              'transformers': transformers.__version__, 'torch': torch.__version__}
    for name, rows in (('selection', selection), ('dev', dev)):
      output = trainer.predict(Pairs(rows))
      result[name] = scores(output.label_ids, output.predictions.argmax(-1))
  with open(args.output, 'a') as f:
    f.write(json.dumps(result) + '\n')
  print(json.dumps(result))


if __name__ == '__main__':
  main()
