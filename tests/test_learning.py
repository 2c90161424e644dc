"""MiniLM learns a one-sentence task and a score task through the registered experiments:
generated data in SST-2's and STS-B's GLUE layouts, a short fine-tuning, dev scores well
above chance. Generated data, not GLUE's: these are not GLUE results."""

import os

import numpy as np
import pytest
import tf_keras

from tests import tiny_runs

SUBJECTS = ('the film', 'this movie', 'the acting', 'the story', 'the soundtrack', 'the ending',
            'the cast', 'the script')
GOOD = ('wonderful', 'excellent', 'delightful', 'brilliant', 'superb', 'moving', 'charming',
        'great')
BAD = ('terrible', 'awful', 'boring', 'dreadful', 'dull', 'clumsy', 'painful', 'bad')
FRAMES = ('{s} was {w} .', 'i thought {s} was {w} .', 'honestly , {s} is {w} .',
          '{s} felt {w} from start to finish .', 'all in all {s} was quite {w} .')
# Pairs of sentences about who did what to whom: the score counts the parts they share.
WHO = ('a man', 'a woman', 'a child', 'the chef', 'a dog', 'the teacher')
DID = ('is cutting', 'is eating', 'is washing', 'is painting', 'is carrying', 'is cooking')
WHAT = ('an onion', 'a car', 'a fence', 'some bread', 'a box', 'the dishes')


def _sst2_folder(folder, rng):
  os.makedirs(folder)
  for split, rows in (('train', 320), ('dev', 120)):
    lines = ['sentence\tlabel']
    for _ in range(rows):
      label = rng.randint(2)
      word = rng.choice(GOOD if label else BAD)
      lines.append(rng.choice(FRAMES).format(s=rng.choice(SUBJECTS), w=word) + f' \t{label}')
    with open(os.path.join(folder, f'{split}.tsv'), 'w') as f:
      f.write('\n'.join(lines) + '\n')


def _stsb_folder(folder, rng):
  os.makedirs(folder)
  header = ('index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2'
            '\tscore')
  for split, rows in (('train', 320), ('dev', 120)):
    lines = [header]
    for i in range(rows):
      first = [rng.randint(len(WHO)), rng.randint(len(DID)), rng.randint(len(WHAT))]
      second = [part if rng.rand() < 0.5 else rng.randint(size)
                for part, size in zip(first, (len(WHO), len(DID), len(WHAT)))]
      shared = sum(a == b for a, b in zip(first, second))
      score = min(5.0, max(0.0, 5 * shared / 3 + rng.uniform(-0.3, 0.3)))
      texts = [f'{WHO[a]} {DID[b]} {WHAT[c]} .' for a, b, c in (first, second)]
      lines.append(f'{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t'
                   f'{texts[0]}\t{texts[1]}\t{score:.3f}')
    with open(os.path.join(folder, f'{split}.tsv'), 'w') as f:
      f.write('\n'.join(lines) + '\n')


def _minilm_params(experiment, folder, steps):
  """The registered MiniLM experiment, its recipe and speed switches as they are, on the
  generated folder, for `steps` steps of 16."""
  from official.core import exp_factory  # pylint: disable=g-import-not-at-top
  params = exp_factory.get_exp_config(experiment)
  data = {'source': 'tsv', 'tsv_dir': folder, 'global_batch_size': 16, 'seq_length': 32}
  params.override({
      'task': {'train_data': data, 'validation_data': data},
      'trainer': {'train_steps': steps, 'validation_interval': steps,
                  'checkpoint_interval': steps, 'steps_per_loop': steps,
                  'summary_interval': steps,
                  # Learning is the subject: no second copy of the weights as best_ckpt
                  # (a MiniLM checkpoint with Adam's slots is 270 MB, 1.5 s to write).
                  'best_checkpoint_export_subdir': '',
                  'optimizer_config': {
                      'learning_rate': {'polynomial': {'decay_steps': steps}},
                      'warmup': {'linear': {'warmup_steps': steps // 10}}}},
  }, is_strict=True)
  params.validate()
  return params


@pytest.fixture
def minilm_policy():
  """The experiment's mixed precision, as `tfm train_experiment` sets it, then float32 again
  for the other tests of this process."""
  from official.modeling import performance  # pylint: disable=g-import-not-at-top
  yield performance.set_mixed_precision_policy
  tf_keras.mixed_precision.set_global_policy('float32')


@pytest.mark.slow
def test_minilm_learns_a_one_sentence_task_and_a_score_task(tmp_path, minilm_policy):
  """From MiniLM, batches of 16: after 40 steps dev accuracy >= 0.9 on generated sentiment
  (chance 0.5); after 100 steps dev Pearson and Spearman >= 0.8 on generated similarity
  scores (chance 0; a score head starts far from 0-5 labels, so it needs more steps); each
  the task's own metric, reported by its evaluation."""
  rng = np.random.RandomState(11)
  _sst2_folder(str(tmp_path / 'SST-2'), rng)
  _stsb_folder(str(tmp_path / 'STS-B'), rng)
  found = {}
  for experiment, folder, steps in (('bert_sst2_minilm', 'SST-2', 40),
                                    ('bert_stsb_minilm', 'STS-B', 100)):
    params = _minilm_params(experiment, str(tmp_path / folder), steps=steps)
    minilm_policy(params.runtime.mixed_precision_dtype or 'float32')
    found[experiment] = tiny_runs.train(params, str(tmp_path / f'{experiment}_run'))
  print('dev scores after fine-tuning:', found)  # Shown with pytest -s.
  assert found['bert_sst2_minilm']['accuracy'] >= 0.9, found
  assert found['bert_stsb_minilm']['pearson'] >= 0.8, found
  assert found['bert_stsb_minilm']['spearman'] >= 0.8, found
