"""The real `tfm` CLI: train + evaluate, then export, reload elsewhere and serve."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml

from mrpc_task import metrics
from mrpc_task import tsv_reader
from tests.conftest import (read_mrpc, FIXTURE_MRPC, TFM, run_tfm as _run, scalars as _scalars,
                            stored_weights)

def test_train_writes_params_checkpoints_and_summaries(trained):
  """params.yaml holds the overrides; ckpt-3/6 exist; eval summaries have accuracy and F1."""
  with open(os.path.join(trained, 'params.yaml')) as f:
    saved = yaml.safe_load(f)
  assert saved['trainer']['train_steps'] == 6
  assert saved['task']['train_data']['tsv_dir'] == FIXTURE_MRPC
  assert saved['task']['model']['encoder']['bert']['num_layers'] == 2
  assert tf.train.latest_checkpoint(trained).endswith('ckpt-6')
  assert os.path.exists(os.path.join(trained, 'ckpt-3.index'))
  assert tf.train.latest_checkpoint(os.path.join(trained, 'best_ckpt'))
  evals = _scalars(os.path.join(trained, 'validation'))
  for tag in ('accuracy', 'f1', 'glue_score', 'validation_loss'):
    assert set(evals[tag]) == {3, 6}, tag
  assert evals['glue_score'][6] == pytest.approx((evals['accuracy'][6] + evals['f1'][6]) / 2)
  assert 'training_loss' in _scalars(os.path.join(trained, 'train'))


def test_export_defaults_to_best_checkpoint(trained):
  """Without --checkpoint_path, export reads the best-by-F1 checkpoint the trainer kept;
  --pick=final (or a run without one) the latest."""
  from mrpc_task import runs  # pylint: disable=g-import-not-at-top
  chosen = runs.pick_checkpoint(trained, 'best_ckpt')
  assert chosen == tf.train.latest_checkpoint(os.path.join(trained, 'best_ckpt'))
  assert runs.pick_checkpoint(trained, '') == tf.train.latest_checkpoint(trained)
  assert runs.pick_checkpoint(trained, 'best_ckpt', pick='final') == (
      tf.train.latest_checkpoint(trained))


def _reference_logits(model_dir, sentence1, sentence2):
  """Logits of the step-6 model in this process, from the same checkpoint and tokenizer."""
  from mrpc_task import runs  # pylint: disable=g-import-not-at-top
  from mrpc_task import tokenization  # pylint: disable=g-import-not-at-top
  from official.core import task_factory  # pylint: disable=g-import-not-at-top
  _, params = runs.load_run_config(model_dir, 'bert_mrpc_tiny')
  model = task_factory.get_task(params.task).build_model()
  tf.train.Checkpoint(model=model).read(f'{model_dir}/ckpt-6').expect_partial()
  data = params.task.validation_data
  pre = tokenization.TextPreprocessor(
      vocab_file=data.vocab_file, lower_case=data.lower_case, seq_length=data.seq_length)
  return model(pre(tf.constant(sentence1), tf.constant(sentence2)), training=False).numpy()


def test_export_reloads_in_fresh_process_with_same_logits(trained, exported):
  """A fresh process (only tensorflow_text imported) gets the in-process logits, <= 1e-5."""
  dev = read_mrpc(os.path.join(FIXTURE_MRPC, 'dev.tsv'))
  script = (
      'import json, sys, tensorflow as tf, tensorflow_text\n'
      'pairs = json.load(sys.stdin)\n'
      f'fn = tf.saved_model.load({exported!r}).signatures["serving_default"]\n'
      'out = fn(sentence1=tf.constant(pairs[0]), sentence2=tf.constant(pairs[1]))\n'
      'print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if k != "class"}'
      ' | {"class": [c.decode() for c in out["class"].numpy()]}))\n')
  result = _run([sys.executable, '-c', script],
                input=json.dumps([dev.sentence1, dev.sentence2]))
  served = json.loads(result.stdout.strip().splitlines()[-1])
  logits = np.array(served['logits'])
  reference = _reference_logits(trained, dev.sentence1, dev.sentence2)
  assert logits.shape == (20, 2)
  assert np.max(np.abs(logits - reference)) <= 1e-5
  np.testing.assert_array_equal(served['class_id'], np.argmax(reference, axis=1))
  assert served['class'] == [['not_equivalent', 'equivalent'][i] for i in served['class_id']]
  np.testing.assert_allclose(np.sum(served['probabilities'], axis=1), 1.0, rtol=1e-6)
  # The step-6 evaluation summary is these same predictions scored.
  evals = _scalars(os.path.join(trained, 'validation'))
  want = metrics.scores(dev.labels, served['class_id'])
  assert evals['accuracy'][6] == pytest.approx(want['accuracy'], abs=1e-6)
  assert evals['f1'][6] == pytest.approx(want['f1'], abs=1e-6)


def test_saved_model_cli_runs_the_export(exported):
  """TensorFlow's own saved_model_cli calls serving_default (tensorflow_text ops loaded)."""
  runner = ('import sys, tensorflow_text; from tensorflow.python.tools import saved_model_cli; '
            'sys.argv[0] = "saved_model_cli"; saved_model_cli.main()')
  result = _run([sys.executable, '-c', runner, 'run', '--dir', exported, '--tag_set', 'serve',
                 '--signature_def', 'serving_default', '--input_exprs',
                 'sentence1=["the cat sat", "stock rose"];sentence2=["the cat sat .", "a dog"]'])
  assert 'Result for output key class_id' in result.stdout
  assert 'Result for output key logits' in result.stdout


