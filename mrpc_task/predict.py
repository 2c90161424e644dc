"""Runs an exported model over a file of examples, streaming, in constant memory.

Input is a GLUE TSV (with a header, or without one for a task whose files have none, such as
CoLA's dev.tsv) or JSON lines (`{"sentence": ...}` or `{"sentence1": ..., "sentence2": ...}`,
the export's input names), detected from the first non-blank line. Rows are read, scored and
written one batch at a time, so a million-line file needs no more memory than one batch.
Labeled input (a label column or key) is also scored with the task's own metrics, as in
training; a score task keeps each prediction's two floats for its correlations.

What the export answers (its inputs, classes, labels, metrics) comes from the `TaskInfo` saved
beside it. Output is one row per example: `line` and the class with its probabilities (or the
score); or, for the GLUE leaderboard, `index` and the prediction as GLUE's files spell it.
"""

import dataclasses
import json
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, TextIO, Tuple

import numpy as np

from mrpc_task import choices
from mrpc_task import errors
from mrpc_task import metrics
from mrpc_task import tsv_reader
from mrpc_task.export import ONE_INPUT, PAIR_INPUTS, TaskInfo

# Text columns tried in order when neither the caller nor the task's own files name them:
# GLUE's and TFDS's names (MRPC's, most pair tasks', QQP's, QNLI's, MNLI's in TFDS; SST-2's and
# CoLA's test files).
PAIR_COLUMNS = (('#1 String', '#2 String'), ('sentence1', 'sentence2'),
                ('question1', 'question2'), ('question', 'sentence'), ('premise', 'hypothesis'))
ONE_COLUMNS = (('sentence',),)
LABEL_COLUMNS = ('Quality', 'label', 'is_duplicate', 'gold_label', 'score')
# Columns holding a GLUE test row's index, written in leaderboard files (QQP's test: id).
INDEX_COLUMNS = ('index', 'id')
NO_LABEL = 'none'
OUTPUT_FORMATS = choices.PREDICT_FORMATS


class PredictInputError(errors.InputError, ValueError):
  """A row or header of the input is malformed; the message names the input and line."""


@dataclasses.dataclass
class Example:
  line: int
  texts: Tuple[str, ...]
  label: Optional[tsv_reader.Label]
  index: str = ''  # The row's GLUE index (its `index`/`id` column, else its row number).


@dataclasses.dataclass
class Columns:
  """Which fields hold the texts and label: '' = detect from the header / the export's
  inputs; label 'none' = do not read labels even if a label column is there."""
  texts: Tuple[str, ...] = ()
  label: str = ''


def label_spec(info: TaskInfo) -> tsv_reader.LabelSpec:
  """Labels accepted in input: a score; or a class id ('0', '1', ...), a class name, or a
  label as the training files spell it (`label_vocabulary`, e.g. RTE's)."""
  if info.is_regression:
    return tsv_reader.LabelSpec.scores(info.score_range)
  ids = {str(i): i for i in range(len(info.class_names))}
  ids.update({label: i for i, label in enumerate(info.label_vocabulary)})
  ids.update({name: i for i, name in enumerate(info.class_names)})
  return tsv_reader.LabelSpec.classes(ids)


def _arity_error(name: str, info: TaskInfo, found: Sequence[str]) -> PredictInputError:
  """The input holds the other number of texts than the export takes."""
  expected = f'serving_default({", ".join(info.inputs)})'
  return PredictInputError(
      f'{name}:1: the export takes {len(info.inputs)} text(s), {expected}, but the input has '
      f'{len(found)}: {list(found)}; give a file of the task\'s kind, or name its text '
      'column(s)')


