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

Each augmentation is split into ``draw(rng, n)`` -- its random parameters for a batch of
n rows (one array per parameter, leading axis n), drawn from the ``np.random.Generator``
passed in -- and ``apply(images, params)``, which is deterministic and works row by row.
So a process that holds only some rows of a global batch draws the (cheap) parameters
of the whole batch from the batch's generator, in the same order and sizes as a single
process would, and applies the slice of its own rows: every row gets bitwise the
pixels it would get in a whole-batch call (:func:`draw_all`, :func:`apply_all`). Calling
an augmentation as ``f(images, rng)`` draws for all rows and applies them.

>>> rng = np.random.default_rng(0)
>>> x = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
>>> [f(x, rng).shape for f in parse_augment(("crop:1", "flip", "rotate:10"))]
[(2, 4, 4, 1), (2, 4, 4, 1), (2, 4, 4, 1)]
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np


class Augmentation(Protocol):
  """A batch augmentation: random parameters per row, then a deterministic per-row transform."""

  def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    ...

  def apply(self, images: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    ...

  def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ...


def _rows(params: dict[str, np.ndarray], rows: slice | np.ndarray | None) -> dict[str, np.ndarray]:
  return params if rows is None else {k: v[rows] for k, v in params.items()}


@dataclasses.dataclass(frozen=True)
class RandomCrop:
  """Zero-pads ``padding`` pixels per side and crops a random H x W window per image."""

  padding: int = 4

  def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    if self.padding <= 0:
      return {}
    oy = rng.integers(0, 2 * self.padding + 1, size=n)
    ox = rng.integers(0, 2 * self.padding + 1, size=n)
    return {"oy": oy, "ox": ox}

  def apply(self, images: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    if self.padding <= 0:
      return images
    b, h, w, _ = images.shape
    p = self.padding
    padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
    # windows[b, y, x] is the [C, H, W] crop at offset (y, x): one gather picks all crops.
    windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(1, 2))
    return np.ascontiguousarray(np.moveaxis(windows[np.arange(b), params["oy"], params["ox"]], 1, -1))

  def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return self.apply(images, self.draw(rng, images.shape[0]))


@dataclasses.dataclass(frozen=True)
class RandomFlip:
  """Mirrors each image along ``axis`` (2: left-right, 1: top-bottom) with probability ``p``."""

  p: float = 0.5
  axis: int = 2

  def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {"flip": rng.random(n) < self.p}

  def apply(self, images: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    mask = params["flip"]
    out = images.copy()
    out[mask] = np.flip(images[mask], axis=self.axis)
    return out

  def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return self.apply(images, self.draw(rng, images.shape[0]))


@dataclasses.dataclass(frozen=True)
class RandomRotation:
  """Rotates each image by an angle ~ U[-degrees, degrees] about its centre (bilinear, zero fill).

  ``draw`` also computes each angle's cosine and sine, so that ``apply`` on any subset of
  the rows reads exactly the values a whole-batch call would.
  """

  degrees: float = 15.0

  def draw(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    if self.degrees <= 0:
      return {}
    theta = np.deg2rad(rng.uniform(-self.degrees, self.degrees, size=n)).reshape(n, 1, 1).astype(np.float32)
    return {"cos": np.cos(theta), "sin": np.sin(theta)}

  def apply(self, images: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    if self.degrees <= 0:
      return images
    _, h, w, _ = images.shape
    cos, sin = params["cos"], params["sin"]
    cy, cx = np.float32((h - 1) / 2.0), np.float32((w - 1) / 2.0)
    i = np.arange(h, dtype=np.float32).reshape(1, h, 1) - cy
    j = np.arange(w, dtype=np.float32).reshape(1, 1, w) - cx
    return warp(images, (h, w), lambda r: (cy + cos[r] * i + sin[r] * j, cx - sin[r] * i + cos[r] * j))

  def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return self.apply(images, self.draw(rng, images.shape[0]))


def random_crop(images: np.ndarray, rng: np.random.Generator, padding: int = 4) -> np.ndarray:
  """Zero-pads ``padding`` pixels per side and crops a random H x W window per image."""
  return RandomCrop(padding)(images, rng)


def horizontal_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
  """Mirrors each image left-right with probability ``p``."""
  return RandomFlip(p, axis=2)(images, rng)


def vertical_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
  """Mirrors each image top-bottom with probability ``p``."""
  return RandomFlip(p, axis=1)(images, rng)


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
  return RandomRotation(degrees)(images, rng)


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bilinear resize of a batch [B, H, W, C] to [B, *size, C] (half-pixel centres, edge clamped)."""
  _, h, w, _ = images.shape
  size = (int(size[0]), int(size[1]))
  if (h, w) == size:
    return images
  ys = np.clip((np.arange(size[0]) + 0.5) * (h / size[0]) - 0.5, 0, h - 1).astype(np.float32)
  xs = np.clip((np.arange(size[1]) + 0.5) * (w / size[1]) - 0.5, 0, w - 1).astype(np.float32)
  return warp(images, size, lambda r: (ys.reshape(1, -1, 1), xs.reshape(1, 1, -1)))


_AUGMENTS: dict[str, tuple[Callable[..., Augmentation], str, type]] = {
    "crop": (RandomCrop, "padding", int),
    "flip": (RandomFlip, "p", float),
    "hflip": (RandomFlip, "p", float),
    "vflip": (functools.partial(RandomFlip, axis=1), "p", float),
    "rotate": (RandomRotation, "degrees", float),
}


def parse_augment(specs: Sequence[str]) -> list[Augmentation]:
  """Turns specs like ``("crop:4", "flip", "rotate:15")`` into augmentations (see module docstring)."""
  if isinstance(specs, str):
    raise ValueError(f"augment must be a sequence of names, e.g. ({specs!r},), not a string")
  out = []
  for spec in specs:
    name, _, arg = str(spec).partition(":")
    if name not in _AUGMENTS:
      raise ValueError(f"unknown augmentation {spec!r}; known: {', '.join(sorted(_AUGMENTS))} "
                       f"(optionally 'name:value', e.g. 'crop:4', 'rotate:15')")
    make, param, cast = _AUGMENTS[name]
    out.append(make(**({param: cast(arg)} if arg else {})))
  return out


def draw_all(augments: Sequence[Augmentation], rng: np.random.Generator, n: int) -> list[dict[str, np.ndarray]]:
  """The parameters of every augmentation for a batch of ``n`` rows, drawn in order from ``rng``."""
  return [a.draw(rng, n) for a in augments]


def apply_all(augments: Sequence[Augmentation], images: np.ndarray, params: Sequence[dict[str, np.ndarray]],
              rows: slice | np.ndarray | None = None) -> np.ndarray:
  """Applies ``augments`` in order to ``images``, which are the rows ``rows`` (None: all) of the drawn batch."""
  for a, p in zip(augments, params):
    images = a.apply(images, _rows(p, rows))
  return images