def test_export_of_a_bfloat16_run_stores_bfloat16_weights(trained, tmp_path):
  """--serving_dtype=auto follows runtime.mixed_precision_dtype: a bfloat16 run (here the
  override says so) exports bfloat16 weights, says so, and serves float32 outputs."""
  out = str(tmp_path / 'bf16')
  result = _run([TFM, 'export', f'--model_dir={trained}', f'--export_dir={out}',
                 '--params_override=runtime.mixed_precision_dtype=bfloat16'])
  assert result.stdout.strip().endswith(f'to {out} (bfloat16 weights, frozen into the graph)')
  stored = stored_weights(out)
  assert stored['bfloat16'] > 10 * stored['float32'] > 0  # Layer norms stay float32.
  loaded = tf.saved_model.load(out)
  logits = loaded.signatures['serving_default'](
      sentence1=tf.constant(['the cat sat']), sentence2=tf.constant(['a cat sat']))['logits']
  assert logits.dtype == tf.float32 and logits.shape == (1, 2)


def test_convert_checkpoint_cli_prints_usable_config(tmp_path):
  """`tfm convert_checkpoint --from=hf` writes the encoder, config and vocab, and says how to use them."""
  from registry import experiments  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'minilm'
  result = _run([TFM, 'convert_checkpoint', '--from=hf', f'--input={experiments.minilm_dir()}',
                 f'--output={out}'])
  assert sorted(os.listdir(out)) == ['bert_config.json', 'encoder.data-00000-of-00001',
                                     'encoder.index', 'vocab.txt']
  assert f'task.init_checkpoint: {out}/encoder' in result.stdout
  assert 'hidden_activation: mrpc_task>exact_gelu' in result.stdout
  assert 'num_layers: 6' in result.stdout
  # Pasted into a config it is the packaged encoder, and leaves the recipe's output_range.
  usage = yaml.safe_load(result.stdout.split('Use it with:\n', 1)[1])
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  params = exp_factory.get_exp_config('bert_mrpc_minilm')
  params.override({'task': {'model': {'encoder': usage['task.model.encoder']}}}, is_strict=True)
  assert params.task.model.encoder.as_dict() == exp_factory.get_exp_config(
      'bert_mrpc_minilm').task.model.encoder.as_dict()
  assert params.task.model.encoder.bert.output_range == 1


@pytest.fixture(scope='module')
def served(exported):
  return tf.saved_model.load(exported).signatures['serving_default']


@pytest.mark.parametrize('first, second', [
    ('', ''),
    ('word ' * 2000, 'x' * 10000),
    ('Ünïcödé → 東京 🙂 \u200b', '\x00\x01\x07\t\r\x1b[31m \ufeff'),
])
def test_export_answers_odd_inputs(served, first, second):
  """Empty, 10,000-character, Unicode and control-character inputs give finite logits."""
  out = served(sentence1=tf.constant([first, 'the cat']), sentence2=tf.constant([second, 'sat']))
  assert out['logits'].shape == (2, 2)
  assert np.all(np.isfinite(out['logits'].numpy()))
  assert set(out['class'].numpy()) <= {b'equivalent', b'not_equivalent'}


def test_export_answers_empty_batch(served):
  """A batch of 0 pairs returns empty outputs of the right shapes."""
  out = served(sentence1=tf.constant([], tf.string), sentence2=tf.constant([], tf.string))
  assert out['logits'].shape == (0, 2) and out['class_id'].shape == (0,)


def test_export_rejects_unequal_batches(served):
  """sentence1 and sentence2 of different lengths fail with a message saying so."""
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='sentence1 and sentence2 must have the same number of elements'):
    served(sentence1=tf.constant(['a', 'b']), sentence2=tf.constant(['a']))
