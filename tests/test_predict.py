"""`tfm predict`: reading TSV / JSON lines, streaming, and outputs equal to the export's."""

import io
import itertools
import json
import os
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf

from mrpc_task import predict
from mrpc_task import tsv_reader
from mrpc_task.export import TaskInfo
from tests import cli_batch
from tests.conftest import read_mrpc, FIXTURE_MRPC, scalars

CLASSES = ['not_equivalent', 'equivalent']
# What an MRPC export says of itself (assets.extra/task.json).
MRPC = TaskInfo(name='mrpc', class_names=CLASSES, label_vocabulary=['0', '1'],
                text_columns=['#1 String', '#2 String'], label_column='Quality')


def _lines(text):
  return io.BytesIO(text.encode('utf-8'))


def _read(text, info=MRPC, **kwargs):
  return list(predict.read_examples(_lines(text), 'in.txt', info, **kwargs))


def test_reads_mrpc_tsv_with_labels_by_header():
  """MRPC's header is recognised; Quality becomes the label; line numbers are the file's."""
  pairs = _read('Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n'
                '1\t1\t2\tA cat sat.\tThe cat sat.\n0\t3\t4\tUp\tDown\n')
  assert [(p.line, p.texts, p.label, p.index) for p in pairs] == [
      (2, ('A cat sat.', 'The cat sat.'), 1, '0'), (3, ('Up', 'Down'), 0, '1')]


def test_reads_unlabeled_glue_test_tsv_and_other_column_names():
  """GLUE test.tsv (no label) and sentence1/sentence2 headers work; labels are None; the
  index column is kept for leaderboard files."""
  pairs = _read('index\tsentence1\tsentence2\n7\ta b\tc d\n')
  assert [(p.texts, p.label, p.index) for p in pairs] == [(('a b', 'c d'), None, '7')]


def test_reads_json_lines_with_names_or_ids_as_labels():
  """JSON lines: label may be a class name or an id; missing label is fine."""
  pairs = _read('{"sentence1": "a", "sentence2": "b", "label": "equivalent"}\n'
                '{"sentence1": "c", "sentence2": "d", "label": 0}\n'
                '{"sentence1": "e", "sentence2": "f"}\n')
  assert [(p.line, p.label) for p in pairs] == [(1, 1), (2, 0), (3, None)]


@pytest.mark.parametrize('text, message', [
    ('{"sentence1": "a", "sentence2": "b"}\n{"sentence1": "a"\n', r'in\.txt:2: not valid JSON'),
    ('{"sentence1": "a", "sentence2": ""}\n', r"in\.txt:1: key 'sentence2' missing, blank"),
    ('{"sentence1": "a", "sentence2": "b", "label": "maybe"}\n', r"in\.txt:1: label 'maybe'"),
    ('#1 String\t#2 String\tQuality\na\tb\n', r'in\.txt:2: 2 columns, header has 3'),
    ('#1 String\t#2 String\tQuality\na\tb\t7\n', r"in\.txt:2: label '7' is not one of"),
    ('x\ty\n1\t2\n', r'in\.txt:1: header .* has none of the text columns'),
])
def test_bad_input_names_file_and_line(text, message):
  """Each malformed input fails with the input's name and line."""
  with pytest.raises(ValueError, match=message):
    _read(text)


def test_a_file_without_the_usual_columns_is_told_how_to_name_them():
  """A headerless pair file: one line that lists each usual pair of columns once (MRPC's own
  are also GLUE's first) and says how to name them or which header to add."""
  with pytest.raises(ValueError) as raised:
    _read('A man eats.\tA man is eating.\n')
  assert str(raised.value) == (
      "in.txt:1: header ['A man eats.', 'A man is eating.'] has none of the text columns "
      "[('#1 String', '#2 String'), ('sentence1', 'sentence2'), ('question1', 'question2'), "
      "('question', 'sentence'), ('premise', 'hypothesis')]; name the column(s) (tfm predict: "
      '--sentence1_column, --sentence2_column), or, if the file has no header, give it one such '
      'as sentence1<TAB>sentence2')
  one_sentence = TaskInfo(name='sst2', class_names=CLASSES, inputs=['sentence'])
  with pytest.raises(ValueError, match=(
      r"; name the column\(s\) \(tfm predict: --sentence1_column\), or, if the file has no "
      r'header, give it one such as sentence$')):
    _read('A fine film.\n', one_sentence)


