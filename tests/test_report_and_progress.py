"""`tfm report` PNGs from a real run's event files, and the progress lines of training."""

import io
import os
import struct

import numpy as np
import pytest

from mrpc_task import report
from mrpc_task import progress
from tests.conftest import TFM, run_tfm, scalars


def _png_size(path):
  """(width, height) from a PNG's IHDR chunk, after checking the signature."""
  with open(path, 'rb') as f:
    head = f.read(24)
  assert head[:8] == b'\x89PNG\r\n\x1a\n', path
  return struct.unpack('>II', head[16:24])


def test_report_cli_writes_four_pngs_of_the_stated_size(trained, tmp_path):
  """loss, learning rate, the task's scores and confusion matrix: non-empty 800x500 PNGs."""
  out = tmp_path / 'report'
  result = run_tfm([TFM, 'report', f'--model_dir={trained}', f'--output_dir={out}'])
  names = ['loss.png', 'learning_rate.png', 'scores.png', 'confusion_matrix.png']
  assert sorted(os.listdir(out)) == sorted(names)
  for name in names:
    assert os.path.getsize(out / name) > 5000, name
    assert _png_size(out / name) == (800, 500), name
    assert f'Wrote {out / name}' in result.stdout


def test_report_defaults_to_report_folder_in_model_dir(trained):
  """Without --output_dir the PNGs go to MODEL_DIR/report."""
  written = report.write_report(trained).written
  assert len(written) == 4 and all(os.path.dirname(p) == os.path.join(trained, 'report') for p in written)


def test_confusion_matrix_is_the_last_evaluation(trained):
  """The matrix read back is step 6's: 20 dev pairs, and its accuracy is the logged one."""
  validation = report.read_scalars(os.path.join(trained, 'validation'))
  (step, matrix), why = report.last_confusion_matrix(validation)
  assert why == ''
  assert step == 6
  assert matrix.sum() == 20
  logged = scalars(os.path.join(trained, 'validation'))
  assert np.trace(matrix) / matrix.sum() == pytest.approx(logged['accuracy'][6], abs=1e-6)
  task = report.run_task(trained)
  assert (task.class_names, task.metrics, task.splits, task.regression) == (
      ['not_equivalent', 'equivalent'], ['accuracy', 'f1'], ['dev'], False)


def test_report_on_a_folder_without_events_says_so(tmp_path):
  """An empty model_dir fails with a message naming it; a missing one, saying it is missing
  (before anything is written)."""
  with pytest.raises(FileNotFoundError, match='no TensorBoard event files'):
    report.write_report(str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r"^model_dir='\S+/typo': no such folder$"):
    report.write_report(str(tmp_path / 'typo'))
  assert not (tmp_path / 'typo').exists()


def test_training_prints_progress_and_summary(training_run):
  """The real CLI prints step k/total with rate, ETA and loss per loop, then a summary."""
  lines = training_run.stdout.splitlines()
  steps = [line for line in lines if line.startswith('progress | step ')]
  assert [line.split(' | ')[1].split()[1] for line in steps] == ['3/6', '6/6']
  assert all('examples/s' in line and 'ETA' in line and 'loss ' in line for line in steps)
  assert steps[-1].split(' | ')[1] == 'step 6/6 (100%)'
  evals = scalars(os.path.join(training_run.model_dir, 'validation'))
  final = (f'summary | final dev: accuracy {evals["accuracy"][6]:.4f} | '
           f'f1 {evals["f1"][6]:.4f} | glue_score {evals["glue_score"][6]:.4f} (step 6)')
  assert final in lines
  assert f'summary | checkpoints: {training_run.model_dir}' in lines
  assert any(line.startswith('summary | best checkpoint: ') for line in lines)
  assert any(line.startswith('summary | export: tfm export --experiment=bert_mrpc_tiny '
                             f'--model_dir={training_run.model_dir} ') for line in lines)


