"""Reads GLUE-layout TSV files into examples (one or two texts and a label), checking every row.

GLUE TSVs are read with quoting off (sentences contain literal `"`), one row per line, with a
header line naming the columns, or (CoLA's train.tsv and dev.tsv) without one, their names
then given by the task. Rows are checked here, in Python, before anything reaches TensorFlow,
so a bad file fails with its name and line number instead of deep inside tf.data. With
`on_bad_rows='skip'` bad rows are dropped, counted and reported instead; nothing is dropped
silently.
"""

import dataclasses
import math
import os
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from absl import logging
import tensorflow as tf

from mrpc_task import errors

_BOM = '\ufeff'
_MAX_REPORTED = 5  # Skipped rows named in a warning; the rest are counted.
# First header names of GLUE's unlabeled files (test.tsv): `index`, QQP's `id`.
_INDEX_COLUMNS = ('index', 'id')

Label = Union[int, float]


class TsvFormatError(errors.InputError, ValueError):
  """A TSV file or row is malformed; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class LabelSpec:
  """How a label field becomes a label: a class id from its spelling, or a number.

  Build with `LabelSpec.classes(vocabulary)` or `LabelSpec.scores(score_range)`.
  """
  ids: Optional[Mapping[str, int]] = None
  score_range: Optional[Tuple[float, float]] = None

  @classmethod
  def classes(cls, spellings: Mapping[str, int]) -> 'LabelSpec':
    """Labels spelled as the keys (e.g. {'0': 0, '1': 1} or {'entailment': 0, ...})."""
    return cls(ids=dict(spellings))

  @classmethod
  def scores(cls, score_range: Sequence[float] = ()) -> 'LabelSpec':
    """Real-valued labels, within [low, high] when a range is given."""
    return cls(score_range=tuple(score_range) if score_range else None)

  @property
  def is_score(self) -> bool:
    return self.ids is None

  def parse(self, text: str, where: str) -> Label:
    """The label of one field; TsvFormatError naming `where` (file:line) when it is bad."""
    text = text.strip()
    if not self.is_score:
      if text not in self.ids:
        raise TsvFormatError(f'{where}: label {text!r} is not one of {list(self.ids)}')
      return self.ids[text]
    try:
      value = float(text)
    except ValueError:
      raise TsvFormatError(f'{where}: score {text!r} is not a number') from None
    if not math.isfinite(value):
      raise TsvFormatError(f'{where}: score {text!r} is not a finite number')
    if self.score_range and not self.score_range[0] <= value <= self.score_range[1]:
      low, high = self.score_range
      raise TsvFormatError(f'{where}: score {value:g} is outside the task\'s range '
                           f'[{low:g}, {high:g}] (task.score_range)')
    return value


@dataclasses.dataclass
class TextExamples:
  """Columns of a read file: `texts[i]` is the i-th text of every example (one or two lists);
  `labels` is None for unlabeled files (GLUE test.tsv)."""
  texts: Tuple[List[str], ...]
  labels: Optional[List[Label]]
  skipped: List[str] = dataclasses.field(default_factory=list)
  duplicates: int = 0

  def __len__(self):
    return len(self.texts[0])

  @property
  def sentence1(self) -> List[str]:
    return self.texts[0]

  @property
  def sentence2(self) -> Optional[List[str]]:
    """The second texts of a pair task; None for one-sentence tasks."""
    return self.texts[1] if len(self.texts) > 1 else None


def glue_file(tsv_dir: str, split: str) -> str:
  """Path of a split's file (`train` -> train.tsv, `dev_matched` -> ...) in a GLUE folder."""
  return os.path.join(tsv_dir, f'{split}.tsv')


def read_examples(path: str,
                  *,
                  text_columns: Sequence[str],
                  label_column: str,
                  labels: LabelSpec,
                  header: Sequence[str] = (),
                  on_bad_rows: str = 'error') -> TextExamples:
  """Reads and checks one GLUE-layout TSV file.

  Args:
    path: the file.
    text_columns: column names of the texts, one or two.
    label_column: column name of the label; '' reads an unlabeled file.
    labels: how a label field is read (class spellings, or scores).
    header: the column names of a file without a header line (CoLA); () when its first line
      is the header.
    on_bad_rows: 'error' raises on the first bad row; 'skip' drops bad rows and logs each.

  Returns:
    The examples, with the messages for skipped rows and the number of duplicated rows.

  Raises:
    FileNotFoundError: `path` does not exist.
    TsvFormatError: a folder, an empty file, a missing or repeated header column, or (with
      'error') a bad row. A header with no rows is not an error here (0 examples); the data
      pipeline rejects it.
  """
  if not tf.io.gfile.exists(path):
    raise FileNotFoundError(f'{path}: no such file')
  if tf.io.gfile.isdir(path):
    raise TsvFormatError(f'{path}: is a folder, not a TSV file')
  with tf.io.gfile.GFile(path, 'rb') as f:
    raw = f.read()
  lines = raw.split(b'\n')
  while lines and not lines[-1].strip():  # Trailing blank lines end the file.
    lines.pop()
  if not lines:
    raise TsvFormatError(f'{path}: the file is empty (expected a header line)')
  if header:
    layout = RowLayout.headerless(header, path, text_columns=text_columns,
                                  label_column=label_column, labels=labels)
    rows = enumerate(lines, start=1)
  else:
    layout = RowLayout.from_header(lines[0], path, text_columns=text_columns,
                                   label_column=label_column, labels=labels)
    rows = enumerate(lines[1:], start=2)
  name = os.path.basename(path)
  examples = TextExamples(tuple([] for _ in text_columns), [] if label_column else None)
  seen = set()
  for line_number, line in rows:
    try:
      texts, label = layout.parse(line, line_number)
    except TsvFormatError as e:
      if on_bad_rows != 'skip':
        raise
      examples.skipped.append(str(e).replace(path, name, 1))
      continue
    key = (texts, label)
    examples.duplicates += key in seen
    seen.add(key)
    for column, text in zip(examples.texts, texts):
      column.append(text)
    if examples.labels is not None:
      examples.labels.append(label)
  _report(path, examples)
  return examples


