"""Mistakes in what a user gives `tfm` end in one line naming the flag, file or key; nothing
the user did not ask to replace is touched."""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys

from absl import flags
import pytest

from mrpc_task import configs
from mrpc_task import cpu_features
from mrpc_task import errors
from mrpc_task import experiment_config
from mrpc_task.cli import main as cli_main
from mrpc_task import runs
from tests import cli_batch
from tests.conftest import FIXTURE_MRPC, REPO_ROOT, TFM, child_env

LR = 'trainer.optimizer_config.learning_rate.polynomial.initial_learning_rate'


@pytest.fixture(autouse=True)
def _logging_levels_restored():
  """The boundary silences logging after an error (the process is about to exit); in this
  one test process later tests need their warnings back."""
  import logging  # pylint: disable=g-import-not-at-top
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  verbosity = absl_logging.get_verbosity()
  level = logging.getLogger('tensorflow').level
  yield
  absl_logging.set_verbosity(verbosity)
  logging.getLogger('tensorflow').setLevel(level)


def _run_main(argv, error, monkeypatch, capsys, env=None):
  """cli_main.main with a command that raises `error`: (exit code, stderr lines)."""
  monkeypatch.delenv(cli_main.TRACEBACK_ENV, raising=False)
  for key, value in (env or {}).items():
    monkeypatch.setenv(key, value)

  def runner(command, argv):
    del command, argv
    raise error

  code = cli_main.main(['tfm'] + argv, runner=runner)
  return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize('error, code, line', [
    (configs.ConfigError("trainer.train_steps='abc': must be an integer"), 1,
     "tfm export: error: trainer.train_steps='abc': must be an integer"),
    (flags.UnrecognizedFlagError('lr'), 2, "tfm export: error: Unknown command line flag 'lr'"),
    (FileNotFoundError(2, 'No such file or directory', 'x.tsv'), 1,
     "tfm export: error: [Errno 2] No such file or directory: 'x.tsv'"),
    (errors.InputError('bad\n  In call to configurable \'Trainer\' (<class ...>)'), 1,
     'tfm export: error: bad'),
])
def test_known_errors_are_one_line_with_exit_code(error, code, line, monkeypatch, capsys):
  """Our own, absl's and file errors: exactly one line on stderr, 2 for flags, else 1; gin's
  call-site notes are dropped."""
  assert _run_main(['export'], error, monkeypatch, capsys) == (code, [line])


def test_traceback_on_request(monkeypatch, capsys):
  """--traceback or TFM_TRACEBACK=1 adds the traceback above the same last line."""
  for argv, env in ((['export', '--traceback'], None), (['export'], {'TFM_TRACEBACK': '1'})):
    code, lines = _run_main(argv, configs.ConfigError('k=1: no'), monkeypatch, capsys, env)
    assert code == 1
    assert lines[0] == 'Traceback (most recent call last):'
    assert lines[-1] == 'tfm export: error: k=1: no'


def test_a_bug_keeps_its_traceback(monkeypatch, capsys):
  """An exception that is not about the user's input propagates (with its traceback)."""
  with pytest.raises(ZeroDivisionError):
    _run_main(['export'], ZeroDivisionError('ours'), monkeypatch, capsys)


def test_unknown_command_and_import(monkeypatch, capsys):
  """A misspelt command names the command it looks like and prints usage, exit 2; a word
  like none of them gets no guess; a missing --import module is one line."""
  assert cli_main.main(['tfm', 'exprot']) == 2
  err = capsys.readouterr().err
  assert err.splitlines()[0] == "tfm: error: unknown command 'exprot'; did you mean export?"
  assert 'commands: train_experiment' in err
  assert cli_main.main(['tfm', 'fly']) == 2
  assert capsys.readouterr().err.splitlines()[0] == "tfm: error: unknown command 'fly'"
  code = cli_main.main(['tfm', 'export', '--import=no_such_tasks'],
                       runner=lambda command, argv: None)
  assert code == 2
  assert capsys.readouterr().err.splitlines() == [
      "tfm export: error: --import=no_such_tasks: no module 'no_such_tasks' (run tfm from the "
      'folder holding it, or put it on PYTHONPATH)']
  assert cli_main.main(['tfm', 'export', '--import=json.no_such_tasks'],
                       runner=lambda command, argv: None) == 2
  assert capsys.readouterr().err.splitlines() == [
      "tfm export: error: --import=json.no_such_tasks: no module 'json.no_such_tasks' (run tfm "
      'from the folder holding it, or put it on PYTHONPATH)']
  assert cli_main.main(['tfm', 'export', '--import=.tasks'],
                       runner=lambda command, argv: None) == 2
  assert capsys.readouterr().err.startswith("tfm export: error: --import=.tasks: no module '.tasks'")