def test_the_summary_counts_in_words_and_says_when_the_input_held_nothing():
  """One example / row is singular; an input with no rows at all is said to hold none."""
  stats, skipped = predict.PredictionStats(MRPC), tsv_reader.SkipLog()
  assert predict.summary_lines(stats, skipped) == ['predicted 0 examples (the input holds none)']
  stats.add([1], np.array([1]))
  skipped.add('in.txt:3: blank line')
  assert predict.summary_lines(stats, skipped) == [
      'predicted 1 example', 'skipped 1 row: in.txt:3: blank line',
      '1 labeled example: accuracy 1.0000 | f1 1.0000']


def test_skip_mode_counts_every_dropped_row():
  """With on_bad_rows=skip good rows come through; bad ones and inner blank lines are
  counted (trailing blank lines just end the input), keeping only the first messages."""
  skipped = tsv_reader.SkipLog(keep=2)
  text = 'sentence1\tsentence2\na\tb\n\nx\ty\tz\nc\td\ne\n\n\n'
  pairs = _read(text, on_bad_rows='skip', skipped=skipped)
  assert [p.texts for p in pairs] == [('a', 'b'), ('c', 'd')]
  assert skipped.count == 3
  assert str(skipped) == ('in.txt:3: blank line, in.txt:4: 3 columns, header has 2, '
                          'and 1 more')


def test_labels_may_be_spelled_as_in_the_training_files():
  """A task whose files say NEUTRAL/ENTAILMENT reads those labels through label_vocabulary."""
  info = TaskInfo(class_names=['neutral', 'entailment'],
                  label_vocabulary=['NEUTRAL', 'ENTAILMENT'])
  pairs = _read('sentence1\tsentence2\tlabel\na\tb\tENTAILMENT\n', info)
  assert pairs[0].label == 1


def test_label_column_none_and_one_text_column_for_a_pair_export():
  """--label_column=none ignores a label column; naming one text column for a pair export
  is an error naming both counts."""
  pairs = _read('sentence1\tsentence2\tlabel\na\tb\tnonsense\n',
                columns=predict.Columns(label='none'))
  assert pairs[0].label is None
  with pytest.raises(predict.PredictInputError,
                     match=r"text columns \['question1'\]: the export takes 2 text\(s\)"):
    _read('question1\tquestion2\na\tb\n', columns=predict.Columns(texts=('question1',)))


def test_reading_is_lazy_on_an_endless_stream():
  """Pairs come out before the input ends: an endless generator still yields its first rows."""
  endless = itertools.chain([b'sentence1\tsentence2\n'],
                            (f'a{i}\tb{i}\n'.encode() for i in itertools.count()))
  first = list(itertools.islice(predict.read_examples(endless, 'endless', MRPC), 3))
  assert [p.texts[0] for p in first] == ['a0', 'a1', 'a2']


def _fake_serve(sentence1, sentence2):
  """Deterministic stand-in for the export: class 1 when the sentences are equal."""
  same = tf.cast(tf.equal(sentence1, sentence2), tf.float32)
  logits = tf.stack([1 - same, same], axis=1)
  return {'class_id': tf.argmax(logits, axis=1, output_type=tf.int32),
          'probabilities': tf.nn.softmax(logits)}


def _stream(rows):
  yield b'sentence1\tsentence2\tlabel\n'
  for i in range(rows):
    yield f's{i % 3}\ts{i % 2}\t{int(i % 3 == i % 2)}\n'.encode()


def _peak_python_memory(rows):
  tracemalloc.start()
  stats = predict.predict(_fake_serve, predict.read_examples(_stream(rows), 'gen', MRPC),
                          _NullWriter(), MRPC, batch_size=256)
  peak = tracemalloc.get_traced_memory()[1]
  tracemalloc.stop()
  return stats, peak


class _NullWriter(io.TextIOBase):
  def write(self, text):
    return len(text)


