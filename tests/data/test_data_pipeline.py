"""Pipeline: determinism, exact resume, ITRA second batch, eval padding/mask, shards, normalisation."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from disc_jax.data import ArraySource, FuzzyRGB, Pipeline, SyntheticSource


class IndexSource(ArraySource):
  """Image pixels and label both encode the example index (label = index): batches reveal indices."""

  def __init__(self, n=100, classes=None):
    images = np.broadcast_to((np.arange(n) % 256).astype(np.uint8)[:, None, None, None], (n, 4, 4, 1)).copy()
    labels = np.arange(n) if classes is None else np.arange(n) % classes
    super().__init__(images, labels, n if classes is None else classes, name="index")
    self.calls = 0

  def get_batch(self, indices):
    self.calls += 1
    return super().get_batch(indices)


def _take(it, n):
  return list(itertools.islice(it, n))


def _equal(a, b):
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])


AUG = ("crop:2", "flip", "rotate:20")


def test_same_seed_same_batches_different_seed_differs():
  src = SyntheticSource("train", num_examples=64, image_shape=(8, 8, 3), num_classes=4)
  mk = lambda seed: Pipeline(src, batch_size=16, seed=seed, augment=AUG, sampler="balanced", second_batch=True)
  for a, b in zip(_take(mk(0).batches(), 9), _take(mk(0).batches(), 9)):
    _equal(a, b)
  assert not np.array_equal(next(mk(0).batches())["image"], next(mk(1).batches())["image"])


@pytest.mark.parametrize("sampler", ["random", "balanced"])
def test_resume_continues_with_exactly_the_same_batch(sampler):
  src = SyntheticSource("train", num_examples=50, image_shape=(6, 6, 1), num_classes=5)
  p = Pipeline(src, batch_size=10, seed=7, augment=AUG, sampler=sampler, second_batch=True)
  assert p.steps_per_epoch == 5
  full = _take(p.batches(), 13)
  for start in (0, 3, 5, 11):      # mid-epoch, epoch boundary, later epoch
    resumed = Pipeline(src, batch_size=10, seed=7, augment=AUG, sampler=sampler, second_batch=True)
    for a, b in zip(full[start:], _take(resumed.batches(start), 13 - start)):
      _equal(a, b)


def test_resume_does_not_replay():
  src = IndexSource(100)
  p = Pipeline(src, batch_size=10, seed=0)
  epoch, k = divmod(123_456, 10)
  expected = np.random.default_rng([0, 0, epoch]).permutation(100)[k * 10:(k + 1) * 10]
  b = p.batch(123_456)
  assert src.calls == 1
  np.testing.assert_array_equal(b["label"], expected)
  src.calls = 0
  it = p.batches(start_step=123_456)
  np.testing.assert_array_equal(next(it)["label"], expected)
  it.close()
  assert src.calls <= 1 + p.prefetch + 1     # the batch, those computed ahead, one in flight


def test_epoch_is_a_shuffled_pass_without_repeats():
  p = Pipeline(IndexSource(100), batch_size=10, seed=0)
  seen = np.concatenate([b["label"] for b in _take(p.batches(), 20)])
  assert sorted(seen[:100].tolist()) == list(range(100)) and sorted(seen[100:].tolist()) == list(range(100))
  assert not np.array_equal(seen[:100], seen[100:])          # a new order each epoch


def test_itra_second_batch_is_an_independent_draw():
  n, bsz = 1000, 50
  p = Pipeline(IndexSource(n), batch_size=bsz, seed=0, second_batch=True)
  batches = _take(p.batches(), p.steps_per_epoch)
  first = np.concatenate([b["label"] for b in batches])
  second = np.concatenate([b["label2"] for b in batches])
  assert {"image", "label", "image2", "label2"} == set(batches[0])
  # each stream is its own shuffled pass over the data ...
  assert sorted(first.tolist()) == sorted(second.tolist()) == list(range(n))
  assert not np.array_equal(first, second)
  # ... and the pairing carries no information: overlap of a step's two index sets is
  # that of independent draws (B^2 / N = 2.5 per step) and positions are uncorrelated.
  overlap = np.mean([np.intersect1d(b["label"], b["label2"]).size for b in batches])
  assert 1.0 < overlap < 4.5
  assert abs(np.corrcoef(first, second)[0, 1]) < 0.1
  # the second batch is augmented independently too
  src = FuzzyRGB("test")
  q = next(Pipeline(src, batch_size=32, seed=0, augment=("flip",), second_batch=True).batches())
  assert q["image2"].shape == q["image"].shape and q["label2"].dtype == np.int32


def test_itra_with_balanced_sampler_both_batches_balanced():
  src = SyntheticSource("train", num_examples=200, image_shape=(4, 4, 1), num_classes=4)
  b = next(Pipeline(src, batch_size=40, seed=0, sampler="balanced", min_per_class=10, second_batch=True).batches())
  assert np.bincount(b["label"]).tolist() == [10] * 4 == np.bincount(b["label2"]).tolist()


def test_eval_pads_last_batch_and_masks_it():
  src = IndexSource(10)
  p = Pipeline(src, batch_size=4, seed=0, train=False, augment=AUG, mean=0.0, std=1.0)
  batches = list(p.batches())
  assert p.steps_per_epoch == 3 and len(batches) == 3
  for b in batches:
    assert b["image"].shape == (4, 4, 4, 1) and b["mask"].dtype == np.float32
  np.testing.assert_array_equal(batches[-1]["mask"], [1, 1, 0, 0])
  np.testing.assert_array_equal(batches[0]["mask"], [1, 1, 1, 1])
  assert np.all(batches[-1]["image"][2:] == 0) and np.all(batches[-1]["label"][2:] == 0)
  real = np.concatenate([b["label"][b["mask"] > 0] for b in batches])
  np.testing.assert_array_equal(real, np.arange(10))            # one ordered pass
  # no augmentation in eval: pixel value == index / 255
  np.testing.assert_allclose(batches[1]["image"][:, 0, 0, 0], np.arange(4, 8) / 255.0, rtol=1e-6)
  assert len(list(p.batches(start_step=2))) == 1


def test_batch_must_split_over_shards():
  src = FuzzyRGB("test")
  with pytest.raises(ValueError, match="num_shards"):
    Pipeline(src, batch_size=10, seed=0, num_shards=4)
  with pytest.raises(ValueError, match="num_shards"):
    Pipeline(src, batch_size=10, seed=0, train=False, num_shards=8)
  b = next(Pipeline(src, batch_size=16, seed=0, num_shards=8).batches())
  assert b["image"].shape[0] % 8 == 0


def test_bad_arguments():
  src = FuzzyRGB("test")
  with pytest.raises(ValueError, match="balanced"):
    Pipeline(src, batch_size=30, seed=0, min_per_class=5)
  with pytest.raises(ValueError, match="sampler"):
    Pipeline(src, batch_size=30, seed=0, sampler="stratified")
  with pytest.raises(ValueError, match="augmentation"):
    Pipeline(src, batch_size=30, seed=0, augment=("cutout",))
  with pytest.raises(ValueError, match="second_batch"):
    Pipeline(src, batch_size=30, seed=0, train=False, second_batch=True)
  with pytest.raises(ValueError, match="mean"):
    Pipeline(src, batch_size=30, seed=0, mean=(0.1, 0.2))


def test_normalisation_and_resize():
  src = FuzzyRGB("test")
  raw = src.get_batch(np.arange(8))
  b = next(Pipeline(src, batch_size=8, seed=0, train=False, mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.25)).batches())
  expected = (raw["image"].astype(np.float32) / 255.0 - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.5, 0.25])
  np.testing.assert_allclose(b["image"], expected, rtol=1e-5, atol=1e-5)
  # registry defaults (fuzzy_rgb mean/std) give roughly zero-mean unit-std data
  p = Pipeline(FuzzyRGB("train"), batch_size=512, seed=0)
  x = next(p.batches())["image"]
  assert abs(x.mean()) < 0.1 and abs(x.std() - 1.0) < 0.1
  # image_size resizes (uniform colour images stay the same colour)
  r = Pipeline(src, batch_size=8, seed=0, train=False, image_size=20)
  rb = next(r.batches())["image"]
  assert rb.shape == (8, 20, 20, 3) and r.image_shape == (20, 20, 3) and p.image_shape == (32, 32, 3)
  same = next(Pipeline(src, batch_size=8, seed=0, train=False).batches())["image"]
  np.testing.assert_allclose(rb, np.broadcast_to(same[:, :1, :1], rb.shape), atol=1e-5)


class BrokenSource(IndexSource):
  def get_batch(self, indices):
    if self.calls >= 2:
      raise RuntimeError("source failed")
    return super().get_batch(indices)


def test_batches_keep_order_and_reraise_source_errors():
  p = Pipeline(IndexSource(100), batch_size=10, seed=0, prefetch=3)
  for step, b in enumerate(_take(p.batches(), 12)):
    _equal(b, p.batch(step))
  it = Pipeline(BrokenSource(100), batch_size=10, seed=0).batches()
  assert next(it)["label"].shape == (10,) and next(it)["label"].shape == (10,)
  with pytest.raises(RuntimeError, match="source failed"):
    next(it)
  with pytest.raises(ValueError, match="prefetch"):
    Pipeline(IndexSource(100), batch_size=10, seed=0, prefetch=-1)
