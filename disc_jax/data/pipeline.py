"""The input pipeline: Source -> fixed-size, normalised numpy batches (see CONTRACT.md).

Train mode (``train=True``) is an infinite stream over epochs. The batch of global step
``s`` is a pure function of (seed, s): its indices come from the sampler's permutation of
epoch ``s // steps_per_epoch`` (:mod:`disc_jax.data.samplers`), its augmentation from
``np.random.default_rng([seed, AUGMENT_STREAM, s, k])``. So two pipelines with the same
seed give identical batches, and ``batches(start_step=s)`` resumes a run exactly, with no
replay of earlier steps. ``steps_per_epoch`` drops the last incomplete batch.

With ``second_batch=True`` each batch also carries 'image2'/'label2': ITRA's second
mini-batch S_(2) (itra_representation_alignment.txt, Eq. 2-3), drawn by an independent
sampler of the same kind (its own stream), augmented independently, and meant only for
the matching loss, never for cross-entropy.

Eval mode (``train=False``) is one ordered pass; the last batch is padded with zero
images (label 0) to the fixed batch size and ``'mask'`` (float32, 1 real / 0 pad) says
which rows count. ``augment``, ``sampler`` and ``min_per_class`` are ignored in eval mode,
so train and eval pipelines can share one config.

Per batch: gather uint8 images -> resize to ``image_size`` (bilinear, if given) ->
augmentations in the order given -> ``(x / 255 - mean) / std`` as float32. All steps
are vectorised over the batch (:mod:`disc_jax.data.augment`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from disc_jax.data import augment as augment_lib
from disc_jax.data.registry import DATASETS
from disc_jax.data.samplers import check_batch_split, make_sampler
from disc_jax.data.source import Source

AUGMENT_STREAM = 7919


def _per_channel(value: float | Sequence[float], channels: int, what: str) -> np.ndarray:
  arr = np.atleast_1d(np.asarray(value, np.float32))
  if arr.ndim != 1 or arr.size not in (1, channels):
    raise ValueError(f"{what} must be a scalar or have {channels} values (one per channel), got {value}")
  return np.broadcast_to(arr, (channels,)).astype(np.float32)


class Pipeline:
  """Fixed-size numpy batches of a Source (see module docstring).

  Args:
    source: a Source (:mod:`disc_jax.data.source`).
    batch_size: global batch size B (divisible by ``num_shards``).
    seed: seeds the per-epoch order and the augmentations.
    train: infinite shuffled/augmented stream (True) or one padded ordered pass (False).
    augment: augmentation specs, e.g. ``("crop:4", "flip", "rotate:15")``.
    mean, std: per-channel normalisation on the [0, 1] scale; None: the DATASETS entry
      of ``source.name``, or 0 / 1 for unregistered names.
    sampler: 'random' or 'balanced' (every class >= ``min_per_class`` per batch).
    min_per_class: minimum examples per class in a batch (needs sampler='balanced').
    second_batch: add ITRA's independent 'image2'/'label2' (train only).
    num_shards: number of devices the batch is split over.
    image_size: resize to (H, W) (int: square); None keeps the source's size.

  >>> from disc_jax.data.fuzzy_rgb import FuzzyRGB
  >>> p = Pipeline(FuzzyRGB("test"), batch_size=64, seed=0, train=True, augment=("flip",))
  >>> b = next(p.batches())
  >>> b["image"].shape, b["image"].dtype, b["label"].dtype
  ((64, 32, 32, 3), dtype('float32'), dtype('int32'))
  """

  def __init__(self, source: Source, *, batch_size: int, seed: int = 0, train: bool = True,
               augment: Sequence[str] = (), mean: float | Sequence[float] | None = None,
               std: float | Sequence[float] | None = None, sampler: str = "random", min_per_class: int = 0,
               second_batch: bool = False, num_shards: int = 1, image_size: int | Sequence[int] | None = None):
    check_batch_split(batch_size, num_shards)
    if second_batch and not train:
      raise ValueError("second_batch=True is ITRA's training-time second mini-batch; use it with train=True only")
    self.source, self.batch_size, self.seed, self.train = source, int(batch_size), int(seed), bool(train)
    self.num_shards, self.second_batch = int(num_shards), bool(second_batch)
    h, w, c = source.image_shape
    if image_size is not None:
      h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    self.image_shape = (int(h), int(w), int(c))
    info = DATASETS.get(source.name)
    mean = mean if mean is not None else (info.mean if info else 0.0)
    std = std if std is not None else (info.std if info else 1.0)
    std_c = _per_channel(std, c, "std")
    if np.any(std_c <= 0):
      raise ValueError(f"std must be positive, got {std}")
    self._scale = (1.0 / (255.0 * std_c)).astype(np.float32)
    self._offset = (-_per_channel(mean, c, "mean") / std_c).astype(np.float32)
    self._augment = augment_lib.parse_augment(augment) if train else []
    if train:
      kw = dict(seed=self.seed, min_per_class=min_per_class, num_shards=self.num_shards)
      self._samplers = [make_sampler(sampler, source, self.batch_size, stream=k, **kw)
                        for k in range(2 if second_batch else 1)]
      self.steps_per_epoch = self._samplers[0].steps_per_epoch
    else:  # one ordered pass: sampler/min_per_class do not apply
      self.steps_per_epoch = -(-len(source) // self.batch_size)

  def _images(self, indices: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    raw = self.source.get_batch(indices)
    images = augment_lib.resize(raw["image"], self.image_shape[:2])
    for fn in self._augment:
      images = fn(images, rng)
    return images.astype(np.float32) * self._scale + self._offset, raw["label"].astype(np.int32)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """The batch of global step ``step`` (train), or the ``step``-th batch of the pass (eval)."""
    if step < 0:
      raise ValueError(f"step must be >= 0, got {step}")
    if not self.train:
      return self._eval_batch(step)
    out = {}
    for k, sampler in enumerate(self._samplers):
      rng = np.random.default_rng([self.seed, AUGMENT_STREAM, int(step), k])
      image, label = self._images(sampler.batch(step), rng)
      suffix = "2" if k else ""
      out["image" + suffix], out["label" + suffix] = image, label
    return out

  def _eval_batch(self, k: int) -> dict[str, np.ndarray]:
    if k >= self.steps_per_epoch:
      raise ValueError(f"eval step must be < steps_per_epoch={self.steps_per_epoch}, got {k}")
    idx = np.arange(k * self.batch_size, min((k + 1) * self.batch_size, len(self.source)))
    image, label = self._images(idx, None)
    pad = self.batch_size - idx.size
    mask = np.ones(self.batch_size, np.float32)
    if pad:
      image = np.concatenate([image, np.zeros((pad, *self.image_shape), np.float32)])
      label = np.concatenate([label, np.zeros(pad, np.int32)])
      mask[idx.size:] = 0.0
    return {"image": image, "label": label, "mask": mask}

  def batches(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Train: the infinite stream from global step ``start_step``; eval: the pass from batch ``start_step``."""
    step = int(start_step)
    while self.train or step < self.steps_per_epoch:
      yield self.batch(step)
      step += 1