def _text_columns(fields: List[str], name: str, info: TaskInfo,
                  columns: Columns) -> Tuple[str, ...]:
  """The text columns of a TSV header: named, the task's own, or GLUE's usual ones."""
  if columns.texts:
    return tuple(columns.texts)
  wanted = len(info.inputs)
  own = tuple(info.text_columns)
  if own and all(column in fields for column in own):
    return own
  pairs = [pair for pair in PAIR_COLUMNS if all(column in fields for column in pair)]
  ones = [one for one in ONE_COLUMNS if one[0] in fields]
  if wanted == 1 and pairs:
    raise _arity_error(name, info, pairs[0])
  found = pairs if wanted == 2 else ones
  if found:
    return found[0]
  if wanted == 2 and ones:
    raise _arity_error(name, info, ones[0])
  usual = list(dict.fromkeys(([own] if own else []) +
                             list(PAIR_COLUMNS if wanted == 2 else ONE_COLUMNS)))
  example = '<TAB>'.join(('sentence1', 'sentence2') if wanted == 2 else ('sentence',))
  named_by = '--sentence1_column, --sentence2_column' if wanted == 2 else '--sentence1_column'
  raise PredictInputError(
      f'{name}:1: header {fields} has none of the text columns {usual}; name the column(s) '
      f'(tfm predict: {named_by}), or, if the file has no header, give it one such as '
      f'{example}{tsv_reader.separator_hint(fields)}')


def _tsv_layout(first_line: bytes, name: str, info: TaskInfo,
                columns: Columns) -> tsv_reader.RowLayout:
  """The layout of a TSV input from its first line: a header, or (for a task whose files
  have none, as CoLA's) a row of the task's own columns."""
  fields = tsv_reader.header_names(first_line, name)
  header = list(info.header)
  headerless = (not columns.texts and header and len(fields) == len(header) and
                not set(info.text_columns) & set(fields))
  names = header if headerless else fields
  texts = (tuple(info.text_columns) if headerless else
           _text_columns(fields, name, info, columns))
  if len(texts) != len(info.inputs):
    raise _arity_error(name, info, texts)
  if columns.label == NO_LABEL:
    label = ''
  else:
    label = columns.label or next(
        (column for column in [info.label_column, *LABEL_COLUMNS]
         if column and column in names and column not in texts), '')
  spec = label_spec(info)
  if headerless:
    return tsv_reader.RowLayout.headerless(names, name, text_columns=texts,
                                           label_column=label, labels=spec)
  return tsv_reader.RowLayout.from_header(first_line, name, text_columns=texts,
                                          label_column=label, labels=spec)


def _json_example(line: bytes, line_number: int, name: str, info: TaskInfo,
                  columns: Columns, labels: tsv_reader.LabelSpec) -> Example:
  where = f'{name}:{line_number}'
  try:
    row = json.loads(line)
  except ValueError as e:
    raise PredictInputError(f'{where}: not valid JSON ({e}); JSON input must be JSON lines, '
                            'one complete {...} object per line') from None
  if not isinstance(row, dict):
    raise PredictInputError(f'{where}: expected a JSON object, got {type(row).__name__} '
                            '(JSON lines: one {...} object per line)')
  keys = tuple(columns.texts) or tuple(info.inputs)
  if not columns.texts:
    other = PAIR_INPUTS if len(info.inputs) == 1 else ONE_INPUT
    if not any(key in row for key in keys) and all(key in row for key in other):
      raise _arity_error(name, info, other)
  texts = []
  for key in keys:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
      raise PredictInputError(f'{where}: key {key!r} missing, blank or not a string')
    texts.append(value.strip())
  label_key = columns.label or 'label'
  label = None
  if columns.label and label_key != NO_LABEL and label_key not in row:
    raise PredictInputError(f'{where}: key {label_key!r} (the label key asked for) missing; '
                            f'keys are {sorted(row)}')
  if label_key != NO_LABEL and row.get(label_key) is not None:
    label = labels.parse(str(row[label_key]), where)
  index = row.get('idx', row.get('index', row.get('id', '')))
  return Example(line_number, tuple(texts), label, str(index))