def test_progress_rate_and_eta_exclude_evaluation_time():
  """Fake clock: 2 steps of 8 in 4 s -> 4.0 examples/s, ETA 12s; eval time is not counted."""
  clock = iter([0.0, 4.0, 100.0, 104.0, 110.0]).__next__
  state = {'step': 0}
  out = io.StringIO()
  reporter = progress.TrainingProgress(total_steps=8, global_batch_size=8,
                                       step_fn=lambda: state['step'], out=out, clock=clock)
  state['step'] = 2
  reporter.on_train({'training_loss': 0.5, 'learning_rate': 1e-4})
  reporter.on_eval({'accuracy': 0.75, 'f1': 0.8})  # Ends at t=100.
  state['step'] = 4
  reporter.on_train({'training_loss': 0.25})  # 2 steps in 4 s after the eval.
  assert out.getvalue().splitlines() == [
      'progress | step 2/8 (25%) | 4.0 examples/s | ETA 12s | loss 0.5000 | lr 0.0001',
      'progress | eval at step 2 | accuracy 0.7500 | f1 0.8000',
      'progress | step 4/8 (50%) | 4.0 examples/s | ETA 8s | loss 0.2500',
  ]
  assert reporter.summary().splitlines()[0] == (
      'summary | trained to step 4/8 (this process from step 0) in 1m50s')


def test_format_duration():
  """Seconds, minutes and hours read naturally."""
  assert [progress.format_duration(s) for s in (7, 245, 3723)] == ['7s', '4m05s', '1h02m03s']


def test_report_reads_a_truncated_event_file(trained, tmp_path):
  """An event file cut short by a kill still gives the points written before the damage."""
  import shutil  # pylint: disable=g-import-not-at-top
  for sub in ('train', 'validation'):
    shutil.copytree(os.path.join(trained, sub), tmp_path / sub)
  (name,) = os.listdir(tmp_path / 'train')
  path = tmp_path / 'train' / name
  data = path.read_bytes()
  path.write_bytes(data[:len(data) - 7])  # Cut into the last record.
  series = report.read_scalars(str(tmp_path / 'train'))
  assert series['training_loss'][0][0] == 3  # The step-3 point survived.
  assert len(report.write_report(str(tmp_path)).written) == 4


def test_report_says_which_plot_it_left_out_and_why(tmp_path):
  """Event files holding scores but only 3 of the 4 confusion cells: three PNGs, and the
  fourth named with the reason instead of silently missing."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  writer = tf.summary.create_file_writer(str(tmp_path / 'validation'))
  with writer.as_default():
    for tag, value in (('accuracy', 0.5), ('f1', 0.6), ('confusion/true0_pred0', 3.0),
                       ('confusion/true0_pred1', 1.0), ('confusion/true1_pred0', 2.0)):
      tf.summary.scalar(tag, value, step=4)
  writer.close()
  result = report.write_report(str(tmp_path))
  assert [os.path.basename(p) for p in result.written] == ['scores.png']
  assert result.problems == [
      'loss.png: no training_loss in train/',
      'learning_rate.png: no learning_rate in train/',
      "confusion_matrix.png: the confusion/... scalars are incomplete (3 cells: ['true0_pred0', "
      "'true0_pred1', 'true1_pred0']); damaged event files?"]


def test_report_never_replaces_an_earlier_one_unasked(trained, tmp_path):
  """A second report into the same folder is refused unless --overwrite; the event folders
  themselves are never an output."""
  from mrpc_task import safe_output  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / 'report')
  first = report.write_report(trained, out).written
  stamps = {path: os.path.getmtime(path) for path in first}
  with pytest.raises(safe_output.DestinationExistsError, match='already holds .*png'):
    report.write_report(trained, out)
  assert {path: os.path.getmtime(path) for path in first} == stamps
  assert report.write_report(trained, out, overwrite=True).written == first
  assert sorted(os.listdir(out)) == sorted(os.path.basename(p) for p in first)
  with pytest.raises(safe_output.OutputError, match='is also train/'):
    report.write_report(trained, os.path.join(trained, 'train'))
  (tmp_path / 'a_file').write_text('')
  with pytest.raises(safe_output.OutputError, match=r'a_file: is a file, not a folder'):
    report.write_report(trained, str(tmp_path / 'a_file'))
