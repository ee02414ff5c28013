"""Offline TFDS preparation of MNIST/Fashion-MNIST/KMNIST from original files (no TensorFlow)."""
from __future__ import annotations

import gzip
import hashlib
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from disc_jax.data import CorruptFileError, MissingFileError, TfdsSource, load_source, offline_name, prepare_offline
from disc_jax.data import offline


def _write_idx(path: pathlib.Path, array: np.ndarray) -> None:
  magic = 2051 if array.ndim == 3 else 2049
  header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
  with gzip.open(path, "wb") as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _checksums(folder: pathlib.Path) -> dict[str, dict[str, object]]:
  return {p.name: {"size": p.stat().st_size, "md5": hashlib.md5(p.read_bytes()).hexdigest(),
                   "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in folder.iterdir()}


def _tiny(dataset: str, folder: pathlib.Path, n_train=7, n_test=3, seed=0):
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  data = {}
  for split, n in (("train", n_train), ("test", n_test)):
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    data[split] = (images, labels)
    image_file, label_file = offline.FILES[dataset][split]
    if dataset == "kmnist":
      np.savez_compressed(folder / image_file, arr_0=images)
      np.savez_compressed(folder / label_file, arr_0=labels)
    else:
      _write_idx(folder / image_file, images)
      _write_idx(folder / label_file, labels)
  return data


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "kmnist"])
def test_prepare_tiny_files_and_read_back_through_tfds(tmp_path, dataset):
  folder = tmp_path / "orig"
  data = _tiny(dataset, folder)
  prepare_offline(dataset, folder, tmp_path / "tfds", checksums=_checksums(folder))
  for split, (images, labels) in data.items():
    ds = tfds.data_source(offline_name(dataset), split=split, data_dir=str(tmp_path / "tfds"), download=False)
    assert len(ds) == labels.size
    records = [ds[i] for i in range(len(ds))]         # original order is kept
    np.testing.assert_array_equal(np.stack([r["image"] for r in records]), images[..., None])
    np.testing.assert_array_equal([r["label"] for r in records], labels)
  # load_source reads the prepared copy (no manual_dir needed any more)
  src = load_source(dataset, "test", data_dir=tmp_path / "tfds")
  assert isinstance(src, TfdsSource) and src.name == dataset and src.image_shape == (28, 28, 1)
  b = src.get_batch(np.array([2, 0]))
  np.testing.assert_array_equal(b["image"][..., 0], data["test"][0][[2, 0]])
  assert b["label"].dtype == np.int32 and src.num_classes == 10


def test_load_source_prepares_from_manual_dir(tmp_path):
  folder = tmp_path / "orig"
  data = _tiny("mnist", folder, n_train=5, n_test=2)
  src = load_source("mnist", "train", data_dir=tmp_path / "tfds", manual_dir=folder, checksums=_checksums(folder))
  assert len(src) == 5
  np.testing.assert_array_equal(src.get_batch(np.arange(5))["label"], data["train"][1])


def test_published_checksums_are_checked_by_default(tmp_path):
  folder = tmp_path / "orig"
  _tiny("fashion_mnist", folder)
  with pytest.raises(CorruptFileError, match="t10k-images-idx3-ubyte.gz|train-images-idx3-ubyte.gz"):
    prepare_offline("fashion_mnist", folder, tmp_path / "tfds")
  assert not offline.offline_builder("fashion_mnist", tmp_path / "tfds").is_prepared()


def test_corrupt_file_is_named(tmp_path):
  folder = tmp_path / "orig"
  _tiny("mnist", folder)
  sums = _checksums(folder)
  path = folder / "train-labels-idx1-ubyte.gz"
  raw = bytearray(path.read_bytes())
  raw[-1] ^= 0xFF                                   # same size, different content
  path.write_bytes(bytes(raw))
  with pytest.raises(CorruptFileError, match=r"md5 of 'train-labels-idx1-ubyte\.gz'.*storage\.googleapis\.com"):
    prepare_offline("mnist", folder, tmp_path / "tfds", checksums=sums)
  with pytest.raises(CorruptFileError, match="sha256"):
    prepare_offline("mnist", folder, tmp_path / "tfds",
                    checksums={k: {"sha256": v["sha256"]} for k, v in sums.items()})
  path.write_bytes(bytes(raw[:-5]))                  # truncated
  with pytest.raises(CorruptFileError, match="bytes, expected"):
    prepare_offline("mnist", folder, tmp_path / "tfds", checksums=sums)


def test_malformed_file_with_matching_checksum(tmp_path):
  folder = tmp_path / "orig"
  _tiny("mnist", folder)
  _write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))   # 4 labels for 7 images
  with pytest.raises(CorruptFileError, match="same N"):
    prepare_offline("mnist", folder, tmp_path / "tfds", checksums=_checksums(folder))