def read_examples(lines: Iterable[bytes], name: str, info: TaskInfo, *,
                  columns: Optional[Columns] = None, on_bad_rows: str = 'error',
                  skipped: Optional[tsv_reader.SkipLog] = None) -> Iterator[Example]:
  """Yields the examples of a TSV or JSON-lines stream, one at a time.

  Args:
    lines: the input's raw lines (a binary file object works).
    name: shown in messages (the path, or `<stdin>`).
    info: what the export answers (inputs, classes, labels, the task's own columns).
    columns: column names / JSON keys; detected when empty.
    on_bad_rows: 'error' raises on the first bad row; 'skip' counts it in `skipped`.
    skipped: counts 'name:line: why' for each skipped row and blank line (trailing blank
      lines end the input and are not counted).

  Raises:
    PredictInputError / tsv_reader.TsvFormatError: bad header, an input of the other
      number of texts, or a bad row with 'error'.
  """
  columns = columns or Columns()
  if columns.texts and len(columns.texts) != len(info.inputs):
    raise PredictInputError(
        f'text columns {list(columns.texts)}: the export takes {len(info.inputs)} text(s) '
        f'({", ".join(info.inputs)})')
  labels = label_spec(info)
  skipped = tsv_reader.SkipLog() if skipped is None else skipped
  layout, index_column = None, None
  is_json = None
  blank = []  # Blank lines count as skipped only when a row follows them.
  row_number = 0
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
            '{...} object per line')
      is_json = start.startswith(b'{')
      if not is_json:
        layout = _tsv_layout(line, name, info, columns)
        if layout.has_header:
          fields = tsv_reader.header_names(line, name)
          index_column = next((fields.index(c) for c in INDEX_COLUMNS if c in fields), None)
          continue
    try:
      if is_json:
        example = _json_example(line.rstrip(b'\r\n'), line_number, name, info, columns,
                                labels)
      else:
        texts, label = layout.parse(line.rstrip(b'\n'), line_number)
        index = ''
        if index_column is not None:
          index = line.rstrip(b'\r\n').decode('utf-8').split('\t')[index_column].strip()
        example = Example(line_number, texts, label, index)
    except (PredictInputError, tsv_reader.TsvFormatError) as e:
      if on_bad_rows != 'skip':
        raise
      skipped.add(str(e))
      continue
    example.index = example.index or str(row_number)
    row_number += 1
    yield example


def _batches(examples: Iterator[Example], size: int) -> Iterator[List[Example]]:
  batch = []
  for example in examples:
    batch.append(example)
    if len(batch) == size:
      yield batch
      batch = []
  if batch:
    yield batch


@dataclasses.dataclass
class PredictionStats:
  """What is kept while streaming: counts (and a confusion matrix) for classes, each
  labeled prediction's two floats for scores (their correlations need them all)."""
  info: TaskInfo
  rows: int = 0
  confusion: Optional[np.ndarray] = None
  scored: List[Tuple[float, float]] = dataclasses.field(default_factory=list)

  def __post_init__(self):
    if not self.info.is_regression:
      size = len(self.info.class_names)
      self.confusion = np.zeros([size, size], np.int64)

  def add(self, labels: Sequence[Optional[tsv_reader.Label]], predictions: Sequence):
    self.rows += len(predictions)
    for label, prediction in zip(labels, predictions):
      if label is None:
        continue
      if self.info.is_regression:
        self.scored.append((float(prediction), float(label)))
      else:
        self.confusion[label, prediction] += 1

  @property
  def labeled(self) -> int:
    return len(self.scored) if self.info.is_regression else int(self.confusion.sum())

  def scores(self) -> Dict[str, float]:
    """The task's metrics and glue_score over the labeled rows."""
    if self.info.is_regression:
      predictions, labels = zip(*self.scored) if self.scored else ((), ())
      return metrics.correlation_scores(predictions, labels, self.info.metrics)
    return {name: float(value) for name, value in metrics.scores_from_confusion(
        self.confusion, self.info.positive_class_id, self.info.metrics).items()}


class _Writer:
  """Writes one prediction per example, as TSV (with a header), JSON lines, or GLUE's
  leaderboard rows (`index<TAB>prediction`)."""

  def __init__(self, out: TextIO, info: TaskInfo, *, as_json: bool, output_format: str):
    self.out, self.info, self.as_json = out, info, as_json
    self.glue = output_format == 'glue'
    names = info.class_names
    if info.is_regression:
      self.columns = ['score']
    elif len(names) == 2:  # The positive class's probability, as MRPC's export reports it.
      self.columns = ['class', f'probability_{names[info.positive_class_id]}']
    else:
      self.columns = ['class'] + [f'probability_{name}' for name in names]
    if self.glue:
      out.write('index\tprediction\n')
    elif not as_json:
      out.write('\t'.join(['line'] + self.columns) + '\n')

  def glue_prediction(self, outputs: Dict[str, np.ndarray], row: int) -> str:
    """The prediction as GLUE's files spell labels (its training files' spelling), or a
    score (clipped to the task's range, as the leaderboard expects)."""
    if self.info.is_regression:
      score = float(outputs['score'][row])
      if self.info.score_range:
        score = min(max(score, self.info.score_range[0]), self.info.score_range[1])
      return f'{score:.3f}'
    class_id = int(outputs['class_id'][row])
    spelling = self.info.label_vocabulary or self.info.class_names
    return spelling[class_id]

  def write(self, example: Example, outputs: Dict[str, np.ndarray], row: int):
    if self.glue:
      self.out.write(f'{example.index}\t{self.glue_prediction(outputs, row)}\n')
      return
    if self.info.is_regression:
      values = [float(outputs['score'][row])]
    else:
      class_id = int(outputs['class_id'][row])
      probabilities = outputs['probabilities'][row]
      if len(self.info.class_names) == 2:
        probabilities = probabilities[self.info.positive_class_id:][:1]
      values = [self.info.class_names[class_id]] + [float(p) for p in probabilities]
    if self.as_json:
      record = {'line': example.line}
      record.update({column: round(value, 7) if isinstance(value, float) else value
                     for column, value in zip(self.columns, values)})
      self.out.write(json.dumps(record) + '\n')
    else:
      cells = [f'{value:.7f}' if isinstance(value, float) else value for value in values]
      self.out.write('\t'.join([str(example.line)] + cells) + '\n')


