"""Runs an exported model over a file of sentence pairs, streaming, in constant memory.

Input is a GLUE TSV (with a header) or JSON lines (`{"sentence1": ..., "sentence2": ...}`),
detected from the first non-blank line. Rows are read, scored and written one batch at a time,
so a million-line file needs no more memory than one batch. Labeled input (a label column or
key) is also scored: accuracy and F1 from the summed confusion matrix, as in training.
"""

import dataclasses
import json
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from mrpc_task import errors
from mrpc_task import metrics
from mrpc_task import tsv_reader

# Column names tried in order when the TSV header does not name them on the command line:
# MRPC's, then the GLUE / TFDS names most pair tasks use, then QQP's.
SENTENCE_COLUMNS = (('#1 String', '#2 String'), ('sentence1', 'sentence2'),
                    ('question1', 'question2'))
LABEL_COLUMNS = ('Quality', 'label', 'is_duplicate')


class PredictInputError(errors.InputError, ValueError):
  """A row or header of the input is malformed; the message names the input and line."""


@dataclasses.dataclass
class Pair:
  line: int
  sentence1: str
  sentence2: str
  label: Optional[int]


NO_LABEL = 'none'


@dataclasses.dataclass
class Columns:
  """Which fields hold the sentences and label; '' = detect from the header / use defaults;
  label 'none' = do not read labels even if a label column is there."""
  sentence1: str = ''
  sentence2: str = ''
  label: str = ''

  def __post_init__(self):
    if bool(self.sentence1) != bool(self.sentence2):
      raise PredictInputError(
          f'--sentence1_column={self.sentence1!r} --sentence2_column={self.sentence2!r}: '
          'give both or neither')


def label_ids(class_names: Sequence[str],
              label_vocabulary: Sequence[str] = ()) -> Dict[str, int]:
  """Labels accepted in input: a class id ('0', '1', ...), a class name, or a label as the
  training files spell it (label_vocabulary, e.g. RTE's or a custom task's)."""
  ids = {str(i): i for i in range(len(class_names))}
  ids.update({label: i for i, label in enumerate(label_vocabulary)})
  ids.update({name: i for i, name in enumerate(class_names)})
  return ids


def _tsv_layout(header: bytes, name: str, columns: Columns,
                ids: Dict[str, int]) -> tsv_reader.RowLayout:
  fields = tsv_reader.header_names(header, name)
  first, second = columns.sentence1, columns.sentence2
  if not (first and second):
    found = [pair for pair in SENTENCE_COLUMNS if pair[0] in fields and pair[1] in fields]
    if not found:
      raise PredictInputError(
          f'{name}:1: header {fields} has none of the sentence columns {SENTENCE_COLUMNS}; '
          'name them with --sentence1_column/--sentence2_column'
          f'{tsv_reader.separator_hint(fields)}')
    first, second = found[0]
  if columns.label == NO_LABEL:
    label = ''
  else:
    label = columns.label or next((column for column in LABEL_COLUMNS if column in fields), '')
  return tsv_reader.RowLayout.from_header(
      header, name, sentence1_column=first, sentence2_column=second, label_column=label,
      label_ids=ids)


def _json_pair(line: bytes, line_number: int, name: str, columns: Columns,
               ids: Dict[str, int]) -> Pair:
  where = f'{name}:{line_number}'
  try:
    row = json.loads(line)
  except ValueError as e:
    raise PredictInputError(f'{where}: not valid JSON ({e}); JSON input must be JSON lines, '
                            'one complete {...} object per line') from None
  if not isinstance(row, dict):
    raise PredictInputError(f'{where}: expected a JSON object, got {type(row).__name__} '
                            '(JSON lines: one {...} object per line)')
  texts = []
  for key in (columns.sentence1 or 'sentence1', columns.sentence2 or 'sentence2'):
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
      raise PredictInputError(f'{where}: key {key!r} missing, blank or not a string')
    texts.append(value.strip())
  label_key = columns.label or 'label'
  label = None
  if columns.label and label_key != NO_LABEL and label_key not in row:
    raise PredictInputError(f'{where}: key {label_key!r} (--label_column) missing; keys are '
                            f'{sorted(row)}')
  if label_key != NO_LABEL and row.get(label_key) is not None:
    label = ids.get(str(row[label_key]))
    if label is None:
      raise PredictInputError(
          f'{where}: {label_key} {row[label_key]!r} is not one of {sorted(ids)}')
  return Pair(line_number, texts[0], texts[1], label)


