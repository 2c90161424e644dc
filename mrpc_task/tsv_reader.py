"""Reads GLUE-layout TSV files into sentence pairs, checking every row.

GLUE TSVs are read with quoting off (sentences contain literal `"`), one row per line. Rows are
checked here, in Python, before anything reaches TensorFlow, so a bad file fails with its name and
line number instead of deep inside tf.data. With `on_bad_rows='skip'` bad rows are dropped, counted
and reported instead; nothing is dropped silently.
"""

import dataclasses
import os
from typing import List, Mapping, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf

from mrpc_task import errors

_BOM = '\ufeff'
_MAX_REPORTED = 5  # Skipped rows named in a warning; the rest are counted.


class TsvFormatError(errors.InputError, ValueError):
  """A TSV file or row is malformed; the message names the file and line."""


@dataclasses.dataclass
class SentencePairs:
  """Columns of a read file; `labels` is None for unlabeled files (GLUE test.tsv)."""
  sentence1: List[str]
  sentence2: List[str]
  labels: Optional[List[int]]
  skipped: List[str] = dataclasses.field(default_factory=list)
  duplicates: int = 0

  def __len__(self):
    return len(self.sentence1)


def glue_file(tsv_dir: str, split: str) -> str:
  """Path of `split`.tsv (train, dev or test) in a GLUE task folder."""
  return os.path.join(tsv_dir, f'{split}.tsv')


def read_sentence_pairs(path: str,
                        *,
                        sentence1_column: str,
                        sentence2_column: str,
                        label_column: str,
                        label_vocabulary: Sequence[str],
                        on_bad_rows: str = 'error') -> SentencePairs:
  """Reads and checks one GLUE-layout TSV file.

  Args:
    path: the file; its first line is a tab-separated header.
    sentence1_column: header name of the first sentence.
    sentence2_column: header name of the second sentence.
    label_column: header name of the label; '' reads an unlabeled file.
    label_vocabulary: label strings in class-id order.
    on_bad_rows: 'error' raises on the first bad row; 'skip' drops bad rows and logs each.

  Returns:
    The pairs, with the messages for skipped rows and the number of duplicated rows.

  Raises:
    FileNotFoundError: `path` does not exist.
    TsvFormatError: empty file, missing or repeated header column, or (with 'error') a bad
      row. A header with no rows is not an error here (0 pairs); the data pipeline rejects it.
  """
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{path}: no such file')
  with tf.io.gfile.GFile(path, 'rb') as f:
    raw = f.read()
  lines = raw.split(b'\n')
  while lines and not lines[-1].strip():  # Trailing blank lines end the file.
    lines.pop()
  if not lines:
    raise TsvFormatError(f'{path}: the file is empty (expected a header line)')
  layout = RowLayout.from_header(
      lines[0], path, sentence1_column=sentence1_column, sentence2_column=sentence2_column,
      label_column=label_column, label_ids={label: i for i, label in enumerate(label_vocabulary)})
  name = os.path.basename(path)
  pairs = SentencePairs([], [], [] if label_column else None)
  seen = set()
  for line_number, line in enumerate(lines[1:], start=2):
    try:
      first, second, label = layout.parse(line, line_number)
    except TsvFormatError as e:
      if on_bad_rows != 'skip':
        raise
      pairs.skipped.append(str(e).replace(path, name, 1))
      continue
    key = (first, second, label)
    pairs.duplicates += key in seen
    seen.add(key)
    pairs.sentence1.append(first)
    pairs.sentence2.append(second)
    if pairs.labels is not None:
      pairs.labels.append(label)
  _report(path, pairs)
  return pairs