def test_memory_does_not_grow_with_input_length():
  """Ten times more rows do not raise peak Python memory (rows are not kept), and all score."""
  small, small_peak = _peak_python_memory(5_000)
  large, large_peak = _peak_python_memory(50_000)
  assert large.rows == 50_000 and large.labeled == 50_000
  assert large.scores()['accuracy'] == 1.0  # The fake model is right on every row.
  assert large_peak < 1.5 * small_peak + 256 * 1024, (small_peak, large_peak)


@pytest.fixture(scope='module')
def cli_runs(exported, tmp_path_factory):
  """`tfm predict` run four ways in one process (tests/cli_batch.py): on dev.tsv in batches
  of 7; JSON lines from stdin to .jsonl; on an export without task.json; and over an
  existing output file with a bad row at line 3."""
  import shutil  # pylint: disable=g-import-not-at-top
  folder = tmp_path_factory.mktemp('predict_cli')
  old = folder / 'old_export'
  shutil.copytree(exported, old)
  os.remove(old / 'assets.extra' / 'task.json')
  (folder / 'bad_out.tsv').write_text('earlier predictions\n')
  (folder / 'bad.tsv').write_text('sentence1\tsentence2\na\tb\nonly one column\n')
  dev_tsv = os.path.join(FIXTURE_MRPC, 'dev.tsv')
  stdin = '\n'.join(json.dumps({'sentence1': a, 'sentence2': b})
                    for a, b in [('the cat sat', 'the cat sat .'), ('stock rose', 'a dog')])
  results = cli_batch.run([
      {'argv': ['predict', f'--export_dir={exported}', f'--input={dev_tsv}',
                f'--output={folder}/pred.tsv', '--batch_size=7']},
      {'argv': ['predict', f'--export_dir={exported}', '--input=-',
                f'--output={folder}/pred.jsonl'], 'stdin': stdin},
      {'argv': ['predict', f'--export_dir={old}', f'--input={dev_tsv}']},
      {'argv': ['predict', f'--export_dir={exported}', f'--input={folder}/bad.tsv',
                f'--output={folder}/bad_out.tsv', '--overwrite']},
  ])
  return dict(zip(('tsv', 'jsonl', 'old', 'bad'), results)), folder


def test_cli_tsv_predictions_match_the_export_and_scores_match_training(cli_runs, exported,
                                                                        trained):
  """`tfm predict` on dev.tsv: probabilities equal the export's (<= 1e-6), scores equal eval's."""
  results, folder = cli_runs
  assert results['tsv']['code'] == 0, results['tsv']['stderr'][-2000:]
  rows = [line.split('\t') for line in (folder / 'pred.tsv').read_text().splitlines()]
  assert rows[0] == ['line', 'class', 'probability_equivalent']
  dev = read_mrpc(os.path.join(FIXTURE_MRPC, 'dev.tsv'))
  served = tf.saved_model.load(exported).signatures['serving_default'](
      sentence1=tf.constant(dev.sentence1), sentence2=tf.constant(dev.sentence2))
  assert [int(r[0]) for r in rows[1:]] == list(range(2, 22))
  assert [r[1] for r in rows[1:]] == [c.decode() for c in served['class'].numpy()]
  np.testing.assert_allclose([float(r[2]) for r in rows[1:]],
                             served['probabilities'].numpy()[:, 1], atol=1e-6)
  evals = scalars(os.path.join(trained, 'validation'))
  assert (f'20 labeled examples: accuracy {evals["accuracy"][6]:.4f} | '
          f'f1 {evals["f1"][6]:.4f}') in results['tsv']['stderr']
  assert 'predicted 20 examples' in results['tsv']['stderr']


def test_cli_json_lines_from_stdin_to_jsonl(cli_runs, exported):
  """JSON lines on stdin, .jsonl output: one object per pair with class and probability."""
  results, folder = cli_runs
  assert results['jsonl']['code'] == 0, results['jsonl']['stderr'][-2000:]
  rows = [json.loads(line) for line in (folder / 'pred.jsonl').read_text().splitlines()]
  served = tf.saved_model.load(exported).signatures['serving_default'](
      sentence1=tf.constant(['the cat sat', 'stock rose']),
      sentence2=tf.constant(['the cat sat .', 'a dog']))
  assert [r['line'] for r in rows] == [1, 2]
  assert [r['class'] for r in rows] == [c.decode() for c in served['class'].numpy()]
  np.testing.assert_allclose([r['probability_equivalent'] for r in rows],
                             served['probabilities'].numpy()[:, 1], atol=1e-6)