def read_pairs(lines: Iterable[bytes], name: str, *, class_names: Sequence[str],
               label_vocabulary: Sequence[str] = (), columns: Optional[Columns] = None,
               on_bad_rows: str = 'error',
               skipped: Optional[tsv_reader.SkipLog] = None) -> Iterator[Pair]:
  """Yields the pairs of a TSV or JSON-lines stream, one at a time.

  Args:
    lines: the input's raw lines (a binary file object works).
    name: shown in messages (the path, or `<stdin>`).
    class_names: the model's classes, to read labels given as names or ids.
    label_vocabulary: labels as the training files spell them, also accepted.
    columns: column names / JSON keys; detected when empty.
    on_bad_rows: 'error' raises on the first bad row; 'skip' counts it in `skipped`.
    skipped: counts 'name:line: why' for each skipped row and blank line (trailing blank
      lines end the input and are not counted).

  Raises:
    PredictInputError / tsv_reader.TsvFormatError: bad header, or a bad row with 'error'.
  """
  columns = columns or Columns()
  ids = label_ids(class_names, label_vocabulary)
  skipped = tsv_reader.SkipLog() if skipped is None else skipped
  layout = None
  is_json = None
  blank = []  # Blank lines count as skipped only when a row follows them.
  for line_number, line in enumerate(lines, start=1):
    if not line.strip():
      blank.append(line_number)
      continue
    for number in blank:
      skipped.add(f'{name}:{number}: blank line')
    blank = []
    if is_json is None:
      start = line.lstrip(b'\xef\xbb\xbf \t')
      if start.startswith(b'['):
        raise PredictInputError(
            f'{name}:{line_number}: a JSON array; tfm predict reads JSON lines: one '
            '{"sentence1": ..., "sentence2": ...} object per line')
      is_json = start.startswith(b'{')
      if not is_json:
        layout = _tsv_layout(line, name, columns, ids)
        continue
    try:
      if is_json:
        yield _json_pair(line.rstrip(b'\r\n'), line_number, name, columns, ids)
      else:
        yield Pair(line_number, *layout.parse(line.rstrip(b'\n'), line_number))
    except (PredictInputError, tsv_reader.TsvFormatError) as e:
      if on_bad_rows != 'skip':
        raise
      skipped.add(str(e))


def _batches(pairs: Iterator[Pair], size: int) -> Iterator[List[Pair]]:
  batch = []
  for pair in pairs:
    batch.append(pair)
    if len(batch) == size:
      yield batch
      batch = []
  if batch:
    yield batch


@dataclasses.dataclass
class PredictionStats:
  """Counts kept while streaming: constant size whatever the input length."""
  num_classes: int
  positive_class_id: int
  rows: int = 0
  confusion: np.ndarray = dataclasses.field(init=False)

  def __post_init__(self):
    self.confusion = np.zeros([self.num_classes, self.num_classes], np.int64)

  def add(self, labels: Sequence[Optional[int]], class_ids: Sequence[int]):
    self.rows += len(class_ids)
    for label, class_id in zip(labels, class_ids):
      if label is not None:
        self.confusion[label, class_id] += 1

  @property
  def labeled(self) -> int:
    return int(self.confusion.sum())

  def scores(self) -> Dict[str, float]:
    return {name: float(value) for name, value in
            metrics.scores_from_confusion(self.confusion, self.positive_class_id).items()}


