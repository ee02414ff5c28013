"""Caltech-101 -> CIFAR-100 cross-domain split (Gini paper sec. 4) and variable-size TFDS images."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from disc_jax.data import DATASETS, ArraySource, CrossDomainSource, Pipeline, TfdsSource, load_source
from disc_jax.data import cross_domain

CALTECH_NAMES = tfds.core.tfds_path("image_classification/caltech101_labels.txt").read_text().split()
# (label, height, width, grayscale?) of the fake Caltech-101 images
FAKE = [("beaver", 20, 30, False), ("leopards", 25, 18, False), ("cup", 31, 40, True),
        ("accordion", 17, 17, False), ("sunflower", 40, 22, False), ("beaver", 12, 50, True)]


class FakeCaltech101(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Writes data_dir/caltech101/3.0.2 with the stock builder's features, so tfds reads it as caltech101."""
  name = "caltech101"
  VERSION = tfds.core.Version("3.0.2")

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(),
        "label": tfds.features.ClassLabel(names=CALTECH_NAMES),
        "image/file_name": tfds.features.Text()}), supervised_keys=("image", "label"))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(0), "test": self._generate_examples(1)}

  def _generate_examples(self, seed):
    rng = np.random.default_rng(seed)
    for i, (label, h, w, gray) in enumerate(FAKE):
      pixels = rng.integers(0, 256, (h, w) if gray else (h, w, 3), dtype=np.uint8)
      yield f"{seed}_{i}", {"image": Image.fromarray(pixels), "label": label, "image/file_name": f"{i}.jpg"}


@pytest.fixture(scope="module")
def caltech_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("caltech")
  FakeCaltech101(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
  return data_dir


def test_pairs_are_the_12_shared_names_with_cifar100_ids():
  assert len(cross_domain.PAIRS) == 12
  assert list(cross_domain.CIFAR100_CLASSES) == sorted(cross_domain.CIFAR100_CLASSES)
  assert len(set(cross_domain.CIFAR100_CLASSES)) == 100
  for caltech, cifar, cifar_id in cross_domain.PAIRS:
    assert caltech in CALTECH_NAMES and cross_domain.CIFAR100_CLASSES[cifar_id] == cifar
  # exactly the categories whose names coincide in both label sets
  shared = sorted(set(CALTECH_NAMES) & set(cross_domain.CIFAR100_CLASSES))
  assert shared == sorted(c for c, _, _ in cross_domain.PAIRS)


def test_cross_domain_source_over_any_caltech_source():
  labels = np.array([CALTECH_NAMES.index(n) for n in ("cup", "ant", "lobster", "chair", "faces")])
  images = np.arange(5 * 40 * 60 * 3, dtype=np.int64).reshape(5, 40, 60, 3).astype(np.uint8)
  base = ArraySource(images, labels, len(CALTECH_NAMES), label_names=tuple(CALTECH_NAMES))
  src = CrossDomainSource(base)
  assert len(src) == 3 and src.num_classes == 100 and src.image_shape == (32, 32, 3)
  b = src.get_batch(np.arange(3))
  assert b["label"].tolist() == [28, 45, 20] and b["image"].shape == (3, 32, 32, 3)
  with pytest.raises(ValueError, match="label_names"):
    CrossDomainSource(ArraySource(images, labels % 3, 3))


def test_caltech101_cifar100_through_tfds(caltech_dir):
  src = load_source("caltech101_cifar100", "test", data_dir=caltech_dir)   # TFDS train+test
  assert len(src) == 2 * 4            # beaver x2, cup, sunflower per split; leopards/accordion dropped
  assert sorted(src.labels.tolist()) == sorted([4, 4, 28, 82] * 2)
  b = src.get_batch(np.arange(len(src)))
  assert b["image"].shape == (8, 32, 32, 3) and b["image"].dtype == np.uint8
  assert len(load_source("caltech101_cifar100", "train", data_dir=caltech_dir)) == 4
  # evaluated with CIFAR-100's normalisation through an eval pipeline
  assert DATASETS["caltech101_cifar100"].mean == DATASETS["cifar100"].mean
  batches = list(Pipeline(src, batch_size=3, seed=0, train=False).batches())
  assert len(batches) == 3 and batches[-1]["mask"].tolist() == [1, 1, 0]


def test_tfds_source_resizes_variable_images_and_reads_lazily(caltech_dir):
  with pytest.raises(ValueError, match="image_size"):
    TfdsSource("caltech101", "train", data_dir=caltech_dir)
  lazy = TfdsSource("caltech101", "train", data_dir=caltech_dir, image_size=(16, 12), in_memory=False)
  eager = TfdsSource("caltech101", "train", data_dir=caltech_dir, image_size=(16, 12))
  assert lazy.image_shape == (16, 12, 3) and len(lazy) == 6 and lazy.num_classes == 102
  idx = np.array([5, 0, 3])
  a, b = lazy.get_batch(idx), eager.get_batch(idx)
  np.testing.assert_array_equal(a["image"], b["image"])
  np.testing.assert_array_equal(a["label"], b["label"])
  np.testing.assert_array_equal(lazy.labels, eager.labels)
  gray = [i for i in range(6) if CALTECH_NAMES[lazy.labels[i]] == "cup"]
  img = lazy.get_batch(np.array(gray))["image"][0]
  np.testing.assert_array_equal(img[..., 0], img[..., 2])     # grayscale repeated to RGB


def test_registry_names_and_errors(tmp_path):
  required = {"fuzzy_rgb", "synthetic", "mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100", "stl10",
              "caltech101", "food101", "imagenet2012", "caltech256", "sun397", "caltech101_cifar100"}
  assert required <= set(DATASETS)
  for name, info in DATASETS.items():
    assert len(info.mean) in (1, info.image_shape[-1]) and len(info.std) == len(info.mean)
  with pytest.raises(ValueError, match="known names: .*fashion_mnist"):
    load_source("fmnist", "train")
  with pytest.raises(ValueError, match="not prepared"):
    load_source("cifar10", "test", data_dir=tmp_path)
  s = load_source("synthetic", "train", num_examples=12, image_shape=(5, 5, 2), num_classes=3)
  assert len(s) == 12 and s.image_shape == (5, 5, 2) and s.num_classes == 3
