"""Small generated files in each of GLUE's nine task layouts, as download_glue_data.py writes
them (column for column, header or none), for tests that take every task end to end.

Made-up rows, never GLUE's: sentences of a few words drawn from a fixed list, labels in each
task's own spelling, deterministic for a given seed.

    python -m tests.glue_layout OUT_DIR    # writes OUT_DIR/{CoLA,SST-2,...,diagnostic}
"""

import os
import sys
from typing import Callable, Dict, List, Sequence

import numpy as np

WORDS = ('the cat sat on mat a dog ran in park hello world good he said is was not same it '
         'today market stock rose fell shares company profit million year').split()
ROWS = {'train': 40, 'dev': 20, 'test': 15}
MNLI_DEV_ROWS = 12  # Each of dev_matched and dev_mismatched.
MNLI_LABELS = ('entailment', 'neutral', 'contradiction')
NLI_LABELS = ('entailment', 'not_entailment')


def _sentence(rng: np.random.RandomState) -> str:
  return ' '.join(rng.choice(WORDS, size=rng.randint(3, 11)))


def _write(path: str, header: Sequence[str], rows: List[Sequence[str]]):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    if header:
      f.write('\t'.join(header) + '\n')
    for row in rows:
      f.write('\t'.join(str(cell) for cell in row) + '\n')


def _cola(folder, rng):
  for split in ('train', 'dev'):  # No header: source, label, original label, sentence.
    rows = []
    for _ in range(ROWS[split]):
      label = rng.randint(2)
      rows.append(('gj04', label, '' if label else '*', _sentence(rng)))
    _write(os.path.join(folder, f'{split}.tsv'), (), rows)
  _write(os.path.join(folder, 'test.tsv'), ('index', 'sentence'),
         [(i, _sentence(rng)) for i in range(ROWS['test'])])


def _sst2(folder, rng):
  for split in ('train', 'dev'):
    _write(os.path.join(folder, f'{split}.tsv'), ('sentence', 'label'),
           [(_sentence(rng) + ' ', rng.randint(2)) for _ in range(ROWS[split])])
  _write(os.path.join(folder, 'test.tsv'), ('index', 'sentence'),
         [(i, _sentence(rng)) for i in range(ROWS['test'])])


def _mrpc(folder, rng):
  for split in ('train', 'dev'):
    _write(os.path.join(folder, f'{split}.tsv'),
           ('Quality', '#1 ID', '#2 ID', '#1 String', '#2 String'),
           [(rng.randint(2), 1000 + i, 2000 + i, _sentence(rng), _sentence(rng))
            for i in range(ROWS[split])])
  _write(os.path.join(folder, 'test.tsv'), ('index', '#1 ID', '#2 ID', '#1 String', '#2 String'),
         [(i, 3000 + i, 4000 + i, _sentence(rng), _sentence(rng)) for i in range(ROWS['test'])])


_STSB_HEADER = ('index', 'genre', 'filename', 'year', 'old_index', 'source1', 'source2',
                'sentence1', 'sentence2')


def _stsb(folder, rng):
  for split in ('train', 'dev'):
    _write(os.path.join(folder, f'{split}.tsv'), _STSB_HEADER + ('score',),
           [(i, 'main-captions', 'MSRvid', '2012test', f'{i:04d}', 'none', 'none',
             _sentence(rng), _sentence(rng), f'{rng.uniform(0, 5):.3f}')
            for i in range(ROWS[split])])
  _write(os.path.join(folder, 'test.tsv'), _STSB_HEADER,
         [(i, 'main-news', 'headlines', '2015', f'{i:04d}', 'none', 'none', _sentence(rng),
           _sentence(rng)) for i in range(ROWS['test'])])


def _qqp(folder, rng):
  for split in ('train', 'dev'):
    _write(os.path.join(folder, f'{split}.tsv'),
           ('id', 'qid1', 'qid2', 'question1', 'question2', 'is_duplicate'),
           [(i, 2 * i, 2 * i + 1, _sentence(rng) + '?', _sentence(rng) + '?', rng.randint(2))
            for i in range(ROWS[split])])
  _write(os.path.join(folder, 'test.tsv'), ('id', 'question1', 'question2'),
         [(i, _sentence(rng) + '?', _sentence(rng) + '?') for i in range(ROWS['test'])])


