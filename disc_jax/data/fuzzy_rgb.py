"""Fuzzy-RGB: the sigma^2R paper's synthetic three-colour dataset (embedded default).

sigma2r_loss.txt, sec. 3.1 and Fig. 3: RGB images of 32 x 32 x 3, 3000 instances per
class, each image one *uniform* colour made of a "main colour" between 20% and 100% of the
maximum value in the channel the class represents (class 0 = red, 1 = green, 2 = blue)
plus "noise" between 0% and 20% of the maximum in the two other channels.

Choices where the paper is silent (tested in tests/data/test_fuzzy_rgb.py):

* Distributions: both percentages are drawn **uniformly** (main ~ U[0.2, 1.0], noise
  ~ U[0, 0.2], independent per channel and image) and quantised to uint8 by
  ``round(255 * p)``: the main channel lies in [51, 255], the others in [0, 51].
* Split: the paper gives no split (its Fig. 4 is on the training set). We keep its
  3000 per class in total and split them 2500 train / 500 test per class
  (7500 / 1500 images, the 5:1 ratio of CIFAR-10), stratified; each split is in a fixed
  shuffled order.
* Determinism: everything comes from ``np.random.default_rng(seed)``; the two splits
  are cut from one draw, so they never overlap and do not depend on which is asked for.

Only the 3 colour values of each image are stored; ``get_batch`` broadcasts them to
H x W, so the dataset costs 27 kB instead of 27 MB and needs no files.

Per-channel statistics of the generative model (used as the registry's mean/std):
mean = (0.6 + 2 * 0.1) / 3 = 0.26667, E[x^2] = (0.41333 + 2 * 0.01333) / 3 = 0.14667,
std = sqrt(0.14667 - 0.26667^2) = 0.27487.
"""

from __future__ import annotations

import numpy as np

from disc_jax.data.source import check_indices

NUM_CLASSES = 3
CLASS_NAMES = ("red", "green", "blue")
PER_CLASS = 3000            # sigma2r_loss.txt sec. 3.1
TRAIN_PER_CLASS = 2500      # our split (see module docstring)
MAIN_RANGE = (0.2, 1.0)     # fraction of the maximum in the class's own channel
NOISE_RANGE = (0.0, 0.2)    # fraction of the maximum in the two other channels


def _uniform_second_moment(lo: float, hi: float) -> float:
  return (lo * lo + lo * hi + hi * hi) / 3.0


# Per-channel mean/std of a pixel in [0, 1] (each channel is "main" for 1 class in 3).
MEAN = (sum(MAIN_RANGE) / 2 + 2 * sum(NOISE_RANGE) / 2) / 3
STD = float(np.sqrt((_uniform_second_moment(*MAIN_RANGE) + 2 * _uniform_second_moment(*NOISE_RANGE)) / 3
                    - MEAN**2))


def generate_colours(seed: int, per_class: int = PER_CLASS) -> tuple[np.ndarray, np.ndarray]:
  """The uint8 colour [3 * per_class, 3] and label [3 * per_class] of every image.

  Rows are grouped by class (class c occupies rows c * per_class ... (c+1) * per_class - 1).

  >>> colours, labels = generate_colours(0, per_class=2)
  >>> colours.shape, labels.tolist()
  ((6, 3), [0, 0, 1, 1, 2, 2])
  """
  if per_class <= 0:
    raise ValueError(f"per_class must be positive, got {per_class}")
  rng = np.random.default_rng(seed)
  labels = np.repeat(np.arange(NUM_CLASSES), per_class)
  frac = rng.uniform(*NOISE_RANGE, size=(labels.size, 3))
  main = rng.uniform(*MAIN_RANGE, size=labels.size)
  frac[np.arange(labels.size), labels] = main
  colours = np.round(frac * 255.0).astype(np.uint8)
  return colours, labels.astype(np.int32)


class FuzzyRGB:
  """A Fuzzy-RGB split as a Source (see module docstring for the split).

  >>> src = FuzzyRGB("test", seed=0)
  >>> len(src), src.image_shape, src.get_batch(np.array([0]))["image"].shape
  (1500, (32, 32, 3), (1, 32, 32, 3))
  """

  def __init__(self, split: str = "train", *, seed: int = 0, per_class: int = PER_CLASS,
               train_per_class: int = TRAIN_PER_CLASS, image_size: int = 32):
    if split not in ("train", "test"):
      raise ValueError(f"split must be 'train' or 'test' for fuzzy_rgb, got {split!r}")
    if not 0 < train_per_class < per_class:
      raise ValueError(f"train_per_class must lie in (0, per_class={per_class}), got {train_per_class}")
    colours, labels = generate_colours(seed, per_class)
    within = np.arange(labels.size) % per_class
    keep = within < train_per_class if split == "train" else within >= train_per_class
    # A fixed shuffle (its own stream: same for both splits' seeds) so classes interleave.
    order = np.random.default_rng([seed, 1 if split == "train" else 2]).permutation(int(keep.sum()))
    self.colours = colours[keep][order]
    self.labels = labels[keep][order]
    self.num_classes = NUM_CLASSES
    self.image_shape = (int(image_size), int(image_size), 3)
    self.name = "fuzzy_rgb"
    self.label_names = CLASS_NAMES

  def __len__(self) -> int:
    return self.labels.size

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    idx = check_indices(indices, len(self))
    h, w, c = self.image_shape
    images = np.broadcast_to(self.colours[idx][:, None, None, :], (idx.size, h, w, c)).copy()
    return {"image": images, "label": self.labels[idx]}
