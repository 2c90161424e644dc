"""run_experiment.sh's own logic, with its set-up and `tfm` replaced by stand-ins that record
their arguments: which arguments reach `tfm export` (both of absl's flag forms), and what it
refuses before anything runs. The commands it calls are tested on their own elsewhere."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO_ROOT

SEPARATOR = '\x1f'
RECORDING_TFM = f"""#!/usr/bin/env bash
{{ printf '%s{SEPARATOR}' "$@"; printf '\\n'; }} >> "$(dirname "$0")/../../calls.log"
"""


@pytest.fixture
def script_copy(tmp_path):
  """A folder holding run_experiment.sh, a set-up that does nothing and a recording tfm."""
  shutil.copy(os.path.join(REPO_ROOT, 'run_experiment.sh'), tmp_path)
  os.makedirs(tmp_path / '.ci')
  (tmp_path / '.ci' / 'setup.sh').write_text('exit 0\n')
  os.makedirs(tmp_path / '.venv' / 'bin')
  tfm = tmp_path / '.venv' / 'bin' / 'tfm'
  tfm.write_text(RECORDING_TFM)
  tfm.chmod(0o755)
  (tmp_path / 'data').mkdir()
  (tmp_path / 'data' / 'train.tsv').write_text('')
  return tmp_path


def _run(folder, *args, **env):
  environ = {k: v for k, v in os.environ.items()
             if k not in ('OVERWRITE', 'MODEL_DIR', 'EXPERIMENT')}
  environ.update({'MRPC_DATA_DIR': str(folder / 'data'), **env})
  result = subprocess.run(['bash', str(folder / 'run_experiment.sh'), *args], env=environ,
                          capture_output=True, text=True, timeout=60)
  log = folder / 'calls.log'
  calls = ([line.split(SEPARATOR)[:-1] for line in log.read_text().splitlines()]
           if log.exists() else [])
  return result, calls


def test_export_gets_the_config_and_import_flags_in_either_form(script_copy):
  """Training gets every argument; export gets --params_override, --config_file and --import
  whether written --flag=value or --flag value, and nothing else; then the report."""
  args = ['--import', 'my_tasks', '--params_override=trainer.train_steps=10',
          '--config_file', 'more.yaml', '--nouse_fast_thing', '--config_file=last.yaml']
  result, calls = _run(script_copy, *args, EXPERIMENT='bert_x', MODEL_DIR='runs/x')
  assert result.returncode == 0, result.stderr
  assert calls == [
      ['train_experiment', '--experiment=bert_x', '--mode=train_and_eval', '--model_dir=runs/x',
       '--noenable_async_checkpointing', *args],
      ['export', '--experiment=bert_x', '--model_dir=runs/x', '--pick=final',
       '--export_dir=runs/x/export', '--import', 'my_tasks',
       '--params_override=trainer.train_steps=10', '--config_file', 'more.yaml',
       '--config_file=last.yaml'],
      ['report', '--model_dir=runs/x'],
  ]


def test_an_earlier_export_is_refused_before_anything_runs_unless_overwrite(script_copy):
  """A MODEL_DIR whose export/ holds files stops the script with one line and no command run;
  OVERWRITE=1 runs and passes --overwrite to export and report."""
  model_dir = script_copy / 'runs' / 'bert_mrpc_minilm'
  os.makedirs(model_dir / 'export')
  (model_dir / 'export' / 'saved_model.pb').write_text('')
  result, calls = _run(script_copy)
  assert result.returncode == 1 and calls == []
  assert result.stderr.strip() == (
      'run_experiment.sh: error: runs/bert_mrpc_minilm/export already exists (an earlier '
      "run's); set OVERWRITE=1 to replace it, or MODEL_DIR=another/folder for a new run")
  result, calls = _run(script_copy, OVERWRITE='1')
  assert result.returncode == 0, result.stderr
  assert [call[0] for call in calls] == ['train_experiment', 'export', 'report']
  assert calls[1][-1] == '--overwrite' and calls[2][-1] == '--overwrite'


def test_a_data_folder_without_train_tsv_is_refused(script_copy, tmp_path):
  """MRPC_DATA_DIR must name the GLUE MRPC folder; otherwise one line and nothing runs."""
  result, calls = _run(script_copy, MRPC_DATA_DIR=str(tmp_path / 'nowhere'))
  assert result.returncode == 1 and calls == []
  assert result.stderr.strip() == (
      f'run_experiment.sh: error: MRPC_DATA_DIR={tmp_path}/nowhere: no train.tsv there (it '
      'must name the GLUE MRPC folder holding train.tsv and dev.tsv)')