def test_cli_on_an_export_without_task_file(cli_runs):
  """Exports made before task.json existed still predict, with class ids as names."""
  result = cli_runs[0]['old']
  assert result['code'] == 0, result['stderr'][-2000:]
  rows = [line.split('\t') for line in result['stdout'].splitlines()]
  assert rows[0] == ['line', 'class', 'probability_1']
  assert len(rows) == 21 and {r[1] for r in rows[1:]} <= {'0', '1'}
  assert '20 labeled examples: accuracy' in result['stderr']


def test_cli_bad_row_leaves_an_existing_output_untouched(cli_runs):
  """A bad row at line 3 with --overwrite: the old output file keeps its bytes and no
  temporary file is left."""
  results, folder = cli_runs
  bad = folder / 'bad.tsv'
  assert results['bad']['code'] == 1
  assert results['bad']['stderr'].strip().splitlines()[-1] == (
      f'tfm predict: error: {bad}:3: 1 columns, header has 2')
  assert (folder / 'bad_out.tsv').read_text() == 'earlier predictions\n'
  assert not [name for name in os.listdir(folder) if name.startswith('.')]


@pytest.mark.parametrize('raw, message', [
    (b'[{"sentence1": "a", "sentence2": "b"}]\n',
     r'in\.txt:1: a JSON array; tfm predict reads JSON lines: one'),
    (b'{\n  "sentence1": "a",\n  "sentence2": "b"\n}\n',
     r'in\.txt:1: not valid JSON \(.*\); JSON input must be JSON lines, one complete'),
    (b'sentence1,sentence2\na,b\n',
     r'none of the text columns .*\(columns must be separated by tabs; this header has '
     r'none: a CSV file\?\)'),
    (b'sentence1\tsentence2\ra\tb\r', r'in\.txt:1: lines end in CR only'),
    ('sentence1\tsentence2\na\tb\n'.encode('utf-16'),
     r'in\.txt:1: not valid UTF-8 at byte 0: .*it looks like UTF-16: re-encode it as UTF-8'),
    (b'sentence1\tsentence2\ncaf\xe9\tb\n',
     r'in\.txt:2: not valid UTF-8 at byte 3: .*it looks like Windows-1252'),
])
def test_wrong_formats_say_what_they_look_like(raw, message):
  """JSON that is not JSON lines, CSV, CR-only line endings and non-UTF-8 encodings fail on
  the first line that shows it, saying what the file seems to be and what to do."""
  with pytest.raises(ValueError, match=message):
    list(predict.read_examples(io.BytesIO(raw).readlines(), 'in.txt', MRPC))


def test_a_named_label_key_missing_from_json_lines_fails():
  """--label_column=lable on JSON lines is not ignored: the row without it fails."""
  with pytest.raises(predict.PredictInputError,
                     match=r"in\.txt:1: key 'lable' \(the label key asked for\) missing; keys "
                           r"are \['label', 'sentence1', 'sentence2'\]"):
    _read('{"sentence1": "a", "sentence2": "b", "label": 1}\n',
          columns=predict.Columns(label='lable'))


def test_input_and_output_names(tmp_path):
  """JSON-lines output is chosen by extension in any case; a folder or a missing file as
  --input fails naming it."""
  assert [predict.is_json_output(name) for name in ('a.jsonl', 'b.JSONL', 'c.Json', 'd.tsv',
                                                     '-')] == [True, True, True, False, False]
  with pytest.raises(predict.PredictInputError, match='--input=.*: is a folder'):
    predict.check_input(str(tmp_path), '--input')
  with pytest.raises(predict.PredictInputError, match='input=.*nothing.tsv: no such file'):
    predict.check_input(str(tmp_path / 'nothing.tsv'))
  predict.check_input('-')
