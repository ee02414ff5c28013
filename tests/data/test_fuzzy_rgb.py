"""Fuzzy-RGB (sigma2r_loss.txt sec. 3.1): shapes, per-channel ranges, split, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from disc_jax.data import DATASETS, FuzzyRGB, load_source
from disc_jax.data import fuzzy_rgb


def _all(split, seed=0):
  src = FuzzyRGB(split, seed=seed)
  return src, src.get_batch(np.arange(len(src)))


def test_shapes_split_sizes_and_classes():
  for split, per_class in (("train", 2500), ("test", 500)):
    src, b = _all(split)
    assert len(src) == 3 * per_class and src.image_shape == (32, 32, 3) and src.num_classes == 3
    assert b["image"].shape == (3 * per_class, 32, 32, 3) and b["image"].dtype == np.uint8
    assert b["label"].dtype == np.int32
    assert np.bincount(b["label"]).tolist() == [per_class] * 3
  # 3000 per class in total, as in the paper
  assert fuzzy_rgb.TRAIN_PER_CLASS + 500 == fuzzy_rgb.PER_CLASS == 3000


def test_images_are_uniform_colours():
  _, b = _all("test")
  img = b["image"].astype(int)
  assert np.all(img == img[:, :1, :1, :])


@pytest.mark.parametrize("split", ["train", "test"])
def test_per_channel_ranges_match_the_paper(split):
  """Main colour in 20-100% of 255, the two other channels 0-20% of 255."""
  _, b = _all(split)
  colour = b["image"][:, 0, 0, :].astype(np.float64) / 255.0
  for c in range(3):
    cls = colour[b["label"] == c]
    main, others = cls[:, c], np.delete(cls, c, axis=1)
    assert main.min() >= 0.2 - 1e-9 and main.max() <= 1.0
    assert others.min() >= 0.0 and others.max() <= 0.2 + 1e-9
    # the ranges are filled (uniform draws reach near both ends) ...
    assert main.min() < 0.21 and main.max() > 0.99
    assert others.min() < 0.01 and others.max() > 0.19
    # ... uniformly: mean and std of U[a, b] are (a + b) / 2 and (b - a) / sqrt(12)
    assert abs(main.mean() - 0.6) < 0.02 and abs(main.std() - 0.8 / np.sqrt(12)) < 0.01
    assert abs(others.mean() - 0.1) < 0.005 and abs(others.std() - 0.2 / np.sqrt(12)) < 0.005
    # the main channel is always the largest: the class is recoverable from the colour
    assert np.all(main >= others.max(axis=1))


def test_registry_mean_std_match_the_data():
  _, b = _all("train")
  x = b["image"][:, 0, 0, :].astype(np.float64) / 255.0
  info = DATASETS["fuzzy_rgb"]
  np.testing.assert_allclose(x.mean(axis=0), info.mean, atol=0.01)
  np.testing.assert_allclose(x.std(axis=0), info.std, atol=0.01)


def test_deterministic_from_seed_and_splits_disjoint():
  a, b = FuzzyRGB("train", seed=3), FuzzyRGB("train", seed=3)
  np.testing.assert_array_equal(a.colours, b.colours)
  np.testing.assert_array_equal(a.labels, b.labels)
  assert not np.array_equal(FuzzyRGB("train", seed=4).colours, a.colours)
  # train and test partition one draw of 3 x 3000 images: together they are exactly it
  test = FuzzyRGB("test", seed=3)
  colours, labels = fuzzy_rgb.generate_colours(3)
  both = np.concatenate([np.c_[a.colours, a.labels], np.c_[test.colours, test.labels]])
  whole = np.c_[colours, labels]
  np.testing.assert_array_equal(both[np.lexsort(both.T)], whole[np.lexsort(whole.T)])
  # classes are interleaved (fixed shuffle), not in blocks
  assert len(set(a.labels[:30].tolist())) == 3


def test_load_source_and_bad_split():
  src = load_source("fuzzy_rgb", "test", seed=1)
  assert isinstance(src, FuzzyRGB) and len(src) == 1500
  with pytest.raises(ValueError, match="split"):
    FuzzyRGB("validation")