@pytest.mark.parametrize('override, message', [
    ('task.train_data.seq_lenght=3',
     r"^params override: unknown key 'seq_lenght' \(in TextDataConfig\); did you "
     r'mean seq_length'),
    ('task: {a: [1,', r'^params override: not valid YAML or JSON at line 1, column 14:'),
    (f'{LR}=-1.0', rf'^{LR}=-1\.0: must be > 0$'),
    (f'{LR}=0.0', rf'^{LR}=0\.0: must be > 0$'),
    (f'{LR}=abc', rf"^{LR}='abc': must be a number$"),
    ('trainer.optimizer_config.learning_rate.polynomial.end_learning_rate=-0.1',
     r'end_learning_rate=-0\.1: must be >= 0$'),
    ('trainer.train_steps=abc', r"^trainer\.train_steps='abc': must be an integer$"),
    ('trainer.train_steps=1.5', r'^trainer\.train_steps=1\.5: must be an integer$'),
    ('trainer.train_steps=0', r'^trainer\.train_steps=0: must be >= 1$'),
    ('trainer.validation_steps=0', r'^trainer\.validation_steps=0: must be >= 1, or -1'),
    ('task.train_data.global_batch_size=0', r'global_batch_size=0: must be > 0$'),
    ('task.train_data=3', r'^task\.train_data=3: must be a group of keys'),
    ('task.model.fast_dropout=maybe', r"^task\.model\.fast_dropout='maybe': must be true or "),
    ('trainer.optimizer_config.warmup.linear.warmup_steps=-1',
     r'warmup_steps=-1: must be >= 0$'),
])
def test_bad_overrides_fail_naming_key_and_value(override, message, monkeypatch):
  """Each bad --params_override fails while the config is built, naming the key."""
  monkeypatch.delenv('MRPC_DATA_DIR', raising=False)
  with pytest.raises(errors.InputError, match=message):
    experiment_config.parse_experiment('bert_mrpc_tiny', params_override=override)


def test_integer_learning_rate_means_a_float():
  """`initial_learning_rate=1` (YAML int) is 1.0, as the user meant, not an int that breaks
  the schedule's tf.pow; decay and warm-up follow train_steps as before."""
  params = experiment_config.parse_experiment('bert_mrpc_tiny', params_override=f'{LR}=1')
  value = params.trainer.optimizer_config.learning_rate.polynomial.initial_learning_rate
  assert value == 1.0 and isinstance(value, float)


def test_unknown_experiment_and_missing_files_are_named(tmp_path):
  """A misspelt experiment gets suggestions; missing YAML and gin files are named."""
  with pytest.raises(experiment_config.ExperimentConfigError,
                     match=r"experiment 'bert_mrpc_tyni': no such registered experiment; did "
                           r'you mean bert_mrpc_tiny'):
    experiment_config.parse_experiment('bert_mrpc_tyni', known=['bert_mrpc_tiny', 'bert_rte'])
  with pytest.raises(experiment_config.ExperimentConfigError) as unknown:  # Names not given.
    experiment_config.parse_experiment('bert_mrpc_tyni')
  assert str(unknown.value) == ("experiment 'bert_mrpc_tyni': no such registered experiment "
                                '(your own registrations must be imported first)')
  missing = str(tmp_path / 'missing.yaml')
  with pytest.raises(experiment_config.ExperimentConfigError,
                     match=rf'config file {missing}: no such file'):
    experiment_config.parse_experiment('bert_mrpc_tiny', config_files=[missing])
  with pytest.raises(experiment_config.ExperimentConfigError,
                     match=rf'config file {tmp_path}: is a folder'):
    experiment_config.parse_experiment('bert_mrpc_tiny', config_files=[str(tmp_path)])
  with pytest.raises(experiment_config.ExperimentConfigError, match='gin file .*no such file'):
    experiment_config.parse_gin([str(tmp_path / 'missing.gin')], [])


