"""The Gini paper's cross-domain test set: Caltech-101 images of classes CIFAR-100 also has.

gini_kl_discriminability_loss.txt, sec. 4 ("In-domain and cross-domain evaluation"):
models are trained on CIFAR-100 and evaluated on "a custom subset of Caltech 101, which
contains all the categories from the intersection with CIFAR-100 ... we performed manual
label matching. Finally, the resulting Caltech 101 subset consists of 12 object
categories." The paper does not list them. Our 12 (:data:`PAIRS`) are the categories
whose names are *identical* in both label sets (TFDS ``caltech101`` label names vs.
CIFAR-100 fine labels): beaver, butterfly, chair, crab, crocodile, cup, dolphin,
elephant, kangaroo, lamp, lobster, sunflower. Exactly 12 names coincide, matching the
paper's count. Near matches we left out, because any of them would push the count past
12 and each needs a judgement call (plural, synonym, part or sub-type rather than the same
name): leopards/leopard, motorbikes/motorcycle, cellphone/telephone, crocodile_head/crocodile,
windsor_chair/chair, brontosaurus and stegosaurus/dinosaur.

Images are resized to 32 x 32 (CIFAR's size; pillow bilinear, antialiased) and labelled
with **CIFAR-100 fine label ids** (``num_classes = 100``), so a CIFAR-100 model's logits
score them directly; normalise them with CIFAR-100's mean/std (the registry does).

Split: Caltech is never trained on here, so ``'test'`` (and ``'all'``) is every image of
the 12 categories (TFDS ``train+test``); other strings go to TFDS unchanged (e.g.
``'train'`` = TFDS's 30 images per class).
"""

from __future__ import annotations

import pathlib

import numpy as np

from disc_jax.data import augment as augment_lib
from disc_jax.data.source import Source, check_indices, source_labels
from disc_jax.data.tfds import TfdsSource

# CIFAR-100 fine labels; the id of a class is its position (alphabetical order).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

# (Caltech-101 label name in TFDS, CIFAR-100 fine label name, CIFAR-100 fine label id).
PAIRS = (
    ("beaver", "beaver", 4),
    ("butterfly", "butterfly", 14),
    ("chair", "chair", 20),
    ("crab", "crab", 26),
    ("crocodile", "crocodile", 27),
    ("cup", "cup", 28),
    ("dolphin", "dolphin", 30),
    ("elephant", "elephant", 31),
    ("kangaroo", "kangaroo", 38),
    ("lamp", "lamp", 40),
    ("lobster", "lobster", 45),
    ("sunflower", "sunflower", 82),
)

IMAGE_SIZE = 32


class CrossDomainSource:
  """The examples of ``base`` (a Caltech-101 Source with ``label_names``) in :data:`PAIRS`.

  Labels are CIFAR-100 ids, images are resized to ``image_size`` if ``base`` is not
  already at that size.
  """

  def __init__(self, base: Source, *, image_size: int = IMAGE_SIZE, name: str = "caltech101_cifar100"):
    names = [n.lower() for n in getattr(base, "label_names", None) or ()]
    missing = [c for c, _, _ in PAIRS if c not in names]
    if missing:
      raise ValueError(f"base source lacks the Caltech-101 categories {missing}; it must carry Caltech-101's "
                       f"label_names (TFDS 'caltech101')")
    to_cifar = np.full(len(names), -1, np.int32)
    for caltech, _, cifar_id in PAIRS:
      to_cifar[names.index(caltech)] = cifar_id
    base_labels = source_labels(base)
    self._index = np.flatnonzero(to_cifar[base_labels] >= 0)
    self.labels = to_cifar[base_labels[self._index]]
    self._base = base
    self.num_classes = len(CIFAR100_CLASSES)
    self.image_shape = (int(image_size), int(image_size), 3)
    self.name = name
    self.label_names = CIFAR100_CLASSES

  def __len__(self) -> int:
    return self._index.size

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    idx = check_indices(indices, len(self))
    images = self._base.get_batch(self._index[idx])["image"]
    if images.shape[-1] == 1:
      images = np.repeat(images, 3, axis=-1)
    return {"image": augment_lib.resize(images, self.image_shape[:2]), "label": self.labels[idx]}


def caltech101_cifar100(split: str = "test", *, data_dir: str | pathlib.Path | None = None,
                        download: bool = False, in_memory: bool = False,
                        image_size: int = IMAGE_SIZE) -> CrossDomainSource:
  """The cross-domain Source from TFDS 'caltech101' (see module docstring for ``split``).

  With ``in_memory=False`` (default) only the 12 categories' images are ever decoded (the
  labels are read without decoding images).
  """
  tfds_split = "train+test" if split in ("test", "all") else split
  base = TfdsSource("caltech101", tfds_split, data_dir=data_dir, download=download,
                    image_size=(image_size, image_size), in_memory=in_memory)
  return CrossDomainSource(base, image_size=image_size)
