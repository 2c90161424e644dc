"""TFDS's real code for the GLUE pair tasks, as far as it goes without network: builders,
features, download URLs and checksums; then a load that either works (network) or fails at
once saying why (offline), and a TFDS failure that is not the network named as what it is."""

import time

import pytest
import requests
import tensorflow_datasets as tfds

from mrpc_task import data
from official.core import exp_factory
from registry import experiments

# experiment -> the URL fragments TFDS downloads for its task.
GLUE_DOWNLOADS = {
    'bert_mrpc_minilm': ('msr_paraphrase_train.txt', 'msr_paraphrase_test.txt',
                         'mrpc_dev_ids.tsv'),
    'bert_rte_minilm': ('RTE.zip',),
    'bert_qqp_minilm': ('QQP.zip',),
}


def _data_config(name, monkeypatch):
  for env in (experiments.DATA_DIR_ENV, experiments.RTE_DATA_DIR_ENV,
              experiments.QQP_DATA_DIR_ENV):
    monkeypatch.delenv(env, raising=False)
  return exp_factory.get_exp_config(name).task.validation_data


@pytest.mark.parametrize('name', sorted(GLUE_DOWNLOADS))
def test_builder_metadata_matches_what_we_read(name, tmp_path, monkeypatch):
  """The builder imports (TFDS's own dependencies installed), has the features our config
  reads, and registers a SHA-256 checksum and size for each file it downloads."""
  params = _data_config(name, monkeypatch)
  builder = tfds.builder(params.tfds_name, data_dir=str(tmp_path))
  features = builder.info.features
  for key in (params.sentence1_key, params.sentence2_key, params.label_key):
    assert key in features, key
  assert features[params.label_key].num_classes == 2
  urls = builder.url_infos
  for fragment in GLUE_DOWNLOADS[name]:
    (url,) = [url for url in urls if fragment in url]
    assert len(urls[url].checksum) == 64 and urls[url].size > 0, url
  assert not builder.is_prepared()


def test_load_either_works_or_fails_fast_saying_offline(tmp_path, monkeypatch):
  """Loading glue/mrpc into an empty folder through the real TFDS code: with network it
  yields pairs; without, it fails within seconds (not TFDS's ~3.5-minute retry loop) with a
  message that says the servers are unreachable and how to use local TSV files."""
  params = _data_config('bert_mrpc_minilm', monkeypatch)
  params.override({'tfds_data_dir': str(tmp_path), 'global_batch_size': 8})
  start = time.monotonic()
  try:
    features, labels = next(iter(data.build_dataset(params)))
  except data.DataSourceError as e:
    assert time.monotonic() - start < 60
    assert 'no download server is reachable' in str(e) and 'MRPC_DATA_DIR' in str(e)
    assert 'importlib_resources' not in str(e)
  else:
    assert features['input_word_ids'].shape[0] == 8 and labels.shape == (8,)


def test_a_failure_that_is_not_the_network_is_named(tmp_path, monkeypatch):
  """An unknown dataset is reported as TFDS's own error, not as being offline."""
  params = _data_config('bert_mrpc_minilm', monkeypatch)
  params.override({'tfds_name': 'glue/no_such_task', 'tfds_data_dir': str(tmp_path)})
  with pytest.raises(data.DataSourceError, match="tfds_name='glue/no_such_task'.*TFDS could "
                                                 'not load it') as raised:
    data.build_dataset(params)
  assert 'reachable' not in str(raised.value)


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