def test_gin_errors_name_file_and_line(tmp_path):
  """A gin syntax error names the file and the line; an unclosed bracket (Python's tokenizer
  error inside gin) says so; a bad binding is quoted."""
  path = tmp_path / 'bad.gin'
  path.write_text('a.b = (1,\nc = 3\n')
  with pytest.raises(experiment_config.ExperimentConfigError,
                     match=rf"^gin file {path}: Failed to parse token 'c' \(bad\.gin, line 2\)$"):
    experiment_config.parse_gin([str(path)], [])
  unclosed = tmp_path / 'unclosed.gin'
  unclosed.write_text('a.b = [1, 2\n')
  with pytest.raises(experiment_config.ExperimentConfigError,
                     match=rf'^gin file {unclosed}: .*: an unclosed bracket or string\?$'):
    experiment_config.parse_gin([str(unclosed)], [])
  with pytest.raises(experiment_config.ExperimentConfigError,
                     match=r"^gin binding 'x\.y = ': Unable to parse value\. \(line 1\)$"):
    experiment_config.parse_gin([], ['x.y = '])


def _saved_run(tmp_path, experiment, **overrides):
  """A model_dir as tfm train_experiment leaves it: tfm_run.json and params.yaml."""
  from official.core import train_utils  # pylint: disable=g-import-not-at-top
  params = experiment_config.parse_experiment(experiment, params_override=json.dumps(overrides))
  model_dir = str(tmp_path / 'run')
  runs.record_experiment(model_dir, experiment)
  train_utils.serialize_config(params, model_dir)
  return model_dir


@pytest.mark.parametrize('saved, now, warned', [
    ('bfloat16', '', True), ('', 'bfloat16', True), ('bfloat16', 'bfloat16', False),
    (None, '', False)])
def test_a_run_resumed_in_another_compute_type_is_warned_of(tmp_path, caplog, saved, now,
                                                             warned):
  """A run with a checkpoint resumed in another type (bert_*_minilm's follows the CPU) is
  not refused (its float32 checkpoints restore) but warned of, naming both types."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model_dir = _saved_run(tmp_path, 'bert_mrpc_tiny',
                         runtime={'mixed_precision_dtype': saved})
  tf.train.Checkpoint(step=tf.Variable(3)).write(os.path.join(model_dir, 'ckpt-3'))
  with open(os.path.join(model_dir, 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "ckpt-3"\n')
  params = experiment_config.parse_experiment(
      'bert_mrpc_tiny', params_override=json.dumps({'runtime': {'mixed_precision_dtype': now}}))
  runs.check_model_dir(model_dir, 'bert_mrpc_tiny', params, label='--model_dir')
  runs.warn_of_another_compute_type(model_dir, params, label='--model_dir')
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  before, after = saved or 'float32', now or 'float32'
  assert warnings == ([f'--model_dir={model_dir} trained in {before}; this process computes in '
                       f'{after} from its last checkpoint '
                       f'(--params_override=runtime.mixed_precision_dtype='
                       f"{before if before != 'float32' else repr('')} keeps {before})"]
                      if warned else [])


def test_model_dir_of_another_experiment_or_model_is_refused(tmp_path, monkeypatch):
  """Another experiment's run, or the same experiment's run of another model, is refused
  naming the folder, both experiments and the differing key; a changed dropout is fine."""
  monkeypatch.delenv('MRPC_DATA_DIR', raising=False)
  model_dir = _saved_run(tmp_path, 'bert_mrpc_tiny')
  minilm = experiment_config.parse_experiment('bert_mrpc_minilm')
  with pytest.raises(runs.ModelDirError,
                     match=rf"^--model_dir={model_dir} holds a run of experiment "
                           r"'bert_mrpc_tiny', not 'bert_mrpc_minilm': use another"):
    runs.check_model_dir(model_dir, 'bert_mrpc_minilm', minilm, label='--model_dir')
  wider = experiment_config.parse_experiment(
      'bert_mrpc_tiny', params_override='task.model.encoder.bert.hidden_size=64')
  with pytest.raises(runs.ModelDirError,
                     match=r"whose model differs from experiment 'bert_mrpc_tiny' "
                           r'\(task\.model\.encoder\.bert\.hidden_size: 32 there, 64 now\)'):
    runs.check_model_dir(model_dir, 'bert_mrpc_tiny', wider)
  other_dropout = experiment_config.parse_experiment(
      'bert_mrpc_tiny', params_override='task.model.dropout_rate=0.3')
  runs.check_model_dir(model_dir, 'bert_mrpc_tiny', other_dropout)
  runs.check_model_dir(str(tmp_path / 'new'), 'bert_mrpc_minilm', minilm)
  (tmp_path / 'a_file').write_text('')
  with pytest.raises(runs.ModelDirError, match='is a file, not a folder'):
    runs.check_model_dir(str(tmp_path / 'a_file'), 'bert_mrpc_minilm', minilm)


def test_eval_of_a_folder_without_a_checkpoint_is_refused_before_writing(tmp_path, monkeypatch):
  """`--mode=eval` of a misspelt folder is refused as missing, and of a run that saved no
  checkpoint yet as holding none (Model Garden would score the initial weights and keep them
  as best); nothing is written. A folder with a checkpoint passes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mrpc_task import training  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv('MRPC_DATA_DIR', raising=False)
  typo, no_checkpoint = str(tmp_path / 'typo'), _saved_run(tmp_path, 'bert_mrpc_tiny')
  before = sorted(os.listdir(no_checkpoint))
  for model_dir, message in ((typo, ': no such folder$'),
                             (no_checkpoint, ' holds no checkpoint to evaluate \\(')):
    with pytest.raises(runs.ModelDirError, match=rf'^--model_dir={model_dir}{message}'):
      training.train_experiment('bert_mrpc_tiny', model_dir, 'eval',
                                model_dir_label='--model_dir')
  assert not os.path.exists(typo) and sorted(os.listdir(no_checkpoint)) == before
  tf.train.Checkpoint(step=tf.Variable(3)).save(os.path.join(no_checkpoint, 'ckpt'))
  runs.check_has_checkpoint(no_checkpoint)