def predict(serve, examples: Iterator[Example], out: TextIO, info: TaskInfo, *,
            batch_size: int = 64, as_json: bool = False,
            output_format: str = 'rows') -> PredictionStats:
  """Scores `examples` with a serving signature, writing each batch as it is done.

  Args:
    serve: the export's `serving_default`.
    examples: from `read_examples`.
    out: text stream for the predictions.
    info: what the export answers.
    batch_size: examples per call of the model.
    as_json: JSON lines instead of TSV (rows format only).
    output_format: 'rows' (line, class and probabilities, or score) or 'glue' (GLUE's
      leaderboard file: index, prediction).

  Returns:
    Row counts and what the labeled rows need for their scores.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if batch_size <= 0:
    raise PredictInputError(f'batch_size={batch_size}: must be > 0')
  if output_format not in OUTPUT_FORMATS:
    raise PredictInputError(f'output format {output_format!r}: must be one of '
                            f'{OUTPUT_FORMATS}')
  stats = PredictionStats(info)
  writer = _Writer(out, info, as_json=as_json, output_format=output_format)
  for batch in _batches(examples, batch_size):
    inputs = {name: tf.constant([example.texts[i] for example in batch])
              for i, name in enumerate(info.inputs)}
    outputs = {key: value.numpy() for key, value in serve(**inputs).items()}
    for row, example in enumerate(batch):
      writer.write(example, outputs, row)
    predictions = outputs['score'] if info.is_regression else outputs['class_id']
    stats.add([example.label for example in batch], predictions)
    out.flush()
  return stats


def summary_lines(stats: PredictionStats, skipped: tsv_reader.SkipLog) -> List[str]:
  """What to tell the user at the end: rows (saying so when there were none), skips and,
  on labeled input, the scores."""
  lines = [f'predicted {tsv_reader.counted(stats.rows, "example")}' +
           ('' if stats.rows or skipped.count else ' (the input holds none)')]
  if skipped.count:
    lines.append(f'skipped {tsv_reader.counted(skipped.count, "row")}: {skipped}')
  if stats.labeled:
    scores = stats.scores()
    shown = ' | '.join(f'{name} {scores[name]:.4f}' for name in stats.info.metrics)
    lines.append(f'{tsv_reader.counted(stats.labeled, "labeled example")}: {shown}')
  return lines


def is_json_output(path: str) -> bool:
  """Whether the output gets JSON lines (a .jsonl or .json name, any case) rather than TSV."""
  return path.lower().endswith(('.jsonl', '.json'))


def check_input(path: str, label: str = 'input'):
  """Fails unless `path` is '-' (stdin) or an existing file; `label` names it in messages."""
  if path == '-':
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.exists(path):
    raise PredictInputError(f'{label}={path}: no such file')
  if tf.io.gfile.isdir(path):
    raise PredictInputError(f'{label}={path}: is a folder; give a TSV or JSON-lines file')


def open_input(path: str, label: str = 'input') -> Tuple[Iterable[bytes], str]:
  """(binary line iterator, name for messages) for an input path: '-' is stdin."""
  import sys  # pylint: disable=g-import-not-at-top
  if path == '-':
    return sys.stdin.buffer, '<stdin>'
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  check_input(path, label)
  if '://' not in path:  # tf.io.gfile drops CR bytes, hiding CR-only line endings.
    return open(path, 'rb'), path  # pylint: disable=consider-using-with
  return tf.io.gfile.GFile(path, 'rb'), path


def load_export(export_dir: str, label: str = 'export'):
  """(serving signature, TaskInfo) of an export, with a clear error for a wrong folder.

  Exports made before `task.json` get what the signature shows: its inputs, and class ids
  for names.

  Raises:
    PredictInputError: no such folder, no SavedModel there, or no serving signature.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import  (tokenizer ops)
  from absl import logging  # pylint: disable=g-import-not-at-top
  from mrpc_task import export  # pylint: disable=g-import-not-at-top
  if not tf.io.gfile.isdir(export_dir):
    raise PredictInputError(f'{label}={export_dir}: no such folder')
  if not tf.saved_model.contains_saved_model(export_dir):
    raise PredictInputError(
        f'{label}={export_dir}: holds no SavedModel (make one with tfm export)')
  serve = tf.saved_model.load(export_dir).signatures.get(export.SIGNATURE_KEY)
  if serve is None:
    raise PredictInputError(
        f'{label}={export_dir}: has no {export.SIGNATURE_KEY!r} signature (not made '
        'by tfm export?)')
  info = export.read_task_info(export_dir)
  inputs = sorted(serve.structured_input_signature[1])
  if info is None:
    probe = serve(**{name: tf.constant(['a']) for name in inputs})
    if 'score' in probe:
      info = TaskInfo(label_kind='score', metrics=['pearson', 'spearman'], inputs=inputs)
    else:
      size = int(probe['logits'].shape[-1])
      info = TaskInfo(class_names=[str(i) for i in range(size)],
                      positive_class_id=min(1, size - 1), inputs=inputs)
    logging.warning('%s has no %s/%s (re-export to get class names); using what its '
                    'signature shows', export_dir, export.EXTRA_ASSETS, export.TASK_FILE)
  return serve, info


