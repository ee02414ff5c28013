"""The dataset table (classes, shape, normalisation, TFDS name) and ``load_source``.

``load_source(name, split, ...)`` is the one entry point configs use; it returns a Source
(see :mod:`disc_jax.data.source`):

* 'fuzzy_rgb', 'synthetic': generated in memory (no files, no TFDS);
* 'mnist', 'fashion_mnist', 'kmnist', 'cifar10', 'cifar100', 'caltech256': the offline TFDS copy
  ``disc_jax_<name>`` when it is in ``data_dir`` or ``manual_dir`` (a folder of original
  files) is given -- it is then prepared first (:mod:`disc_jax.data.offline`); otherwise
  the stock TFDS dataset;
* the other TFDS datasets through :class:`disc_jax.data.tfds.TfdsSource`;
* 'caltech101_cifar100': the Gini paper's cross-domain split (:mod:`.cross_domain`).

Mean/std are per channel on the [0, 1] scale, the values commonly used for each dataset
(ImageNet's for the natural-image datasets resized to 224 / 32).
"""

from __future__ import annotations

import dataclasses
import pathlib

from disc_jax.data import cross_domain
from disc_jax.data import fuzzy_rgb
from disc_jax.data import offline
from disc_jax.data.source import Source
from disc_jax.data.synthetic import SyntheticSource
from disc_jax.data.tfds import TfdsSource, reading_prepared

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """Static facts about a dataset.

  Attributes:
    num_classes: number of labels.
    image_shape: (H, W, C) of the batches (after resizing for variable-size datasets).
    mean, std: per-channel normalisation on the [0, 1] scale.
    tfds_name: the TFDS builder name ('' for generated datasets).
    variable_size: whether the stored images vary in size (resized to image_shape).
  """
  num_classes: int
  image_shape: tuple[int, int, int]
  mean: tuple[float, ...]
  std: tuple[float, ...]
  tfds_name: str = ""
  variable_size: bool = False


DATASETS: dict[str, DatasetInfo] = {
    "fuzzy_rgb": DatasetInfo(3, (32, 32, 3), (fuzzy_rgb.MEAN,) * 3, (fuzzy_rgb.STD,) * 3),
    # Uniform noise around random prototypes: mean 127.5 / 255, std about 0.29 (see synthetic.py).
    "synthetic": DatasetInfo(10, (28, 28, 1), (0.5,), (0.29,)),
    "mnist": DatasetInfo(10, (28, 28, 1), (0.1307,), (0.3081,), "mnist"),
    "fashion_mnist": DatasetInfo(10, (28, 28, 1), (0.2860,), (0.3530,), "fashion_mnist"),
    "kmnist": DatasetInfo(10, (28, 28, 1), (0.1918,), (0.3483,), "kmnist"),
    "cifar10": DatasetInfo(10, (32, 32, 3), (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "cifar10"),
    "cifar100": DatasetInfo(100, (32, 32, 3), CIFAR100_MEAN, CIFAR100_STD, "cifar100"),
    "stl10": DatasetInfo(10, (96, 96, 3), (0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713), "stl10"),
    # TFDS caltech101 has 102 labels: the 101 categories and 'background_google'.
    "caltech101": DatasetInfo(102, (224, 224, 3), IMAGENET_MEAN, IMAGENET_STD, "caltech101", True),
    "food101": DatasetInfo(101, (224, 224, 3), IMAGENET_MEAN, IMAGENET_STD, "food101", True),
    "imagenet2012": DatasetInfo(1000, (224, 224, 3), IMAGENET_MEAN, IMAGENET_STD, "imagenet2012", True),
    # Not in TFDS 4.9.10's catalogue: prepared offline (disc_jax.data.offline), or any builder of that name.
    "caltech256": DatasetInfo(257, (224, 224, 3), IMAGENET_MEAN, IMAGENET_STD, "caltech256", True),
    # TFDS's first standard partition (50 train / 50 test images per class), the group softmax
    # paper's protocol (Sec. 4.3), not TFDS's default 70/10/20 random 'tfds' config.
    "sun397": DatasetInfo(397, (224, 224, 3), IMAGENET_MEAN, IMAGENET_STD, "sun397/standard-part1-120k", True),
    # Evaluated by CIFAR-100 models: CIFAR-100's label space and normalisation.
    "caltech101_cifar100": DatasetInfo(100, (32, 32, 3), CIFAR100_MEAN, CIFAR100_STD, "caltech101", True),
}

OFFLINE = ("mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100", "caltech256")


def dataset_info(name: str) -> DatasetInfo:
  """The DATASETS entry of ``name`` (ValueError listing the names if unknown)."""
  if name not in DATASETS:
    raise ValueError(f"unknown dataset {name!r}; known names: {', '.join(sorted(DATASETS))}")
  return DATASETS[name]


def load_source(name: str, split: str, *, data_dir: str | pathlib.Path | None = None,
                manual_dir: str | pathlib.Path | None = None, **kw) -> Source:
  """The Source of ``split`` of dataset ``name``.

  Args:
    name: a key of :data:`DATASETS`.
    split: 'train' or 'test' (TFDS datasets accept any TFDS split string).
    data_dir: TFDS data_dir (None: TFDS's default).
    manual_dir: for the OFFLINE datasets, a folder with the original files; they
      are verified and prepared into ``data_dir`` once, then read through TFDS.
    **kw: passed on: ``seed`` (fuzzy_rgb, synthetic), ``num_examples``, ``image_shape``,
      ``num_classes`` (synthetic), ``download``, ``image_size``, ``in_memory`` (TFDS),
      ``checksums`` (offline preparation).

  >>> load_source("fuzzy_rgb", "train").num_classes
  3
  """
  info = dataset_info(name)
  if name == "fuzzy_rgb":
    return fuzzy_rgb.FuzzyRGB(split, **kw)
  if name == "synthetic":
    return SyntheticSource(split, **kw)
  if name == "caltech101_cifar100":
    return cross_domain.caltech101_cifar100(split, data_dir=data_dir, **kw)
  image_size = kw.pop("image_size", info.image_shape[:2] if info.variable_size else None)
  if name in OFFLINE:
    checksums = kw.pop("checksums", None)
    with reading_prepared(offline.offline_name(name), None if data_dir is None else str(data_dir)):
      builder = offline.offline_builder(name, data_dir, checksums=checksums)
    if not builder.is_prepared() and manual_dir is not None:
      offline.prepare_offline(name, manual_dir, data_dir, checksums=checksums)
    if builder.is_prepared():
      return TfdsSource(offline.offline_name(name), split, data_dir=data_dir, image_size=image_size,
                        name=name, **kw)
  return TfdsSource(info.tfds_name, split, data_dir=data_dir, image_size=image_size, name=name, **kw)