def test_missing_file_is_named_with_its_source(tmp_path):
  folder = tmp_path / "orig"
  _tiny("kmnist", folder)
  sums = _checksums(folder)
  (folder / "kmnist-test-labels.npz").unlink()
  with pytest.raises(MissingFileError, match=r"kmnist-test-labels\.npz.*codh\.rois\.ac\.jp"):
    prepare_offline("kmnist", folder, tmp_path / "tfds", checksums=sums)
  with pytest.raises(MissingFileError, match="does not exist"):
    prepare_offline("kmnist", tmp_path / "nowhere", tmp_path / "tfds")


def test_not_prepared_without_manual_dir_explains(tmp_path):
  with pytest.raises(ValueError, match="manual_dir"):
    load_source("fashion_mnist", "train", data_dir=tmp_path / "empty")


def test_kmnist_shared_folder_lacks_training_images(shared_data_dir, tmp_path):
  with pytest.raises(MissingFileError, match=r"kmnist-train-imgs\.npz"):
    prepare_offline("kmnist", shared_data_dir / "kmnist", tmp_path / "tfds")
  with pytest.raises(MissingFileError, match=r"kmnist-train-imgs\.npz"):
    load_source("kmnist", "test", data_dir=tmp_path / "tfds", manual_dir=shared_data_dir / "kmnist")


def _original(folder: pathlib.Path, name: str, header: int) -> bytes:
  with gzip.open(folder / name, "rb") as f:
    return f.read()[header:]


@pytest.fixture(scope="module")
def fashion_mnist_tfds(shared_data_dir, tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("fmnist_tfds")
  prepare_offline("fashion_mnist", shared_data_dir / "fashion_mnist", data_dir)   # published checksums
  return data_dir


def test_fashion_mnist_from_shared_folder(shared_data_dir, fashion_mnist_tfds):
  """60,000 / 10,000 examples; first label and the image bytes match the original files."""
  folder = shared_data_dir / "fashion_mnist"
  for split, prefix, n in (("train", "train", 60000), ("test", "t10k", 10000)):
    ds = tfds.data_source("disc_jax_fashion_mnist", split=split, data_dir=str(fashion_mnist_tfds), download=False)
    assert len(ds) == n
    labels = _original(folder, f"{prefix}-labels-idx1-ubyte.gz", 8)
    images = _original(folder, f"{prefix}-images-idx3-ubyte.gz", 16)
    first = ds[0]
    assert int(first["label"]) == labels[0]
    assert hashlib.sha256(first["image"].tobytes()).hexdigest() == hashlib.sha256(images[:784]).hexdigest()
    if split == "test":   # every record of the test split, in order
      records = ds.__getitems__(list(range(n)))
      read = np.stack([r["image"] for r in records])
      assert read.shape == (n, 28, 28, 1)
      assert hashlib.sha256(read.tobytes()).hexdigest() == hashlib.sha256(images).hexdigest()
      assert bytes(np.array([r["label"] for r in records], np.uint8)) == labels
  src = load_source("fashion_mnist", "test", data_dir=fashion_mnist_tfds, in_memory=False)
  assert len(src) == 10000 and src.get_batch(np.array([0]))["label"][0] == 9   # ankle boot
  assert bytes(src.labels.astype(np.uint8)) == _original(folder, "t10k-labels-idx1-ubyte.gz", 8)


@pytest.mark.slow
def test_fashion_mnist_train_split_all_images_match(shared_data_dir, fashion_mnist_tfds):
  src = load_source("fashion_mnist", "train", data_dir=fashion_mnist_tfds)      # reads all 60,000 via TFDS
  batch = src.get_batch(np.arange(len(src)))
  folder = shared_data_dir / "fashion_mnist"
  images = _original(folder, "train-images-idx3-ubyte.gz", 16)
  assert hashlib.sha256(batch["image"].tobytes()).hexdigest() == hashlib.sha256(images).hexdigest()
  assert bytes(batch["label"].astype(np.uint8)) == _original(folder, "train-labels-idx1-ubyte.gz", 8)


@pytest.mark.parametrize("damage", ["records", "info"])
def test_a_damaged_prepared_dataset_says_how_to_rebuild_it(tmp_path, damage):
  from disc_jax.data import CorruptDatasetError

  folder = tmp_path / "orig"
  _tiny("mnist", folder, n_train=20, n_test=6)
  prepare_offline("mnist", folder, tmp_path / "tfds", checksums=_checksums(folder))
  for path in (tmp_path / "tfds").rglob("*"):
    if damage == "records" and "array_record" in path.name:
      path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])   # a copy cut short
    if damage == "info" and path.name == "dataset_info.json":
      path.write_text("{garbage")
  prepared = tmp_path / "tfds" / offline_name("mnist")
  with pytest.raises(CorruptDatasetError, match=rf"in {prepared} does not read back .* Delete "
                     rf"{prepared} and run again: with --config.dataset.manual_dir="):
    load_source("mnist", "train", data_dir=tmp_path / "tfds")