def predict_file(export_dir: str, input_path: str, output: str = '-', *,
                 columns: Optional[Columns] = None, batch_size: int = 64,
                 on_bad_rows: str = 'error', output_format: str = 'rows',
                 overwrite: bool = False, stdout: Optional[TextIO] = None,
                 labels: Tuple[str, str, str] = ('export_dir', 'input', 'output')
                 ) -> Tuple[PredictionStats, tsv_reader.SkipLog]:
  """`tfm predict`: an export's predictions for a file (or stdin, '-') written to a file (or
  stdout, '-').

  The output file is written under a temporary name and renamed into place only when every
  row was read and scored, so a bad row at line 3 leaves an existing file untouched; an
  output that is the input (or lies in the export) is refused before anything is opened. A
  GLUE leaderboard file (output_format='glue') needs every row, so bad rows are never
  skipped there.

  Returns:
    The counts and scores, and the rows skipped.
  """
  import contextlib  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from mrpc_task import safe_output  # pylint: disable=g-import-not-at-top
  export_label, input_label, output_label = labels
  if output_format == 'glue' and on_bad_rows == 'skip':
    raise PredictInputError('a GLUE leaderboard file answers every test row: bad rows cannot '
                            'be skipped there')
  to_stdout = output in ('', '-')
  if not to_stdout:
    safe_output.refuse_overlap(output, {input_label: input_path, export_label: export_dir},
                               label=output_label)
    safe_output.check_destination(output, label=output_label, overwrite=overwrite,
                                  folder=False)
  check_input(input_path, input_label)
  serve, info = load_export(export_dir, export_label)
  skipped = tsv_reader.SkipLog()
  with contextlib.ExitStack() as stack:
    lines, name = open_input(input_path, input_label)
    if input_path != '-':
      stack.callback(lines.close)
    if to_stdout:
      out = stdout or sys.stdout
    else:
      out = stack.enter_context(safe_output.atomic_file(
          output, 'w', label=output_label, overwrite=overwrite))
    examples = read_examples(lines, name, info, columns=columns, on_bad_rows=on_bad_rows,
                             skipped=skipped)
    stats = predict(serve, examples, out, info, batch_size=batch_size,
                    as_json=is_json_output(output), output_format=output_format)
  return stats, skipped