@dataclasses.dataclass(frozen=True)
class RowLayout:
  """Where the wanted columns are in a file's rows, from its header; parses one row at a time.

  Shared by the whole-file reader above and by streaming readers (`tfm predict`).
  """
  path: str
  width: int
  sentence1: Tuple[str, int]
  sentence2: Tuple[str, int]
  label: Optional[Tuple[str, int]]
  label_ids: Mapping[str, int]

  @classmethod
  def from_header(cls, line: bytes, path: str, *, sentence1_column: str,
                  sentence2_column: str, label_column: str,
                  label_ids: Mapping[str, int]) -> 'RowLayout':
    """Checks the header line; `label_column` '' means the rows carry no label."""
    header = header_names(line, path)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
      raise TsvFormatError(f'{path}:1: header repeats column name(s) {repeated}')
    wanted = [sentence1_column, sentence2_column] + ([label_column] if label_column else [])
    missing = [column for column in wanted if column not in header]
    if missing:
      raise TsvFormatError(
          f'{path}:1: header {header} lacks column(s) {missing}; expected GLUE layout with '
          f'tab-separated columns {wanted}{separator_hint(header)}')
    return cls(path=path, width=len(header),
               sentence1=(sentence1_column, header.index(sentence1_column)),
               sentence2=(sentence2_column, header.index(sentence2_column)),
               label=(label_column, header.index(label_column)) if label_column else None,
               label_ids=dict(label_ids))

  def parse(self, line: bytes, line_number: int) -> Tuple[str, str, Optional[int]]:
    """(sentence1, sentence2, class id or None) of one row, or TsvFormatError naming file:line."""
    where = f'{self.path}:{line_number}'
    fields = _decode(line, self.path, line_number).rstrip('\r').split('\t')
    if len(fields) != self.width:
      raise TsvFormatError(f'{where}: {len(fields)} columns, header has {self.width}')
    texts = []
    for column, index in (self.sentence1, self.sentence2):
      texts.append(fields[index].strip())
      if not texts[-1]:
        raise TsvFormatError(f'{where}: column {column!r} is blank')
    label = None
    if self.label is not None:
      label = self.label_ids.get(fields[self.label[1]].strip())
      if label is None:
        raise TsvFormatError(
            f'{where}: label {fields[self.label[1]]!r} is not one of {list(self.label_ids)}')
    return texts[0], texts[1], label


def header_names(line: bytes, path: str) -> List[str]:
  """The column names of a header line (BOM, CR and surrounding spaces removed)."""
  text = _decode(line, path, 1).lstrip(_BOM).rstrip('\r\n')
  if '\r' in text:
    raise TsvFormatError(
        f'{path}:1: lines end in CR only (classic Mac line endings), so the whole file reads '
        "as one line; convert them to LF (e.g. tr '\\r' '\\n' < IN > OUT)")
  return [name.strip() for name in text.split('\t')]


def separator_hint(header: List[str]) -> str:
  """A note for a header that is not tab-separated (a CSV file, say), else ''."""
  if len(header) == 1 and (',' in header[0] or ';' in header[0]):
    return ' (columns must be separated by tabs; this header has none: a CSV file?)'
  return ''


def _encoding_hint(line: bytes) -> str:
  """What a line that is not UTF-8 probably is, and how to convert it."""
  if line.startswith((b'\xff\xfe', b'\xfe\xff')) or b'\x00' in line:
    return 'it looks like UTF-16: re-encode it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)'
  try:
    line.decode('cp1252')
  except UnicodeDecodeError:
    return 're-encode the file as UTF-8'
  return ('it looks like Windows-1252: re-encode it as UTF-8 (e.g. iconv -f WINDOWS-1252 '
          '-t UTF-8)')


def _decode(line: bytes, path: str, line_number: int) -> str:
  try:
    return line.decode('utf-8')
  except UnicodeDecodeError as e:
    raise TsvFormatError(
        f'{path}:{line_number}: not valid UTF-8 at byte {e.start}: '
        f'{line[e.start:e.start + 8]!r}; {_encoding_hint(line)}') from None


class SkipLog:
  """Bad rows seen while streaming: a count and the first few messages (constant memory)."""

  def __init__(self, keep: int = _MAX_REPORTED):
    self.count, self.keep, self.messages = 0, keep, []

  def add(self, message: str):
    self.count += 1
    if len(self.messages) < self.keep:
      self.messages.append(message)

  def __str__(self):
    more = self.count - len(self.messages)
    return ', '.join(self.messages) + (f', and {more} more' if more > 0 else '')


def _report(path: str, pairs: SentencePairs):
  if pairs.skipped:
    skipped = SkipLog()
    for message in pairs.skipped:
      skipped.add(message)
    logging.warning('%s: skipped %d rows: %s', path, skipped.count, skipped)
  if pairs.duplicates:
    logging.warning('%s: %d rows repeat an earlier row; they are kept', path, pairs.duplicates)
  logging.info('%s: read %d sentence pairs', path, len(pairs))
