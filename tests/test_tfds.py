"""TFDS's real code for the nine GLUE tasks, as far as it goes without network: builders,
features, label names, file layout and download checksums, checked against each task's
spec; then a load that either works (network) or fails at once saying why (offline), and a
TFDS failure that is not the network named as what it is."""

import socket

import pytest
import requests
import tensorflow_datasets as tfds

from mrpc_task import data
from mrpc_task import glue
from official.core import exp_factory


pytestmark = pytest.mark.usefixtures('tfds_temporary_folders')


def _data_config(name, monkeypatch):
  for spec in glue.TASKS.values():
    monkeypatch.delenv(spec.data_dir_env, raising=False)
  monkeypatch.delenv(glue.GLUE_DIR_ENV, raising=False)
  return exp_factory.get_exp_config(name).task.validation_data


@pytest.mark.parametrize('task', sorted(glue.TASKS))
def test_builder_metadata_matches_each_task_spec(task, tmp_path, monkeypatch):
  """The builder imports (TFDS's own dependencies installed) and agrees with the spec: the
  feature keys the config reads, the label names in class-id order (a float for STS-B), the
  TSV columns TFDS itself reads those features from, the GLUE folder, and a registered
  SHA-256 checksum and size for the file it downloads."""
  spec = glue.TASKS[task]
  params = _data_config(f'bert_{task}_minilm', monkeypatch)
  builder = tfds.builder(params.tfds_name, data_dir=str(tmp_path))
  config = builder.builder_config
  features = builder.info.features
  keys = [key for key in (params.sentence1_key, params.sentence2_key) if key]
  assert keys == list(spec.feature_keys) and params.label_key in features
  assert set(keys) <= set(features)
  label = features[params.label_key]
  if spec.kind == 'score':
    assert label.dtype.name == 'float32' and not hasattr(label, 'names')
  else:
    assert list(label.names) == list(spec.class_names)
  assert config.data_dir == spec.glue_folder
  if task != 'mrpc':  # TFDS builds MRPC from the raw MSR files, not GLUE's TSVs.
    assert [config.text_features[key] for key in keys] == list(spec.text_columns)
    assert config.data_url in builder.url_infos
    info = builder.url_infos[config.data_url]
    assert len(info.checksum) == 64 and info.size > 0
  if not spec.header:  # CoLA's TSVs have no header: TFDS names that column itself.
    assert config.label_column == spec.label_column
  assert not builder.is_prepared()


def test_mrpc_downloads_are_registered():
  """glue/mrpc's three raw files have their checksums in TFDS."""
  builder = tfds.builder('glue/mrpc')
  urls = builder.url_infos
  for fragment in ('msr_paraphrase_train.txt', 'msr_paraphrase_test.txt', 'mrpc_dev_ids.tsv'):
    (url,) = [url for url in urls if fragment in url]
    assert len(urls[url].checksum) == 64 and urls[url].size > 0, url


@pytest.mark.parametrize('experiment, variable', [
    ('bert_mrpc_minilm', 'MRPC_DATA_DIR=/path/to/glue/MRPC'),
    ('bert_rte_minilm', 'RTE_DATA_DIR=/path/to/glue/RTE')])
def test_offline_load_fails_before_any_download_saying_why(tmp_path, monkeypatch, experiment,
                                                           variable):
  """Loading a GLUE task into an empty folder through the real TFDS code with no download
  host resolvable (as on a machine without network; made so here whatever this machine has):
  it fails before TFDS's ~3.5-minute retry loop starts, saying the servers are unreachable and
  how to use local TSV files (the task's own data folder variable), and nothing is written."""
  params = _data_config(experiment, monkeypatch)
  params.override({'tfds_data_dir': str(tmp_path), 'global_batch_size': 8})
  for name in ('https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy',
               'ALL_PROXY'):
    monkeypatch.delenv(name, raising=False)
  asked = []

  def unresolvable(host, *args, **kwargs):
    asked.append(host)
    raise socket.gaierror(-2, 'Name or service not known')

  monkeypatch.setattr(socket, 'getaddrinfo', unresolvable)
  with pytest.raises(data.DataSourceError) as raised:
    data.build_dataset(params)
  message = str(raised.value)
  assert 'no download server is reachable' in message and f'set {variable} (or ' in message
  assert 'GLUE_DIR' in message and 'importlib_resources' not in message
  assert 'dl.fbaipublicfiles.com' in asked
  assert not [p for p in tmp_path.rglob('*') if p.is_file()]  # Nothing downloaded.


def test_a_failure_that_is_not_the_network_is_named(tmp_path, monkeypatch):
  """An unknown dataset is reported as TFDS's own error, not as being offline."""
  params = _data_config('bert_mrpc_minilm', monkeypatch)
  params.override({'tfds_name': 'glue/no_such_task', 'tfds_data_dir': str(tmp_path)})
  with pytest.raises(data.DataSourceError, match="tfds_name='glue/no_such_task'.*TFDS could "
                                                 'not load it') as raised:
    data.build_dataset(params)
  assert 'reachable' not in str(raised.value) and 'DATA_DIR' not in str(raised.value)
  assert str(raised.value).endswith('To read local TSV files instead: override '
                                    'task.validation_data.source=tsv and '
                                    'task.validation_data.tsv_dir=/path')


def test_network_errors_are_recognised_through_their_causes():
  """A requests ConnectionError raised from a resolver error counts as offline; an import
  error does not."""
  try:
    try:
      raise OSError('[Errno -2] Name or service not known')
    except OSError as e:
      raise requests.exceptions.ConnectionError('Max retries exceeded') from e
  except requests.exceptions.ConnectionError as e:
    wrapped = RuntimeError('download failed')
    wrapped.__cause__ = e
  assert data._is_network_error(wrapped)  # pylint: disable=protected-access
  assert not data._is_network_error(  # pylint: disable=protected-access
      ModuleNotFoundError("No module named 'importlib_resources'"))
