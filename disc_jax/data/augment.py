"""Host-side batch augmentations, vectorised over the batch in numpy (uint8 in, uint8 out).

The papers' augmentations (sigma2r_loss.txt sec. 4: "random cropping, random rotation,
and vertical/horizontal flipping"; the CIFAR recipe of ITRA/Gini: pad-and-crop + flip):

* ``crop[:P]``   -- zero-pad P pixels (default 4) on each side, crop back at a random offset;
* ``flip``/``hflip[:p]`` -- mirror left-right with probability p (default 0.5);
* ``vflip[:p]``  -- mirror top-bottom with probability p (default 0.5);
* ``rotate[:D]`` -- rotate by an angle ~ U[-D, D] degrees (default 15) about the centre,
  bilinear, zero fill.

No per-image Python loop: crops are one gather of strided windows, flips a masked copy,
rotation and resizing a 4-neighbour bilinear gather over chunks of the batch (no scipy).
All randomness comes from the ``np.random.Generator`` passed in, so a batch's
augmentation is a pure function of that generator's seed.

>>> rng = np.random.default_rng(0)
>>> x = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
>>> [f(x, rng).shape for f in parse_augment(("crop:1", "flip", "rotate:10"))]
[(2, 4, 4, 1), (2, 4, 4, 1), (2, 4, 4, 1)]
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def random_crop(images: np.ndarray, rng: np.random.Generator, padding: int = 4) -> np.ndarray:
  """Zero-pads ``padding`` pixels per side and crops a random H x W window per image."""
  if padding <= 0:
    return images
  b, h, w, _ = images.shape
  padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  oy = rng.integers(0, 2 * padding + 1, size=b)
  ox = rng.integers(0, 2 * padding + 1, size=b)
  # windows[b, y, x] is the [C, H, W] crop at offset (y, x): one gather picks all crops.
  windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
  return np.ascontiguousarray(np.moveaxis(windows[np.arange(b), oy, ox], 1, -1))


def _flip(images: np.ndarray, rng: np.random.Generator, p: float, axis: int) -> np.ndarray:
  mask = rng.random(images.shape[0]) < p
  out = images.copy()
  out[mask] = np.flip(images[mask], axis=axis)
  return out


def horizontal_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
  """Mirrors each image left-right with probability ``p``."""
  return _flip(images, rng, p, axis=2)


def vertical_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
  """Mirrors each image top-bottom with probability ``p``."""
  return _flip(images, rng, p, axis=1)


# Pixels per chunk of a warp: keeps temporaries small (~32-96 kB), which is 3-5x faster than
# one pass over a whole batch (large temporaries pay for fresh pages on every call).
_CHUNK_PIXELS = 8192

Coords = Callable[[slice], tuple[np.ndarray, np.ndarray]]


def _bilinear_chunk(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
  """float32 [b, H', W', C]: ``images`` [b, H, W, C] sampled at ys, xs (broadcast to [b, H', W'])."""
  b, h, w, c = images.shape
  hp, wp = h + 2, w + 2
  padded = np.zeros((b, hp, wp, c), np.float32)    # a zero border: outside reads 0
  padded[:, 1:-1, 1:-1] = images
  flat = padded.reshape(b * hp * wp, c)
  ys = np.clip(np.asarray(ys, np.float32) + np.float32(1), 0, hp - 1)
  xs = np.clip(np.asarray(xs, np.float32) + np.float32(1), 0, wp - 1)
  ys, xs = np.broadcast_arrays(ys, xs)
  y0 = np.minimum(ys.astype(np.int64), hp - 2)
  x0 = np.minimum(xs.astype(np.int64), wp - 2)
  wy = (ys - y0)[..., None]
  wx = (xs - x0)[..., None]
  lin = (np.arange(b) * (hp * wp)).reshape(b, 1, 1) + y0 * wp + x0
  top_l, top_r, bot_l, bot_r = (np.take(flat, lin + off, axis=0) for off in (0, 1, wp, wp + 1))
  top = top_l + (top_r - top_l) * wx
  bot = bot_l + (bot_r - bot_l) * wx
  return top + (bot - top) * wy


def warp(images: np.ndarray, out_hw: tuple[int, int], coords: Coords) -> np.ndarray:
  """Bilinear warp: output pixel (n, i, j) reads ``images`` at ``coords(rows)[k][n, i, j]``.

  ``coords(slice)`` returns the float source coordinates (ys, xs) of the images in the
  slice, each broadcastable to [n, H', W']; pixel (i, j) of the input has its centre at
  (i, j) and points outside the image read 0 (blended with the border). The batch is
  processed in chunks of about ``_CHUNK_PIXELS`` output pixels. Returns uint8 [B, *out_hw, C].
  """
  b, _, _, c = images.shape
  out = np.empty((b, *out_hw, c), np.uint8)
  per = max(1, _CHUNK_PIXELS // max(1, out_hw[0] * out_hw[1]))
  for k in range(0, b, per):
    rows = slice(k, min(b, k + per))
    chunk = _bilinear_chunk(images[rows], *coords(rows))
    np.rint(chunk, out=chunk)
    out[rows] = np.clip(chunk, 0, 255, out=chunk)
  return out


def bilinear_sample(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
  """Samples ``images`` [B, H, W, C] at float pixel coordinates ys, xs [B, H', W'] (uint8 out).

  >>> img = np.array([[[[0], [100]]]], np.uint8)          # 1 x 1 x 2 x 1
  >>> bilinear_sample(img, np.zeros((1, 1, 1)), np.full((1, 1, 1), 0.5)).ravel().tolist()
  [50]
  """
  return warp(images, ys.shape[1:], lambda rows: (ys[rows], xs[rows]))


def random_rotation(images: np.ndarray, rng: np.random.Generator, degrees: float = 15.0) -> np.ndarray:
  """Rotates each image by an angle ~ U[-degrees, degrees] about its centre (bilinear, zero fill)."""
  if degrees <= 0:
    return images
  b, h, w, _ = images.shape
  theta = np.deg2rad(rng.uniform(-degrees, degrees, size=b)).reshape(b, 1, 1).astype(np.float32)
  cos, sin = np.cos(theta), np.sin(theta)
  cy, cx = np.float32((h - 1) / 2.0), np.float32((w - 1) / 2.0)
  i = np.arange(h, dtype=np.float32).reshape(1, h, 1) - cy
  j = np.arange(w, dtype=np.float32).reshape(1, 1, w) - cx
  return warp(images, (h, w), lambda r: (cy + cos[r] * i + sin[r] * j, cx - sin[r] * i + cos[r] * j))


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bilinear resize of a batch [B, H, W, C] to [B, *size, C] (half-pixel centres, edge clamped)."""
  _, h, w, _ = images.shape
  size = (int(size[0]), int(size[1]))
  if (h, w) == size:
    return images
  ys = np.clip((np.arange(size[0]) + 0.5) * (h / size[0]) - 0.5, 0, h - 1).astype(np.float32)
  xs = np.clip((np.arange(size[1]) + 0.5) * (w / size[1]) - 0.5, 0, w - 1).astype(np.float32)
  return warp(images, size, lambda r: (ys.reshape(1, -1, 1), xs.reshape(1, 1, -1)))


_AUGMENTS: dict[str, tuple[Callable[..., np.ndarray], str, type]] = {
    "crop": (random_crop, "padding", int),
    "flip": (horizontal_flip, "p", float),
    "hflip": (horizontal_flip, "p", float),
    "vflip": (vertical_flip, "p", float),
    "rotate": (random_rotation, "degrees", float),
}


def parse_augment(specs: Sequence[str]) -> list[Augment]:
  """Turns specs like ``("crop:4", "flip", "rotate:15")`` into batch functions ``f(images, rng)``."""
  if isinstance(specs, str):
    raise ValueError(f"augment must be a sequence of names, e.g. ({specs!r},), not a string")
  fns = []
  for spec in specs:
    name, _, arg = str(spec).partition(":")
    if name not in _AUGMENTS:
      raise ValueError(f"unknown augmentation {spec!r}; known: {', '.join(sorted(_AUGMENTS))} "
                       f"(optionally 'name:value', e.g. 'crop:4', 'rotate:15')")
    fn, param, cast = _AUGMENTS[name]
    fns.append(functools.partial(fn, **({param: cast(arg)} if arg else {})))
  return fns
