"""Outputs are renamed into place only when complete, never replace an input, and replace an
existing destination only when asked, whole."""

import os

import pytest

from mrpc_task import safe_output


def _entries(folder):
  return sorted(os.listdir(folder))


def test_atomic_file_appears_only_when_the_block_succeeds(tmp_path):
  """A failure inside the block leaves no file and no temporary behind."""
  target = tmp_path / 'out.tsv'
  with pytest.raises(RuntimeError):
    with safe_output.atomic_file(str(target)) as f:
      f.write('half')
      raise RuntimeError('row 3 is bad')
  assert _entries(tmp_path) == []
  with safe_output.atomic_file(str(target)) as f:
    f.write('whole')
    assert not target.exists()  # Not visible until complete.
  assert target.read_text() == 'whole'
  assert _entries(tmp_path) == ['out.tsv']


def test_existing_file_is_refused_then_kept_on_failure_even_with_overwrite(tmp_path):
  """Without overwrite an existing file is refused before the block runs; with it, a failed
  block still leaves the old content."""
  target = tmp_path / 'out.tsv'
  target.write_text('old')
  with pytest.raises(safe_output.DestinationExistsError, match=r"out\.tsv' already exists$"):
    with safe_output.atomic_file(str(target)):
      pytest.fail('the block must not run')
  with pytest.raises(ValueError):
    with safe_output.atomic_file(str(target), overwrite=True) as f:
      f.write('new')
      raise ValueError('bad row')
  assert target.read_text() == 'old'
  with safe_output.atomic_file(str(target), overwrite=True) as f:
    f.write('new')
  assert target.read_text() == 'new'
  assert _entries(tmp_path) == ['out.tsv']


def test_atomic_folder_replaces_whole_and_only_when_asked(tmp_path):
  """An existing non-empty folder is refused; with overwrite it is replaced whole (no stale
  file from the old one); a failed fill leaves the old folder as it was."""
  target = tmp_path / 'export'
  target.mkdir()
  (target / 'stale-shard').write_text('old variables')
  with pytest.raises(safe_output.OutputError, match='already exists'):
    with safe_output.atomic_folder(str(target), label='--export_dir'):
      pytest.fail('the block must not run')
  with pytest.raises(RuntimeError):
    with safe_output.atomic_folder(str(target), label='--export_dir', overwrite=True) as folder:
      open(os.path.join(folder, 'saved_model.pb'), 'w').close()
      raise RuntimeError('export failed')
  assert _entries(target) == ['stale-shard']
  with safe_output.atomic_folder(str(target), label='--export_dir', overwrite=True) as folder:
    assert folder != str(target)
    open(os.path.join(folder, 'saved_model.pb'), 'w').close()
  assert _entries(target) == ['saved_model.pb']
  assert _entries(tmp_path) == ['export']  # No temporary or replaced folder left.


def test_an_empty_folder_may_be_filled_without_overwrite(tmp_path):
  """`mkdir out && tfm export --export_dir=out` works."""
  target = tmp_path / 'out'
  target.mkdir()
  with safe_output.atomic_folder(str(target), label='--output') as folder:
    open(os.path.join(folder, 'encoder.index'), 'w').close()
  assert _entries(target) == ['encoder.index']


def test_file_and_folder_kinds_are_checked(tmp_path):
  """A file where a folder is wanted (and the other way round) is refused, naming the flag."""
  (tmp_path / 'a_file').write_text('x')
  with pytest.raises(safe_output.OutputError, match='--export_dir=.*is a file, not a folder'):
    safe_output.check_destination(str(tmp_path / 'a_file'), label='--export_dir',
                                  overwrite=True, folder=True)
  with pytest.raises(safe_output.OutputError, match='--output=.*is a folder'):
    safe_output.check_destination(str(tmp_path), label='--output', overwrite=True, folder=False)


def test_output_that_is_holds_or_sits_in_an_input_is_refused(tmp_path):
  """Same file under another spelling or through a symlink, a folder holding the input, and
  (unless allowed) a path inside the input folder are all refused."""
  model_dir = tmp_path / 'run'
  model_dir.mkdir()
  (tmp_path / 'link').symlink_to(model_dir)
  cases = [
      (f'{model_dir}/./', 'is also --model_dir'),
      (str(tmp_path / 'link'), 'is also --model_dir'),
      (str(tmp_path), 'holds --model_dir'),
      (str(model_dir / 'export'), 'lies inside --model_dir'),
  ]
  for output, message in cases:
    with pytest.raises(safe_output.OutputError, match=message):
      safe_output.refuse_overlap(output, {'--model_dir': str(model_dir)}, label='--export_dir')
  safe_output.refuse_overlap(str(model_dir / 'export'), {'--model_dir': str(model_dir)},
                             label='--export_dir', allow_inside=True)
  safe_output.refuse_overlap(str(tmp_path / 'elsewhere'), {'--input': '-', '--x': None},
                             label='--output')
