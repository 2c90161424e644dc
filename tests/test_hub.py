"""The tutorial's TF Hub route: `task.hub_module_url` loads an encoder in TF Hub's text-encoder
format, trains it and exports it; made offline from a tiny encoder with Model Garden's own
TF Hub exporter."""

import numpy as np
import pytest
import tensorflow as tf
from official.core import task_factory
from official.nlp.configs import encoders
from official.nlp.tools import export_tfhub_lib

from mrpc_task import configs
from mrpc_task import export
from mrpc_task.checkpoints import pretrained
from tests.conftest import FIXTURE_VOCAB, tiny_encoder, tiny_experiment


@pytest.fixture(scope='module')
def hub_module(tmp_path_factory):
  """(TF Hub SavedModel folder, the encoder it was made from) for the fixture vocab."""
  folder = tmp_path_factory.mktemp('hub')
  config = tiny_encoder()
  encoder = encoders.build_encoder(config)
  checkpoint = tf.train.Checkpoint(encoder=encoder).save(str(folder / 'encoder'))
  export_tfhub_lib.export_model(str(folder / 'module'), encoder_config=config,
                                model_checkpoint_path=checkpoint, with_mlm=False,
                                vocab_file=FIXTURE_VOCAB, do_lower_case=True)
  return str(folder / 'module'), encoder


def test_hub_encoder_computes_as_the_encoder_it_was_made_from(hub_module, monkeypatch, tmp_path):
  """With task.hub_module_url the model's encoder gives the original encoder's outputs; a
  training step moves its weights (it is trainable); the export serves what the model
  computes in this process."""
  url, original = hub_module
  params = tiny_experiment(monkeypatch, output_range=None)
  params.task.hub_module_url = url
  params.validate()
  task = task_factory.get_task(params.task)
  model = task.build_model()
  task.initialize(model)  # Nothing to restore: the module brings its weights.
  features, labels = next(iter(task.build_inputs(params.task.validation_data)))
  hub_encoder = model.checkpoint_items['encoder']
  np.testing.assert_allclose(hub_encoder(features)['pooled_output'].numpy(),
                             original(features)['pooled_output'].numpy(), atol=1e-5)
  before = [v.numpy().copy() for v in hub_encoder.trainable_variables]
  assert len(before) > 10
  optimizer = task.create_optimizer(params.trainer.optimizer_config)
  optimizer.learning_rate = 1e-2
  task.train_step((features, labels), model, optimizer, metrics=task.build_metrics())
  moved = [not np.array_equal(v.numpy(), old)
           for v, old in zip(hub_encoder.trainable_variables, before)]
  assert sum(moved) > len(moved) // 2
  path, frozen = export.export_model(params.task, model, str(tmp_path / 'export'))
  assert not frozen  # A TF Hub encoder's weights stay variables.
  serve = tf.saved_model.load(path).signatures['serving_default']
  from tests.conftest import read_mrpc, FIXTURE_MRPC  # pylint: disable=g-import-not-at-top
  dev = read_mrpc(f'{FIXTURE_MRPC}/dev.tsv')
  served = serve(sentence1=tf.constant(dev.sentence1), sentence2=tf.constant(dev.sentence2))
  module = export.TextServingModule(params.task, model, trim_padding=False)
  expected = module.outputs(module.encode(tf.constant(dev.sentence1),
                                          tf.constant(dev.sentence2)))
  np.testing.assert_allclose(served['logits'].numpy(), expected.numpy(), atol=1e-5)


def test_hub_module_url_excludes_checkpoints_and_must_exist(tmp_path, monkeypatch):
  """One encoder source at a time; a path that holds no module is named before training."""
  params = tiny_experiment(monkeypatch)
  params.task.hub_module_url = str(tmp_path)
  params.task.init_checkpoint = 'x'
  with pytest.raises(configs.ConfigError, match='set at most one of'):
    params.task.validate()
  with pytest.raises(pretrained.CheckpointReadError,
                     match=r'task\.hub_module_url=.*: holds no SavedModel'):
    pretrained.encoder_from_hub(str(tmp_path))
  with pytest.raises(pretrained.CheckpointReadError, match='no such folder'):
    pretrained.encoder_from_hub(str(tmp_path / 'nothing'))
