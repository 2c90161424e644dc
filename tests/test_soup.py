"""Weight soups: exact averages of checkpoints, and the greedy rule."""

import numpy as np
import pytest
import tensorflow as tf
from official.core import task_factory

from mrpc_task.tuning import soup
from tests.conftest import tiny_experiment


def test_average_of_checkpoints_is_the_mean_of_every_weight(monkeypatch, tmp_path):
  """Each weight of the soup equals the mean of that weight over the checkpoints."""
  task = task_factory.get_task(tiny_experiment(monkeypatch).task)
  models = [task.build_model() for _ in range(3)]
  paths = [tf.train.Checkpoint(model=m).write(str(tmp_path / f'run{i}'))
           for i, m in enumerate(models)]
  souped = task.build_model()
  soup.average_checkpoints(souped, paths)
  assert len(souped.weights) > 10
  for index, weight in enumerate(souped.weights):
    expected = np.mean([m.weights[index].numpy() for m in models], axis=0)
    np.testing.assert_allclose(weight.numpy(), expected, rtol=1e-6, atol=1e-7)
  kernel = [w.name for w in souped.weights].index('sentence_prediction/logits/kernel:0')
  assert not np.allclose(models[0].weights[kernel].numpy(), souped.weights[kernel].numpy())


def test_greedy_soup_keeps_a_run_only_if_the_score_does_not_drop():
  """Best run first; a run that lowers the soup's score is left out, a tie is kept."""
  scores = {('a',): 80.0, ('a', 'b'): 79.0, ('a', 'c'): 80.0, ('a', 'c', 'd'): 81.5}
  kept, tried = soup.greedy(['a', 'b', 'c', 'd'], lambda members: scores[tuple(members)])
  assert kept == ['a', 'c', 'd']
  assert tried == [('a', 80.0, True), ('b', 79.0, False), ('c', 80.0, True),
                   ('d', 81.5, True)]


def test_average_of_nothing_is_refused(monkeypatch):
  task = task_factory.get_task(tiny_experiment(monkeypatch).task)
  with pytest.raises(ValueError, match='at least one checkpoint'):
    soup.average_checkpoints(task.build_model(), [])


def test_soup_refuses_runs_of_different_starts(tmp_path):
  """Runs whose heads were drawn with other task.seed values cannot be souped; the message
  says how to train soup ingredients."""
  from mrpc_task import runs as runs_lib  # pylint: disable=g-import-not-at-top
  runs = []
  for name, seed, order in (('a', 42, 0), ('b', 42, 1), ('c', 7, 2)):
    folder = tmp_path / name
    folder.mkdir()
    (folder / 'params.yaml').write_text(
        f'task:\n  seed: {seed}\n  init_from_hf: /m\n  train_data:\n    seed: {order}\n')
    runs.append(str(folder))
  soup.check_shared_start(runs[:2])  # Only the data order differs: fine.
  with pytest.raises(runs_lib.ModelDirError,
                     match=r'--runs: .*/c started from .* \[7, None, \'/m\', None\], .*/a '
                           r'from \[42, None, \'/m\', None\]: a weight soup needs one start '
                           r'\(train its runs with tfm sweep, seeding the data order only\)'):
    soup.check_shared_start(runs, '--runs')