class _Writer:
  """Writes one prediction per pair, as TSV (with a header) or JSON lines."""

  def __init__(self, out: TextIO, *, as_json: bool, probability_key: str):
    self.out, self.as_json, self.probability_key = out, as_json, probability_key
    if not as_json:
      out.write(f'line\tclass\t{probability_key}\n')

  def write(self, pair: Pair, class_name: str, probability: float):
    if self.as_json:
      self.out.write(json.dumps({'line': pair.line, 'class': class_name,
                                 self.probability_key: round(probability, 7)}) + '\n')
    else:
      self.out.write(f'{pair.line}\t{class_name}\t{probability:.7f}\n')


def predict(serve, pairs: Iterator[Pair], out: TextIO, *, class_names: Sequence[str],
            positive_class_id: int, batch_size: int = 64,
            as_json: bool = False) -> PredictionStats:
  """Scores `pairs` with a serving signature, writing each batch as it is done.

  Args:
    serve: the export's `serving_default` (sentence1, sentence2 -> logits, probabilities...).
    pairs: from `read_pairs`.
    out: text stream for the predictions: `line`, `class`, `probability_<positive class>`.
    class_names: the model's classes.
    positive_class_id: whose probability is written and whose F1 is computed.
    batch_size: pairs per call of the model.
    as_json: JSON lines instead of TSV.

  Returns:
    Row counts and the confusion matrix of the labeled rows.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if batch_size <= 0:
    raise ValueError(f'--batch_size={batch_size}: must be > 0')
  stats = PredictionStats(len(class_names), positive_class_id)
  writer = _Writer(out, as_json=as_json,
                   probability_key=f'probability_{class_names[positive_class_id]}')
  for batch in _batches(pairs, batch_size):
    outputs = serve(sentence1=tf.constant([p.sentence1 for p in batch]),
                    sentence2=tf.constant([p.sentence2 for p in batch]))
    class_ids = outputs['class_id'].numpy()
    probabilities = outputs['probabilities'].numpy()[:, positive_class_id]
    for pair, class_id, probability in zip(batch, class_ids, probabilities):
      writer.write(pair, class_names[class_id], float(probability))
    stats.add([p.label for p in batch], class_ids)
    out.flush()
  return stats


def summary_lines(stats: PredictionStats, skipped: tsv_reader.SkipLog) -> List[str]:
  """What to tell the user at the end: rows, skips and, on labeled input, the scores."""
  lines = [f'predicted {stats.rows} pairs']
  if skipped.count:
    lines.append(f'skipped {skipped.count} rows: {skipped}')
  if stats.labeled:
    scores = stats.scores()
    lines.append(f'{stats.labeled} labeled pairs: accuracy {scores["accuracy"]:.4f} | '
                 f'f1 {scores["f1"]:.4f}')
  return lines


def is_json_output(path: str) -> bool:
  """Whether --output gets JSON lines (a .jsonl or .json name, any case) rather than TSV."""
  return path.lower().endswith(('.jsonl', '.json'))


def check_input(path: str):
  """Fails unless --input is '-' (stdin) or an existing file."""
  if path == '-':
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.exists(path):
    raise PredictInputError(f'--input={path}: no such file')
  if tf.io.gfile.isdir(path):
    raise PredictInputError(f'--input={path}: is a folder; give a TSV or JSON-lines file')


def open_input(path: str) -> Tuple[Iterable[bytes], str]:
  """(binary line iterator, name for messages) for --input: '-' is stdin."""
  import sys  # pylint: disable=g-import-not-at-top
  if path == '-':
    return sys.stdin.buffer, '<stdin>'
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  check_input(path)
  if '://' not in path:  # tf.io.gfile drops CR bytes, hiding CR-only line endings.
    return open(path, 'rb'), path  # pylint: disable=consider-using-with
  return tf.io.gfile.GFile(path, 'rb'), path
