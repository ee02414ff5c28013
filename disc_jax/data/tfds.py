"""TensorFlow-free access to TFDS datasets through ``tfds.data_source`` (array_record).

:class:`TfdsSource` wraps ``builder.as_data_source(split)`` (what ``tfds.data_source``
returns): random access by index, decoded in numpy -- raw ``Tensor`` features as stored,
``Image`` features (PNG/JPEG bytes) with pillow inside TFDS. No TensorFlow is needed to
read, only to *prepare* most stock builders (their download/extraction code uses
``tf.io``); :mod:`disc_jax.data.offline` prepares MNIST/Fashion-MNIST/KMNIST without it.

Images of variable size (Caltech-101, Food-101, ImageNet, ...) are resized per image with
pillow (bilinear, antialiased) to ``image_size`` so batches stack; grayscale images of an
RGB dataset are repeated to 3 channels.

Small datasets (<= ``IN_MEMORY_BYTES`` decoded) are read once into numpy arrays at
construction, so a batch is a numpy gather; larger ones are read per batch through
``__getitems__``. TFDS deserialises each record in Python: 40-200 us for a raw 28x28
record on this 2-core machine (depending on load), i.e. 2.5-12 s to load Fashion-MNIST's
60,000 training images, and 10-20 ms for a lazily read batch of 256.
"""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from disc_jax.data.source import check_indices

IN_MEMORY_BYTES = 2 << 30


class DatasetNotPreparedError(ValueError):
  """The TFDS dataset is not in data_dir and may not be downloaded."""


class CorruptDatasetError(ValueError):
  """The prepared TFDS dataset does not read back; the message says how to rebuild it."""


@contextlib.contextmanager
def reading_prepared(tfds_name: str, data_dir: str | None):
  """Turns a failure to read a prepared dataset into a :class:`CorruptDatasetError`."""
  try:
    yield
  except (DatasetNotPreparedError, CorruptDatasetError):
    raise
  except Exception as e:  # noqa: BLE001 - TFDS, protobuf and array_record raise many kinds
    root = pathlib.Path(data_dir).expanduser() if data_dir else pathlib.Path(tfds.core.constants.DATA_DIR)
    folder = root / tfds_name.split(":")[0].split("/")[0]
    raise CorruptDatasetError(
        f"the prepared TFDS dataset {tfds_name!r} in {folder} does not read back "
        f"({type(e).__name__}: {str(e)[:200]}); it is damaged (e.g. a preparation or copy cut "
        f"short). Delete {folder} and run again: with --config.dataset.manual_dir=<the folder "
        "of the original files> for mnist/fashion_mnist/kmnist/cifar10/cifar100 (or python -m "
        "experiments.prepare), else with downloading allowed") from e


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
  """Bilinear (antialiased) resize of one uint8 [H, W, C] image to ``size`` = (H', W')."""
  if image.shape[:2] == tuple(size):
    return image
  chans = [np.asarray(Image.fromarray(image[..., c]).resize((size[1], size[0]), Image.BILINEAR))
           for c in range(image.shape[-1])]
  return np.stack(chans, axis=-1)