_MNLI_HEADER = ('index', 'promptID', 'pairID', 'genre', 'sentence1_binary_parse',
                'sentence2_binary_parse', 'sentence1_parse', 'sentence2_parse', 'sentence1',
                'sentence2')


def _mnli_row(i, rng):
  first, second = _sentence(rng), _sentence(rng)
  return (i, 100 + i, f'{100 + i}e', 'fiction', f'( {first} )', f'( {second} )',
          f'(ROOT {first})', f'(ROOT {second})', first, second)


def _mnli(folder, rng):
  _write(os.path.join(folder, 'train.tsv'), _MNLI_HEADER + ('label1', 'gold_label'),
         [_mnli_row(i, rng) + (label, label) for i in range(ROWS['train'])
          for label in [MNLI_LABELS[rng.randint(3)]]])
  for kind in ('matched', 'mismatched'):
    rows = []
    for i in range(MNLI_DEV_ROWS):
      label = MNLI_LABELS[rng.randint(3)]
      rows.append(_mnli_row(i, rng) + (label,) * 5 + (label,))
    _write(os.path.join(folder, f'dev_{kind}.tsv'),
           _MNLI_HEADER + ('label1', 'label2', 'label3', 'label4', 'label5', 'gold_label'), rows)
    _write(os.path.join(folder, f'test_{kind}.tsv'), _MNLI_HEADER,
           [_mnli_row(i, rng) for i in range(ROWS['test'])])


def _qnli(folder, rng):
  for split in ('train', 'dev'):
    _write(os.path.join(folder, f'{split}.tsv'), ('index', 'question', 'sentence', 'label'),
           [(i, _sentence(rng) + '?', _sentence(rng), NLI_LABELS[rng.randint(2)])
            for i in range(ROWS[split])])
  _write(os.path.join(folder, 'test.tsv'), ('index', 'question', 'sentence'),
         [(i, _sentence(rng) + '?', _sentence(rng)) for i in range(ROWS['test'])])


def _pairs_with(labels: Sequence[str]) -> Callable:
  """RTE's and WNLI's layout: index, sentence1, sentence2, label (spelled as `labels`)."""

  def write(folder, rng):
    for split in ('train', 'dev'):
      _write(os.path.join(folder, f'{split}.tsv'), ('index', 'sentence1', 'sentence2', 'label'),
             [(i, _sentence(rng), _sentence(rng), labels[rng.randint(2)])
              for i in range(ROWS[split])])
    _write(os.path.join(folder, 'test.tsv'), ('index', 'sentence1', 'sentence2'),
           [(i, _sentence(rng), _sentence(rng)) for i in range(ROWS['test'])])

  return write


def _diagnostic(folder, rng):
  _write(os.path.join(folder, 'diagnostic.tsv'), ('index', 'sentence1', 'sentence2'),
         [(i, _sentence(rng), _sentence(rng)) for i in range(10)])


WRITERS: Dict[str, Callable] = {
    'CoLA': _cola, 'SST-2': _sst2, 'MRPC': _mrpc, 'STS-B': _stsb, 'QQP': _qqp, 'MNLI': _mnli,
    'QNLI': _qnli, 'RTE': _pairs_with(NLI_LABELS), 'WNLI': _pairs_with(('0', '1')),
    'diagnostic': _diagnostic,
}


def write_glue_dir(out_dir: str, seed: int = 0) -> str:
  """Writes every task folder (and diagnostic/) under out_dir; returns out_dir."""
  for index, (folder, writer) in enumerate(sorted(WRITERS.items())):
    writer(os.path.join(out_dir, folder), np.random.RandomState(seed * 100 + index))
  return out_dir


def count_rows(path: str, header: bool = True) -> int:
  with open(path, encoding='utf-8') as f:
    return sum(1 for line in f if line.strip()) - int(header)


if __name__ == '__main__':
  write_glue_dir(sys.argv[1])
