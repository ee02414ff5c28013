"""The Source protocol every dataset implements, and an in-memory numpy Source.

A *Source* is a random-access, finite dataset split:

* ``len(src)`` -- the number of examples;
* ``src.get_batch(indices)`` -- ``{'image': uint8 [n, H, W, C], 'label': int32 [n]}``
  for an int array of example indices (any order, repeats allowed);
* ``src.num_classes``, ``src.image_shape`` (H, W, C) and ``src.name``.

Samplers only need ``len(src)`` and the labels (:func:`source_labels`), the pipeline
only calls ``get_batch``; so a Source can be an in-memory array (:class:`ArraySource`),
a TFDS ``array_record`` reader (:mod:`disc_jax.data.tfds`) or a generator of images
computed from a few numbers per example (:mod:`disc_jax.data.fuzzy_rgb`).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Source(Protocol):
  """Random-access dataset split yielding uint8 images and int32 labels."""

  name: str
  num_classes: int
  image_shape: tuple[int, int, int]

  def __len__(self) -> int:
    ...

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    ...


def check_indices(indices: np.ndarray, size: int) -> np.ndarray:
  """Returns ``indices`` as an int64 vector, checking they lie in [0, size)."""
  idx = np.asarray(indices)
  if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
    raise ValueError(f"indices must be a 1-D integer array, got dtype {idx.dtype} shape {idx.shape}")
  if idx.size and (idx.min() < 0 or idx.max() >= size):
    raise ValueError(f"indices must lie in [0, {size}), got range [{idx.min()}, {idx.max()}]")
  return idx.astype(np.int64, copy=False)


def source_labels(source: Source) -> np.ndarray:
  """All labels of ``source`` as int32 [len(source)].

  Uses ``source.labels`` when the source keeps them (every Source of this package
  does), otherwise reads them through ``get_batch`` in chunks.
  """
  labels = getattr(source, "labels", None)
  if labels is not None:
    return np.asarray(labels, np.int32)
  chunks = [source.get_batch(np.arange(i, min(i + 4096, len(source))))["label"]
            for i in range(0, len(source), 4096)]
  return np.concatenate(chunks).astype(np.int32) if chunks else np.zeros((0,), np.int32)


class ArraySource:
  """A Source over numpy arrays held in memory.

  >>> src = ArraySource(np.zeros((4, 2, 2, 1), np.uint8), np.array([0, 1, 0, 1]), 2, name="toy")
  >>> src.get_batch(np.array([3, 0]))["label"].tolist()
  [1, 0]
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray, num_classes: int, *, name: str = "array",
               label_names: tuple[str, ...] | None = None):
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 4 or images.dtype != np.uint8:
      raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    if labels.shape != (images.shape[0],):
      raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
      raise ValueError(f"labels must lie in [0, num_classes={num_classes}), "
                       f"got range [{labels.min()}, {labels.max()}]")
    self.images = images
    self.labels = labels.astype(np.int32)
    self.num_classes = int(num_classes)
    self.image_shape = tuple(int(d) for d in images.shape[1:])
    self.name = name
    self.label_names = label_names

  def __len__(self) -> int:
    return self.images.shape[0]

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    idx = check_indices(indices, len(self))
    return {"image": self.images[idx], "label": self.labels[idx]}

  def __repr__(self) -> str:
    return f"ArraySource(name={self.name!r}, n={len(self)}, image_shape={self.image_shape})"
