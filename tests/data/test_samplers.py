"""Samplers: permutation per epoch, class balance (sigma2R), shard balance, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from disc_jax.data import BalancedSampler, RandomSampler


def test_random_sampler_is_a_permutation_per_epoch():
  s = RandomSampler(103, 10, seed=0)
  assert s.steps_per_epoch == 10
  e0 = s.epoch(0)
  assert e0.shape == (10, 10) and len(set(e0.ravel().tolist())) == 100   # no repeats within an epoch
  assert not np.array_equal(e0, s.epoch(1))                               # reshuffled each epoch
  np.testing.assert_array_equal(s.batch(13), s.epoch(1)[3])               # global step -> (epoch, k)
  np.testing.assert_array_equal(RandomSampler(103, 10, seed=0).batch(13), s.batch(13))
  assert not np.array_equal(RandomSampler(103, 10, seed=1).batch(0), s.batch(0))


def test_balanced_sampler_sigma2r_batches():
  """10 classes, batch 256, min 25 per class (sigma2r_loss.txt sec. 4): every class >= 25."""
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, size=3000)   # unequal class sizes
  s = BalancedSampler(labels, 256, seed=0, min_per_class=25)
  for step in (0, 5, s.steps_per_epoch + 2):
    counts = np.bincount(labels[s.batch(step)], minlength=10)
    assert counts.min() >= 25 and counts.sum() == 256
    assert sorted(counts.tolist()) == [25] * 4 + [26] * 6
  # a class's draws cycle through permutations of its examples: within an epoch every
  # example of the class is drawn k or k + 1 times (no example repeats before all are seen)
  e = s.epoch(0).ravel()
  for c in range(10):
    members = np.flatnonzero(labels == c)
    times = np.bincount(e[labels[e] == c], minlength=labels.size)[members]
    assert times.max() - times.min() <= 1


def test_balanced_sampler_imbalanced_classes_are_oversampled():
  labels = np.array([0] * 90 + [1] * 10)
  s = BalancedSampler(labels, 20, seed=0, min_per_class=10)
  b = s.batch(0)
  assert np.bincount(labels[b]).tolist() == [10, 10]
  assert len(set(b.tolist())) == 20


def test_balanced_sampler_min_per_class_too_large():
  labels = np.repeat(np.arange(10), 30)
  with pytest.raises(ValueError, match="min_per_class"):
    BalancedSampler(labels, 256, seed=0, min_per_class=26)


def test_shard_divisibility_error():
  with pytest.raises(ValueError, match="num_shards"):
    RandomSampler(100, 10, seed=0, num_shards=4)
  with pytest.raises(ValueError, match="num_shards"):
    BalancedSampler(np.arange(100) % 5, 10, seed=0, num_shards=3)


def test_balanced_batches_split_evenly_over_shards():
  labels = np.repeat(np.arange(10), 100)
  s = BalancedSampler(labels, 256, seed=0, min_per_class=25, num_shards=8)
  shards = labels[s.batch(3)].reshape(8, 32)
  counts = np.stack([np.bincount(r, minlength=10) for r in shards])
  assert counts.sum() == 256 and np.all(counts.max(0) - counts.min(0) <= 1)   # each class spread evenly
  assert np.all(counts.sum(0) >= 25)


def test_independent_streams():
  labels = np.repeat(np.arange(4), 250)
  a = BalancedSampler(labels, 40, seed=0, stream=0).epoch(0).ravel()
  b = BalancedSampler(labels, 40, seed=0, stream=1).epoch(0).ravel()
  assert not np.array_equal(a, b)
  assert abs(np.corrcoef(a, b)[0, 1]) < 0.1
