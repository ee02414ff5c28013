"""Augmentations: exact crops/flips, rotation geometry, resize, determinism from the generator."""
from __future__ import annotations

import numpy as np
import pytest

from disc_jax.data import augment as A


def _images(b=16, h=8, w=8, c=3, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (b, h, w, c), dtype=np.uint8)


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
  x = _images()
  out = A.random_crop(x, np.random.default_rng(1), padding=2)
  padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
  assert out.shape == x.shape
  for i in range(len(x)):
    hits = [(dy, dx) for dy in range(5) for dx in range(5) if np.array_equal(out[i], padded[i, dy:dy + 8, dx:dx + 8])]
    assert hits, f"image {i} is not a window of its padded image"
  offsets = {next((dy, dx) for dy in range(5) for dx in range(5)
                  if np.array_equal(out[i], padded[i, dy:dy + 8, dx:dx + 8])) for i in range(len(x))}
  assert len(offsets) > 3     # offsets vary per image


def test_flips():
  x = _images(b=64)
  out = A.horizontal_flip(x, np.random.default_rng(0))
  flipped = np.array([np.array_equal(o, i[:, ::-1]) and not np.array_equal(o, i) for o, i in zip(out, x)])
  kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
  assert np.all(flipped | kept) and 15 < flipped.sum() < 49
  v = A.vertical_flip(x, np.random.default_rng(0), p=1.0)
  np.testing.assert_array_equal(v, x[:, ::-1])


def test_rotation_geometry():
  x = np.zeros((2, 9, 9, 1), np.uint8)
  x[:, 4, 6] = 200                                 # a dot right of the centre
  out = A.random_rotation(x, np.random.default_rng(0), degrees=1e-6)
  np.testing.assert_array_equal(out, x)            # ~0 degrees: identity
  # 90 degrees exactly (U[90, 90]): the dot moves a quarter turn about the centre
  rng = np.random.default_rng(0)
  theta = np.deg2rad(90.0)
  i = np.arange(9.0).reshape(1, 9, 1) - 4
  j = np.arange(9.0).reshape(1, 1, 9) - 4
  ys = np.broadcast_to(4 + np.cos(theta) * i + np.sin(theta) * j, (2, 9, 9))
  xs = np.broadcast_to(4 - np.sin(theta) * i + np.cos(theta) * j, (2, 9, 9))
  r = A.bilinear_sample(x, ys, xs)
  assert r.sum() == 2 * 200 and r[0, 4, 6] == 0
  (py, px), = np.argwhere(r[0, ..., 0] == 200)
  assert (py - 4, px - 4) in {(2, 0), (-2, 0)}
  # random angles: output differs per image, pixels outside read 0
  y = A.random_rotation(np.full((8, 16, 16, 1), 255, np.uint8), rng, degrees=30)
  assert y[:, 8, 8].min() == 255 and y[:, 0, 0].max() < 255


def test_resize_and_bilinear():
  x = _images(b=3, h=4, w=4)
  np.testing.assert_array_equal(A.resize(x, (4, 4)), x)
  up = A.resize(np.full((2, 5, 7, 3), 77, np.uint8), (11, 3))
  assert up.shape == (2, 11, 3, 3) and np.all(up == 77)
  small = np.array([[[[0], [100]]]], np.uint8)
  assert A.resize(small, (1, 4))[0, 0, :, 0].tolist() == [0, 25, 75, 100]


def test_augment_specs_and_determinism():
  x = _images(b=32, h=28, w=28, c=1)
  fns = A.parse_augment(("crop:4", "flip:0.5", "rotate:15", "vflip"))
  run = lambda seed: [f(x, np.random.default_rng(seed)) for f in fns]
  for a, b in zip(run(3), run(3)):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(run(3)[0], run(4)[0])
  with pytest.raises(ValueError, match="unknown augmentation"):
    A.parse_augment(("jitter",))
  with pytest.raises(ValueError, match="sequence"):
    A.parse_augment("flip")
