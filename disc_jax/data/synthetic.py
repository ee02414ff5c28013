"""'synthetic': random images of any shape and class count, for smoke tests.

Each class has a random prototype image (shared by all splits of one seed); an example is
the average of its class prototype and independent uniform noise, quantised to uint8.
So the data is random yet learnable: a smoke test can check that the loss goes down.
Labels cycle through the classes (``i % num_classes``) in a shuffled order, so every
class appears ``num_examples // num_classes`` or one more times.

>>> src = SyntheticSource("train", num_examples=8, image_shape=(4, 4, 3), num_classes=2)
>>> b = src.get_batch(np.arange(8))
>>> b["image"].shape, b["image"].dtype, sorted(set(b["label"].tolist()))
((8, 4, 4, 3), dtype('uint8'), [0, 1])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from disc_jax.data.source import ArraySource

_SPLIT_STREAMS = {"train": 1, "test": 2, "validation": 3}


class SyntheticSource(ArraySource):
  """Random, class-dependent uint8 images held in memory (see module docstring)."""

  def __init__(self, split: str = "train", *, num_examples: int | None = None,
               image_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10, seed: int = 0):
    if split not in _SPLIT_STREAMS:
      raise ValueError(f"split must be one of {sorted(_SPLIT_STREAMS)} for synthetic, got {split!r}")
    shape = tuple(int(d) for d in image_shape)
    if len(shape) != 3 or min(shape) <= 0:
      raise ValueError(f"image_shape must be (H, W, C) with positive sizes, got {image_shape}")
    if num_classes <= 0:
      raise ValueError(f"num_classes must be positive, got {num_classes}")
    n = int(num_examples if num_examples is not None else (512 if split == "train" else 128))
    if n <= 0:
      raise ValueError(f"num_examples must be positive, got {n}")
    prototypes = np.random.default_rng([seed, 0]).uniform(0, 255, size=(num_classes, *shape))
    rng = np.random.default_rng([seed, _SPLIT_STREAMS[split]])
    labels = rng.permutation(np.arange(n) % num_classes)
    noise = rng.uniform(0, 255, size=(n, *shape))
    images = np.round(0.5 * prototypes[labels] + 0.5 * noise).astype(np.uint8)
    super().__init__(images, labels, num_classes, name="synthetic")