@dataclasses.dataclass(frozen=True)
class RowLayout:
  """Where the wanted columns are in a file's rows; parses one row at a time.

  Shared by the whole-file reader above and by streaming readers (`tfm predict`).
  """
  path: str
  width: int
  texts: Tuple[Tuple[str, int], ...]
  label: Optional[Tuple[str, int]]
  labels: Optional[LabelSpec]
  has_header: bool = True

  @classmethod
  def from_header(cls, line: bytes, path: str, *, text_columns: Sequence[str],
                  label_column: str, labels: Optional[LabelSpec]) -> 'RowLayout':
    """Checks the header line; `label_column` '' means the rows carry no label."""
    return cls._from_names(header_names(line, path), path, text_columns=text_columns,
                           label_column=label_column, labels=labels, has_header=True)

  @classmethod
  def headerless(cls, names: Sequence[str], path: str, *, text_columns: Sequence[str],
                 label_column: str, labels: Optional[LabelSpec]) -> 'RowLayout':
    """A file whose first line is already a row; `names` are its columns, in order."""
    return cls._from_names(list(names), path, text_columns=text_columns,
                           label_column=label_column, labels=labels, has_header=False)

  @classmethod
  def _from_names(cls, header: List[str], path: str, *, text_columns: Sequence[str],
                  label_column: str, labels: Optional[LabelSpec],
                  has_header: bool) -> 'RowLayout':
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
      raise TsvFormatError(f'{path}:1: header repeats column name(s) {repeated}')
    missing_texts = [column for column in text_columns if column not in header]
    if missing_texts:
      raise TsvFormatError(
          f'{path}:1: header {header} lacks column(s) {missing_texts}; expected GLUE layout '
          f'with tab-separated columns {list(text_columns) + [label_column] * bool(label_column)}'
          f'{separator_hint(header)}')
    if label_column and label_column not in header:
      unlabeled = (header and header[0] in _INDEX_COLUMNS) or len(header) == len(text_columns)
      hint = (': it looks like an unlabeled file (GLUE\'s test.tsv); training and evaluation '
              'need labeled files (train.tsv, dev.tsv)' if unlabeled else '')
      raise TsvFormatError(
          f'{path}:1: header {header} has no label column {label_column!r}{hint}')
    return cls(path=path, width=len(header),
               texts=tuple((column, header.index(column)) for column in text_columns),
               label=(label_column, header.index(label_column)) if label_column else None,
               labels=labels, has_header=has_header)

  def parse(self, line: bytes, line_number: int
           ) -> Tuple[Tuple[str, ...], Optional[Label]]:
    """(texts, label or None) of one row, or TsvFormatError naming file:line."""
    where = f'{self.path}:{line_number}'
    fields = _decode(line, self.path, line_number).lstrip(_BOM).rstrip('\r').split('\t')
    if len(fields) != self.width:
      hint = ''
      if not self.has_header and line_number == 1 and fields[0].strip() in _INDEX_COLUMNS:
        hint = (': this file starts with a header line (GLUE\'s test.tsv?), but the task reads '
                'files without one (task.*_data.tsv_columns.header)')
      raise TsvFormatError(f'{where}: {len(fields)} columns, '
                           f'{"header has" if self.has_header else "expected"} {self.width}{hint}')
    texts = []
    for column, index in self.texts:
      texts.append(fields[index].strip())
      if not texts[-1]:
        raise TsvFormatError(f'{where}: column {column!r} is blank')
    label = None
    if self.label is not None:
      label = self.labels.parse(fields[self.label[1]], where)
    return tuple(texts), label


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


def counted(count: int, noun: str) -> str:
  """'1 row', '3 rows': messages read as sentences."""
  return f'{count} {noun}' + ('' if count == 1 else 's')


def _report(path: str, examples: TextExamples):
  if examples.skipped:
    skipped = SkipLog()
    for message in examples.skipped:
      skipped.add(message)
    logging.warning('%s: skipped %s: %s', path, counted(skipped.count, 'row'), skipped)
  if examples.duplicates:
    logging.warning('%s: %d rows repeat an earlier row; they are kept', path,
                    examples.duplicates)
  logging.info('%s: read %d examples', path, len(examples))