def _fit(image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
  """``image`` as uint8 of exactly ``shape``: resized, grayscale repeated to C channels."""
  image = np.asarray(image, np.uint8)
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 1 and shape[-1] == 3:
    image = np.repeat(image, 3, axis=-1)
  elif image.shape[-1] == 4 and shape[-1] == 3:
    image = image[..., :3]
  if image.shape[-1] != shape[-1]:
    raise ValueError(f"cannot turn an image with {image.shape[-1]} channels into {shape[-1]}")
  return resize_image(image, shape[:2])


class TfdsSource:
  """A TFDS split as a Source, read with ``as_data_source`` (no TensorFlow).

  Args:
    tfds_name: registered TFDS name (or one prepared in ``data_dir``), e.g. 'cifar10'.
    split: TFDS split, e.g. 'train', 'test', 'train[:90%]'.
    data_dir: TFDS data_dir (None: TFDS's default).
    download: prepare the dataset when it is absent (needs network; most stock builders
      also need TensorFlow to prepare). False raises :class:`DatasetNotPreparedError`.
    image_size: (H, W) to resize to; required when the stored images vary in size.
    in_memory: load the split into numpy at construction; None: when it fits
      ``IN_MEMORY_BYTES``.
    name: the Source name (default ``tfds_name``; e.g. 'fashion_mnist' for the offline copy).
  """

  def __init__(self, tfds_name: str, split: str, *, data_dir: str | pathlib.Path | None = None,
               download: bool = False, image_size: int | Sequence[int] | None = None,
               in_memory: bool | None = None, name: str | None = None,
               image_key: str = "image", label_key: str = "label"):
    data_dir = None if data_dir is None else str(data_dir)
    self._data_dir = data_dir
    with reading_prepared(tfds_name, data_dir):
      builder = tfds.builder(tfds_name, data_dir=data_dir)
    if not builder.is_prepared():
      if not download:
        raise DatasetNotPreparedError(
            f"TFDS dataset {tfds_name!r} is not prepared in data_dir={builder.data_dir_root!r}. Pass download=True "
            f"to let TFDS download and prepare it (needs network; most stock builders also need TensorFlow), "
            f"prepare it elsewhere with file_format='array_record' and copy the data_dir, or, for "
            f"mnist/fashion_mnist/kmnist/cifar10/cifar100, pass manual_dir= a folder with the original files "
            f"(or run python -m experiments.prepare).")
      builder.download_and_prepare(file_format="array_record")
    with reading_prepared(tfds_name, data_dir):
      self._data = builder.as_data_source(split=split)
      self._labels_data = builder.as_data_source(split=split, decoders={image_key: tfds.decode.SkipDecoding()})
      features = builder.info.features
    self._image_key, self._label_key = image_key, label_key
    self.num_classes = int(features[label_key].num_classes)
    self.label_names = tuple(features[label_key].names)
    stored = tuple(features[image_key].shape)
    if image_size is not None:
      hw = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
      self.image_shape = (int(hw[0]), int(hw[1]), int(stored[-1]))
    elif None in stored or len(stored) != 3:
      raise ValueError(f"{tfds_name!r} stores images of shape {stored} (variable size): pass image_size=(H, W)")
    else:
      self.image_shape = tuple(int(d) for d in stored)
    self.name = name or tfds_name
    self.tfds_name, self.split = tfds_name, split
    self._labels: np.ndarray | None = None
    self._images: np.ndarray | None = None
    if in_memory is None:
      in_memory = len(self) * int(np.prod(self.image_shape)) <= IN_MEMORY_BYTES
    if in_memory:
      batch = self._read(np.arange(len(self)))
      self._images, self._labels = batch["image"], batch["label"]

  def __len__(self) -> int:
    return len(self._data)

  @property
  def labels(self) -> np.ndarray:
    """All labels (int32), read once without decoding the images."""
    if self._labels is None:
      with reading_prepared(self.tfds_name, self._data_dir):
        records = self._labels_data.__getitems__(list(range(len(self))))
        self._labels = np.fromiter((r[self._label_key] for r in records), np.int32, len(records))
    return self._labels

  def _read(self, idx: np.ndarray) -> dict[str, np.ndarray]:
    with reading_prepared(self.tfds_name, self._data_dir):
      records = self._data.__getitems__(idx.tolist()) if idx.size else []
      missing = [int(i) for i, r in zip(idx, records) if getattr(r.get(self._image_key), "shape", None) is None]
      if missing:
        raise ValueError(f"records {missing[:5]} of split {self.split!r} hold no image")
    images = np.empty((idx.size, *self.image_shape), np.uint8)
    for i, r in enumerate(records):
      img = r[self._image_key]
      images[i] = img if img.shape == self.image_shape and img.dtype == np.uint8 else _fit(img, self.image_shape)
    labels = np.fromiter((r[self._label_key] for r in records), np.int32, len(records))
    return {"image": images, "label": labels}

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    idx = check_indices(indices, len(self))
    if self._images is not None:
      return {"image": self._images[idx], "label": self._labels[idx]}
    return self._read(idx)

  def __repr__(self) -> str:
    return f"TfdsSource({self.tfds_name!r}, split={self.split!r}, n={len(self)}, image_shape={self.image_shape})"