def test_a_folder_that_is_no_run_of_ours_is_named_for_what_it_lacks(tmp_path, monkeypatch):
  """The commands that read a run (export, evaluate, soup): an empty folder lacks params.yaml
  whether or not --experiment is given; a run without tfm_run.json (trained by Model Garden
  itself) needs --experiment, and reads with it."""
  monkeypatch.delenv('MRPC_DATA_DIR', raising=False)
  (tmp_path / 'empty').mkdir()
  for experiment in (None, 'bert_mrpc_tiny'):
    with pytest.raises(runs.ModelDirError, match=r'empty has no params\.yaml: not a training '):
      runs.load_run_config(str(tmp_path / 'empty'), experiment)
  model_dir = _saved_run(tmp_path, 'bert_mrpc_tiny')
  os.remove(os.path.join(model_dir, runs.RUN_FILE))
  with pytest.raises(runs.ModelDirError, match=(
      rf'^model_dir={model_dir} records no experiment \(no tfm_run\.json: trained by Model '
      r'Garden itself\?\): name it with --experiment$')):
    runs.load_run_config(model_dir)
  assert runs.load_run_config(model_dir, 'bert_mrpc_tiny')[0] == 'bert_mrpc_tiny'


def _digest(folder):
  """A hash of every file's name and bytes under a folder."""
  digest = hashlib.sha256()
  for root, _, files in sorted(os.walk(folder)):
    for name in sorted(files):
      path = os.path.join(root, name)
      digest.update(path.encode())
      with open(path, 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def _error_line(result):
  """The last stderr line, asserting that no traceback came before it."""
  assert 'Traceback' not in result['stderr'], result['stderr'][-3000:]
  return result['stderr'].strip().splitlines()[-1]


@pytest.mark.slow
def test_cli_refuses_to_damage_a_run_or_its_export(trained, exported, tmp_path):
  """`tfm`: another experiment on a run's folder, an export over an existing one, predictions
  written over their input, a missing ensemble member and soups over nothing or over their
  own run all stop with one line and exit 1; nothing changes on disk."""
  before = _digest(trained)
  pairs = tmp_path / 'pairs.tsv'
  shutil.copy(os.path.join(FIXTURE_MRPC, 'dev.tsv'), pairs)
  results = cli_batch.run([
      {'argv': ['train_experiment', '--experiment=bert_mrpc_minilm', '--mode=train_and_eval',
                f'--model_dir={trained}']},
      {'argv': ['export', f'--model_dir={trained}', f'--export_dir={exported}']},
      {'argv': ['predict', f'--export_dir={exported}', f'--input={pairs}',
                f'--output={tmp_path}/./pairs.tsv']},
      {'argv': ['export', f'--model_dir={trained}', f'--export_dir={tmp_path}/ensemble',
                f'--members={tmp_path}/no_run']},
      {'argv': ['soup', f'--runs={tmp_path}/nothing*', f'--output_dir={trained}/soup']},
      {'argv': ['soup', f'--runs={trained}', f'--output_dir={trained}']},
  ])
  assert [result['code'] for result in results] == [1] * 6
  lines = [_error_line(result) for result in results]
  assert lines[0] == (
      f"tfm train_experiment: error: --model_dir={trained} holds a run of experiment "
      "'bert_mrpc_tiny', not 'bert_mrpc_minilm': use another --model_dir, or "
      f'delete {trained} to start over')
  assert lines[1] == (
      f"tfm export: error: --export_dir='{exported}' already exists; pass --overwrite to "
      'replace it, or choose another --export_dir')
  assert lines[2].startswith(
      f"tfm predict: error: --output='{tmp_path}/./pairs.tsv' is also --input: ")
  assert lines[3] == f'tfm export: error: --members: {tmp_path}/no_run: no such folder'
  assert lines[4] == f'tfm soup: error: --runs: {tmp_path}/nothing* matches no folder'
  assert lines[5].startswith(
      f"tfm soup: error: --output_dir='{trained}' is also --runs ({trained}): ")
  with open(pairs, 'rb') as f, open(os.path.join(FIXTURE_MRPC, 'dev.tsv'), 'rb') as g:
    assert f.read() == g.read()
  assert _digest(trained) == before


@pytest.mark.slow
def test_cli_flag_errors_and_traceback(tmp_path):
  """The real `tfm` script: an unknown flag is one line with exit 2; --traceback shows the
  traceback above the line."""
  result = subprocess.run([TFM, 'predict', '--export_dir=x', '--input=y', '--lr=3'],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=child_env(),
                          timeout=600)
  assert (result.returncode, _error_line({'stderr': result.stderr})) == (
      2, "tfm predict: error: Unknown command line flag 'lr'")
  (traced,) = cli_batch.run([{'argv': ['predict', f'--export_dir={tmp_path}', '--input=-',
                                       '--traceback']}])
  assert traced['code'] == 1
  assert 'Traceback (most recent call last)' in traced['stderr']
  assert traced['stderr'].strip().splitlines()[-1] == (
      f'tfm predict: error: --export_dir={tmp_path}: holds no SavedModel (make one with tfm '
      'export)')


def test_undefined_metric_never_selects_the_best_checkpoint(tmp_path):
  """An evaluation whose F1 is NaN is skipped: it neither becomes the first best nor blocks
  a later defined one."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mrpc_task import training  # pylint: disable=g-import-not-at-top
  params = experiment_config.parse_experiment('bert_mrpc_tiny')
  exporter = training.best_checkpoint_exporter(params, str(tmp_path),
                                            tf.distribute.get_strategy())
  checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
  assert not exporter.maybe_export_checkpoint(checkpoint, {'f1': math.nan}, 1)
  assert tf.train.latest_checkpoint(str(tmp_path / 'best_ckpt')) is None
  assert exporter.maybe_export_checkpoint(checkpoint, {'f1': 0.5}, 2)
  assert not exporter.maybe_export_checkpoint(checkpoint, {'f1': math.nan}, 3)
  with open(tmp_path / 'best_ckpt' / 'info.json') as f:
    assert json.load(f)['f1'] == 0.5


def test_help_and_argument_errors_answer_without_tensorflow():
  """`tfm --help`, a command's --help (its own flags listed), a misspelt command, an unknown
  flag, a flag out of range and an --import module that is not there answer without
  importing TensorFlow."""
  script = (
      'import json, sys\n'
      'from mrpc_task.cli import main\n'
      'codes = [main.main(["tfm"] + argv) for argv in json.loads(sys.argv[1])]\n'
      'print(json.dumps([codes, "tensorflow" in sys.modules]))\n')
  argvs = [['--help'], ['export', '--help'], ['trian'], ['predict', '--lr=3'],
           ['export', '--model_dir=x', '--export_dir=y', '--sort_chunk_size=-1'],
           ['train_experiment', '--import=no_such_registrations', '--experiment=x']]
  result = subprocess.run([sys.executable, '-c', script, json.dumps(argvs)], cwd=REPO_ROOT,
                          env=child_env(), capture_output=True, text=True, timeout=300)
  codes, imported = json.loads(result.stdout.strip().splitlines()[-1])
  assert (codes, imported) == ([0, 0, 2, 2, 2, 2], False), result.stderr[-2000:]
  assert '--sort_chunk_size: With --trim_padding' in result.stdout  # export's own flags.
  assert ("tfm: error: unknown command 'trian'; did you mean train_experiment?"
          in result.stderr)


def test_output_into_a_closed_pipe_ends_quietly():
  """`tfm --help | head` (or predictions piped into a reader that stops): a reader that is
  gone before tfm writes ends tfm with SIGPIPE's exit code, no traceback, no error line."""
  for buffered in (True, False):  # Python buffers stdout into a pipe unless told not to.
    env = child_env()
    env.pop('PYTHONUNBUFFERED', None)
    if not buffered:
      env['PYTHONUNBUFFERED'] = '1'
    read_end, write_end = os.pipe()
    os.close(read_end)  # Every write to the pipe now fails: no race with a reader.
    try:
      result = subprocess.run([TFM, '--help'], stdout=write_end, stderr=subprocess.PIPE,
                              cwd=REPO_ROOT, env=env, text=True, timeout=300)
    finally:
      os.close(write_end)
    assert (result.returncode, result.stderr) == (141, ''), buffered


@pytest.mark.parametrize('variable, default', [
    ('TF_CPP_MIN_LOG_LEVEL', '3'), ('TF_USE_LEGACY_KERAS', '1'),
    pytest.param('TF_ENABLE_ONEDNN_OPTS', '1', marks=pytest.mark.skipif(
        not cpu_features.is_x86(), reason='set on x86 CPUs only'))])
def test_tensorflow_start_up_settings_apply_unless_set(monkeypatch, variable, default):
  """tfm sets TF_CPP_MIN_LOG_LEVEL=3 (no CUDA-probe ERROR above its own lines),
  TF_USE_LEGACY_KERAS=1 (no Keras 3 loaded beside tf_keras) and TF_ENABLE_ONEDNN_OPTS=1
  (oneDNN on CPUs where TensorFlow leaves it off) unless the user set them."""
  monkeypatch.delenv(variable, raising=False)
  cli_main.main(['tfm', 'export'], runner=lambda command, argv: None)
  assert os.environ[variable] == default
  monkeypatch.setenv(variable, '0')
  cli_main.main(['tfm', 'export'], runner=lambda command, argv: None)
  assert os.environ[variable] == '0'


def test_a_run_of_ours_loads_neither_model_gardens_vision_nor_keras_3_nor_pandas(tmp_path):
  """`tfm train_experiment --import=MODULE` of this package's experiment: tfm imports
  TensorFlow its own way (`import_tensorflow`) before your module and again before the
  command's main, which then finds Model Garden's vision models, Keras 3 and pandas out of
  the process, tf_keras on the path it has for a missing pandas (mrpc_task/keras_private.py
  relies on it) and pandas importable. bert/sentence_prediction is still found when asked
  for."""
  (tmp_path / 'order_probe.py').write_text(
      'import __main__\n__main__.ORDER.append("your module")\n')
  script = (
      'import json, sys\n'
      'from mrpc_task.cli import main, train\n'
      'ORDER, FOUND = [], []\n'
      'import_tensorflow = main.import_tensorflow\n'
      'main.import_tensorflow = lambda: (ORDER.append("import_tensorflow"), import_tensorflow())\n'
      'def probe(argv):\n'
      '  ORDER.append("main")\n'
      '  import registry\n'
      '  train.register_model_garden_experiments("bert_mrpc_minilm")\n'
      '  FOUND.extend(m for m in ("official.vision", "keras", "sklearn", "pandas", "pyarrow")\n'
      '               if m in sys.modules)\n'
      '  from tf_keras.src.engine import data_adapter\n'
      '  import pandas\n'
      '  FOUND.append(data_adapter.pd is None and pandas.DataFrame is not None)\n'
      'train.main = probe\n'
      'code = main.main(["tfm", "train_experiment", "--import=order_probe",\n'
      '                  "--experiment=bert_mrpc_minilm", "--mode=train", "--model_dir=run"])\n'
      'from official.core import exp_factory\n'
      'train.register_model_garden_experiments("bert/sentence_prediction")\n'
      'task = type(exp_factory.get_exp_config("bert/sentence_prediction").task).__name__\n'
      'print(json.dumps([code, ORDER, FOUND, "official.vision" in sys.modules, task]))\n')
  result = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, env=child_env(),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout.strip().splitlines()[-1]) == [
      0, ['import_tensorflow', 'your module', 'import_tensorflow', 'main'], [True], True,
      'SentencePredictionConfig'], result.stderr[-2000:]
