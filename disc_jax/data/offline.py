"""Offline TFDS preparation of MNIST, Fashion-MNIST, KMNIST, CIFAR-10/100 and Caltech-256.

For a machine with no internet (CI, a cluster node behind a firewall): put the files as
published (the idx ``.gz`` files of MNIST/Fashion-MNIST, the ``.npz`` files of KMNIST,
the python tarballs ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` of CIFAR,
``256_ObjectCategories.tar`` of Caltech-256) in a folder, and :func:`prepare_offline` verifies them against the published checksums and
writes a normal TFDS dataset (``array_record`` shards + ``dataset_info.json``) into the
TFDS ``data_dir``. From then on the ordinary TFDS path reads it, e.g.
``tfds.data_source('disc_jax_fashion_mnist', split='train', data_dir=...)``, in any
process, without this module and without TensorFlow.

Route chosen, and why (TFDS 4.9.10):

* The stock ``mnist``/``fashion_mnist``/``kmnist`` builders do accept the original files
  through ``DownloadConfig(manual_dir=...)``, but their gzip extraction and PNG encoding
  import TensorFlow (1.4 GB). Making TF a training requirement for three 50 MB datasets
  is the heavy route; the lightest robust one is wanted.
* Parsing the files with numpy and handing arrays to the pipeline would skip TFDS
  entirely (no ``dataset_info``, no shared ``data_dir`` layout).
* So: one small ``GeneratorBasedBuilder`` per dataset (:class:`DiscJaxMnist`,
  :class:`DiscJaxFashionMnist`, :class:`DiscJaxKmnist`, :class:`DiscJaxCifar10`,
  :class:`DiscJaxCifar100`, :class:`DiscJaxCaltech256`) that parses the files with
  numpy and stores raw ``uint8`` tensors (``tfds.features.Tensor``, no PNG codec) in
  ``array_record`` with ``disable_shuffling=True`` (record i is image i of the original
  file, so the first label/image can be checked against the source). It needs only
  tensorflow-datasets, array_record and importlib_resources (pinned in pyproject) and
  builds Fashion-MNIST in about 8 s.
* The builders have their own names (``disc_jax_<dataset>``) because a second builder
  named ``mnist`` would collide with TFDS's registered one, and the stock builder could
  not decode our raw-tensor records (it expects PNG).

CIFAR: the python tarballs hold pickles (``data`` uint8 [N, 3072], channel-major, and
``labels``; CIFAR-100 ``fine_labels`` and ``coarse_labels``). They are read with an
unpickler that admits only numpy arrays and plain containers, so a tampered archive cannot
run code; images become [N, 32, 32, 3], training batches 1-5 in order. The features are
TFDS's ``cifar10``/``cifar100`` names (``image``, ``label``, CIFAR-100's ``coarse_label``,
``id``), so :class:`disc_jax.data.tfds.TfdsSource` reads them like the stock datasets.
The stock TFDS builders read the *binary* tarballs and need TensorFlow; the python
tarballs are the ones torchvision and most mirrors serve.

Caltech-256 has no TFDS builder at all. :class:`DiscJaxCaltech256` stores the JPEGs
as they are (``tfds.features.Image``, decoded with pillow when read) with labels 0-256
(the folder numbers minus one; 256 is the clutter class), split as the group softmax
paper's protocol: 60 random training images per category (one partition, seed
:data:`CALTECH256_SPLIT_SEED`), the rest test.

Checksums are data (:data:`CHECKSUMS`): size, md5 and sha256 as published (KMNIST's
training images only have a published md5 and size, CIFAR's tarballs an md5). Every
given entry is checked; tests pass their own ``checksums`` mapping for the tiny files
they write.

A build writes into TFDS's ``incomplete.*`` folder and renames it when done. A build that
is killed leaves that folder behind; :func:`prepare_offline` (and :func:`prepare_locked`
for any builder) holds an exclusive lock file in the dataset's folder while building, so
folders of dead builds are recognisable and removed before the next build, and two
processes preparing one dataset at once build it once.
"""

from __future__ import annotations

import codecs
import fcntl
import gzip
import hashlib
import io
import pathlib
import pickle
import re
import shutil
import tarfile
import types
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from disc_jax.data.cross_domain import CIFAR100_CLASSES

IMAGE_SHAPE = (28, 28, 1)
IMAGE_SHAPES = {"mnist": IMAGE_SHAPE, "fashion_mnist": IMAGE_SHAPE, "kmnist": IMAGE_SHAPE,
                "cifar10": (32, 32, 3), "cifar100": (32, 32, 3), "caltech256": (None, None, 3)}

# dataset -> split -> (images file, labels file), as published.
FILES = {
    "mnist": {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
              "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")},
    "fashion_mnist": {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                      "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")},
    "kmnist": {"train": ("kmnist-train-imgs.npz", "kmnist-train-labels.npz"),
               "test": ("kmnist-test-imgs.npz", "kmnist-test-labels.npz")},
    # One tarball holds both splits.
    "cifar10": {"train": ("cifar-10-python.tar.gz",), "test": ("cifar-10-python.tar.gz",)},
    "cifar100": {"train": ("cifar-100-python.tar.gz",), "test": ("cifar-100-python.tar.gz",)},
    "caltech256": {"train": ("256_ObjectCategories.tar",), "test": ("256_ObjectCategories.tar",)},
}

# Where to get the files (shown in every missing/corrupt-file error).
URLS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/ (mirror of http://yann.lecun.com/exdb/mnist/)",
    "fashion_mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/ or "
                     "https://github.com/zalandoresearch/fashion-mnist/tree/master/data/fashion",
    "kmnist": "http://codh.rois.ac.jp/kmnist/dataset/kmnist/ (see https://github.com/rois-codh/kmnist)",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (see https://www.cs.toronto.edu/~kriz/cifar.html)",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (see https://www.cs.toronto.edu/~kriz/cifar.html)",
    "caltech256": "https://data.caltech.edu/records/nyy15-4j048 (file 256_ObjectCategories.tar)",
}

# Published checksums: dataset -> file name -> {size, md5, sha256}.
CHECKSUMS: dict[str, dict[str, dict[str, object]]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {"size": 9912422, "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                       "sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
        "train-labels-idx1-ubyte.gz": {"size": 28881, "md5": "d53e105ee54ea40749a09fcbcd1e9432",
                                       "sha256": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"},
        "t10k-images-idx3-ubyte.gz": {"size": 1648877, "md5": "9fb629c4189551a2d022fa330f9573f3",
                                      "sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
        "t10k-labels-idx1-ubyte.gz": {"size": 4542, "md5": "ec29112dd5afa0611ce80d1b7f02629c",
                                      "sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": {"size": 26421880, "md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                       "sha256": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"},
        "train-labels-idx1-ubyte.gz": {"size": 29515, "md5": "25c81989df183df01b3e8a0aad5dffbe",
                                       "sha256": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"},
        "t10k-images-idx3-ubyte.gz": {"size": 4422102, "md5": "bef4ecab320f06d8554ea6380940ec79",
                                      "sha256": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"},
        "t10k-labels-idx1-ubyte.gz": {"size": 5148, "md5": "bb300cfdad3c16e7a12a480ee83cd310",
                                      "sha256": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
    },
    "kmnist": {
        "kmnist-train-imgs.npz": {"size": 18384171, "md5": "a183fbc01ed9a345513b145673d3d0bb"},
        "kmnist-train-labels.npz": {"size": 29700, "md5": "b0e1d240e8afec72b50437fc3bc5908a",
                                    "sha256": "a325c877035602cb9b9ba54f4194a2a1b5f718026a463db5b5e0cdc124c03720"},
        "kmnist-test-imgs.npz": {"size": 3079479, "md5": "dace6de62ca8b90843cc45366337d02e",
                                 "sha256": "692d824896bec8f3c357ebf7a0fe904ed67ac632ce953d0b58f7fbef7bb27d87"},
        "kmnist-test-labels.npz": {"size": 5304, "md5": "3ae489a79983d0fe386152684e3b5412",
                                   "sha256": "660f13a4705431ea2a6391c41ecbe384cd0d932c595a101ec4f3b8989e785046"},
    },
    "cifar10": {"cifar-10-python.tar.gz": {"md5": "c58f30108f718f92721af3b95e74349a"}},
    "cifar100": {"cifar-100-python.tar.gz": {"md5": "eb9058c3a382ffc7106e4002c42a8d85"}},
    # The md5 torchvision checks for this file.
    "caltech256": {"256_ObjectCategories.tar": {"md5": "67b4f42ca05d46448c6bb8ecd2220f6d"}},
}

LABEL_NAMES = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "cifar100": CIFAR100_CLASSES,
}

CIFAR100_COARSE = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes", "large_omnivores_and_herbivores",
    "medium_mammals", "non-insect_invertebrates", "people", "reptiles", "small_mammals", "trees",
    "vehicles_1", "vehicles_2",
)

# Members of the python tarballs: split -> pickles in order; and the label-name pickle.
CIFAR_MEMBERS = {
    "cifar10": {"train": tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
                "test": ("cifar-10-batches-py/test_batch",),
                "meta": "cifar-10-batches-py/batches.meta"},
    "cifar100": {"train": ("cifar-100-python/train",), "test": ("cifar-100-python/test",),
                 "meta": "cifar-100-python/meta"},
}


# Pass as ``checksums`` to check only that the files exist (tests on synthetic archives);
# compared by identity, so an empty mapping of one's own still means "no entries".
SKIP_CHECKSUMS: Mapping[str, Mapping[str, object]] = types.MappingProxyType({})


class MissingFileError(FileNotFoundError):
  """An original dataset file is absent from the folder given as manual_dir."""


class CorruptFileError(ValueError):
  """An original dataset file does not match its published checksum or format."""


def _hint(dataset: str) -> str:
  return f"Download it from {URLS[dataset]} into that folder (keep the published file name)."


def verify_file(path: pathlib.Path, expected: Mapping[str, object], dataset: str) -> None:
  """Checks that ``path`` exists and matches ``expected`` (any of size, md5, sha256)."""
  if not path.is_file():
    raise MissingFileError(f"{dataset}: missing original file {path.name!r} in {path.parent}. {_hint(dataset)}")
  if "size" in expected and path.stat().st_size != expected["size"]:
    raise CorruptFileError(f"{dataset}: file {path.name!r} in {path.parent} has {path.stat().st_size} bytes, "
                           f"expected {expected['size']}: it is truncated or not the published file. "
                           f"{_hint(dataset)}")
  hashes = {k: hashlib.new(k) for k in ("md5", "sha256") if k in expected}
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      for h in hashes.values():
        h.update(chunk)
  for kind, h in hashes.items():
    if h.hexdigest() != expected[kind]:
      raise CorruptFileError(f"{dataset}: {kind} of {path.name!r} in {path.parent} is {h.hexdigest()}, "
                             f"expected the published {expected[kind]}: the file is corrupt or a different "
                             f"version. {_hint(dataset)}")


def read_idx(path: pathlib.Path) -> np.ndarray:
  """The uint8 array of a gzipped idx file (magic 2051: images [N, H, W]; 2049: labels [N])."""
  with gzip.open(path, "rb") as f:
    data = f.read()
  magic = int.from_bytes(data[:4], "big")
  if magic not in (2049, 2051):
    raise CorruptFileError(f"{path.name!r} is not an idx label (2049) or image (2051) file: magic {magic}")
  ndim = 1 if magic == 2049 else 3
  dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
  offset = 4 + 4 * ndim
  if len(data) != offset + int(np.prod(dims)):
    raise CorruptFileError(f"{path.name!r}: header says {dims} but holds {len(data) - offset} bytes")
  return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


class _ArrayUnpickler(pickle.Unpickler):
  """Unpickles numpy arrays and plain containers only (CIFAR's pickles need nothing else).

  ``_codecs.encode`` is how protocol 2 stores ``bytes`` written by Python 3 (a re-pickled
  copy of the archive); it only turns a string into bytes.
  """

  _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
              ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
              ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

  def find_class(self, module, name):
    if (module, name) not in self._ALLOWED:
      raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset pickle")
    if module == "_codecs":
      return codecs.encode
    if module == "numpy":
      return getattr(np, name)
    return getattr(np._core.multiarray if hasattr(np, "_core") else np.core.multiarray, name)  # pylint: disable=protected-access


def _load_pickle(data: bytes, what: str, dataset: str) -> dict:
  try:
    out = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
  except Exception as e:  # pylint: disable=broad-except
    raise CorruptFileError(f"{dataset}: {what} is not a readable CIFAR pickle ({e}). {_hint(dataset)}") from e
  if not isinstance(out, dict):
    raise CorruptFileError(f"{dataset}: {what} holds a {type(out).__name__}, expected a dict. {_hint(dataset)}")
  return out


def read_cifar(dataset: str, folder: pathlib.Path, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """uint8 images [N, 32, 32, 3] and {'label'[, 'coarse_label']} int64 [N] of one CIFAR split.

  Checks the tarball's label names against :data:`LABEL_NAMES` (and CIFAR-100's coarse
  names), so the stored class ids mean what the features say.
  """
  name = FILES[dataset][split][0]
  members = CIFAR_MEMBERS[dataset]
  try:
    tar = tarfile.open(folder / name, "r:gz")
  except (tarfile.TarError, OSError) as e:
    raise CorruptFileError(f"{dataset}: {name!r} in {folder} is not a gzipped tar file ({e}). {_hint(dataset)}") from e
  with tar:
    def read(member: str) -> dict:
      try:
        f = tar.extractfile(member)
      except KeyError:
        f = None
      if f is None:
        raise CorruptFileError(f"{dataset}: {name!r} has no file {member!r}: not the python version of the "
                               f"dataset. {_hint(dataset)}")
      return _load_pickle(f.read(), f"{member!r} in {name!r}", dataset)

    meta = read(members["meta"])
    expected = {b"label_names": LABEL_NAMES["cifar10"]} if dataset == "cifar10" else {
        b"fine_label_names": LABEL_NAMES["cifar100"], b"coarse_label_names": CIFAR100_COARSE}
    for key, names in expected.items():
      got = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(key, ()))
      if got != names:
        raise CorruptFileError(f"{dataset}: {key.decode()} in {members['meta']!r} are {got[:5]}..., expected "
                               f"{names[:5]}...: not the published archive. {_hint(dataset)}")
    label_keys = {"label": b"labels"} if dataset == "cifar10" else {"label": b"fine_labels",
                                                                    "coarse_label": b"coarse_labels"}
    images, labels = [], {k: [] for k in label_keys}
    for member in members[split]:
      batch = read(member)
      data = np.asarray(batch.get(b"data"))
      if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise CorruptFileError(f"{dataset}: {member!r} data is {data.dtype} {data.shape}, expected uint8 "
                               f"[N, 3072]. {_hint(dataset)}")
      images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
      for k, key in label_keys.items():
        lab = np.asarray(batch.get(key, ()), np.int64)
        if lab.shape != (data.shape[0],):
          raise CorruptFileError(f"{dataset}: {member!r} has {lab.size} {key.decode()} for {data.shape[0]} "
                                 f"images. {_hint(dataset)}")
        labels[k].append(lab)
  labels_out = {k: np.concatenate(v) for k, v in labels.items()}
  num = {"label": len(LABEL_NAMES[dataset]), "coarse_label": len(CIFAR100_COARSE)}
  for k, v in labels_out.items():
    if v.size and (v.min() < 0 or v.max() >= num[k]):
      raise CorruptFileError(f"{dataset}: {k} values outside [0, {num[k]}). {_hint(dataset)}")
  return np.ascontiguousarray(np.concatenate(images)), labels_out


# Caltech-256 (group_softmax_loss.txt Sec. 4.3): "60 random training images per category,
# the rest for test". One partition, drawn with this seed, is stored as 'train'/'test'.
CALTECH256_TRAIN_PER_CLASS = 60
CALTECH256_SPLIT_SEED = 0
CALTECH256_CLASSES = 257                      # 256 categories + 257.clutter
_CALTECH256_FILE = re.compile(r"^(?:\./)?256_ObjectCategories/(\d{3})\.[^/]+/\d{3}_\d{4}\.jpg$")


def caltech256_split(names: list[str], split: str) -> list[tuple[str, int]]:
  """(member name, label) of one split: per class, sorted names, the first 60 of a seeded permutation train.

  Labels are the folder numbers minus one (001.ak47 -> 0, ..., 257.clutter -> 256).
  """
  by_class: dict[int, list[str]] = {}
  for name in names:
    match = _CALTECH256_FILE.match(name)
    if match:
      by_class.setdefault(int(match.group(1)) - 1, []).append(name)
  rng = np.random.default_rng(CALTECH256_SPLIT_SEED)
  out = []
  for label in sorted(by_class):
    files = sorted(by_class[label])
    order = rng.permutation(len(files))
    keep = order[:CALTECH256_TRAIN_PER_CLASS] if split == "train" else order[CALTECH256_TRAIN_PER_CLASS:]
    out.extend((files[i], label) for i in sorted(keep))
  return out


def read_caltech256(folder: pathlib.Path, split: str):
  """Yields (index, {'image': JPEG bytes, 'label', 'id'}) of one Caltech-256 split, in name order.

  JPEGs are stored as they are (decoded at read time); the few that are not RGB or
  grayscale (CMYK) are converted to RGB and re-encoded (quality 95, no chroma
  subsampling), since a reader
  would otherwise take CMYK channels for RGB.
  """
  name = FILES["caltech256"][split][0]
  try:
    tar = tarfile.open(folder / name, "r:")
  except (tarfile.TarError, OSError) as e:
    raise CorruptFileError(f"caltech256: {name!r} in {folder} is not a tar file ({e}). {_hint('caltech256')}") from e
  with tar:
    members = {m.name: m for m in tar.getmembers() if m.isfile()}
    chosen = caltech256_split(list(members), split)
    if not chosen:
      raise CorruptFileError(f"caltech256: {name!r} has no 256_ObjectCategories/NNN.name/NNN_NNNN.jpg files. "
                             f"{_hint('caltech256')}")
    for i, (member, label) in enumerate(chosen):
      data = tar.extractfile(members[member]).read()
      with Image.open(io.BytesIO(data)) as img:
        if img.mode not in ("RGB", "L"):
          buf = io.BytesIO()
          img.convert("RGB").save(buf, format="JPEG", quality=95, subsampling=0)
          data = buf.getvalue()
      yield i, {"image": data, "label": label, "id": member.split("/", 1)[-1]}


def read_original(dataset: str, folder: pathlib.Path, split: str) -> tuple[np.ndarray, np.ndarray]:
  """uint8 images [N, 28, 28, 1] and labels [N] of one MNIST-like split, parsed from the original files."""
  image_file, label_file = FILES[dataset][split]
  if image_file.endswith(".npz"):
    with np.load(folder / image_file) as z_img, np.load(folder / label_file) as z_lab:
      images, labels = z_img["arr_0"], z_lab["arr_0"]
  else:
    images, labels = read_idx(folder / image_file), read_idx(folder / label_file)
  if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE[:2] or labels.shape != images.shape[:1]:
    raise CorruptFileError(f"{dataset} {split}: images {images.shape} and labels {labels.shape} are not "
                           f"[N, 28, 28] and [N] with the same N")
  return images.astype(np.uint8)[..., None], labels.astype(np.int64)


class _OfflineBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Builds one of FILES' datasets from manual_dir (see module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Raw uint8 tensors from the original files, original order."}
  DATASET = ""
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Put the original files (see disc_jax.data.offline.FILES) in manual_dir."

  def __init__(self, *, checksums: Mapping[str, Mapping[str, object]] | None = None, **kwargs):
    self._checksums = CHECKSUMS[self.DATASET] if checksums is None else checksums
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    if self.DATASET == "caltech256":
      features = {"image": tfds.features.Image(shape=IMAGE_SHAPES[self.DATASET], encoding_format="jpeg"),
                  "label": tfds.features.ClassLabel(num_classes=CALTECH256_CLASSES)}
    else:
      features = {"image": tfds.features.Tensor(shape=IMAGE_SHAPES[self.DATASET], dtype=np.uint8),
                  "label": tfds.features.ClassLabel(names=LABEL_NAMES[self.DATASET])}
    if self.DATASET == "cifar100":
      features["coarse_label"] = tfds.features.ClassLabel(names=CIFAR100_COARSE)
    if self.DATASET in CIFAR_MEMBERS or self.DATASET == "caltech256":
      features["id"] = tfds.features.Text()
    return tfds.core.DatasetInfo(
        builder=self,
        description=f"{self.DATASET} prepared offline from its original files by disc_jax.data.offline.",
        features=tfds.features.FeaturesDict(features),
        supervised_keys=("image", "label"),
        homepage=URLS[self.DATASET].split(" ")[0],
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    folder = pathlib.Path(dl_manager.manual_dir)
    names = dict.fromkeys(n for split_files in FILES[self.DATASET].values() for n in split_files)
    for name in names:  # verify everything (each file once) before writing anything
      if self._checksums is SKIP_CHECKSUMS:
        if not (folder / name).is_file():
          raise MissingFileError(f"{self.DATASET}: missing original file {name!r} in {folder}. {_hint(self.DATASET)}")
        continue
      if name not in self._checksums:
        raise ValueError(f"checksums has no entry for {name!r}; give size/md5/sha256 for every file")
      verify_file(folder / name, self._checksums[name], self.DATASET)
    return {split: self._generate_examples(folder, split) for split in FILES[self.DATASET]}

  def _generate_examples(self, folder: pathlib.Path, split: str):
    if self.DATASET == "caltech256":
      yield from read_caltech256(folder, split)
      return
    if self.DATASET in CIFAR_MEMBERS:
      images, labels = read_cifar(self.DATASET, folder, split)
      for i in range(images.shape[0]):
        yield i, {"image": images[i], "id": f"{split}_{i:05d}", **{k: v[i] for k, v in labels.items()}}
      return
    images, labels = read_original(self.DATASET, folder, split)
    for i in range(labels.size):
      yield i, {"image": images[i], "label": labels[i]}


class DiscJaxMnist(_OfflineBuilder):
  name = "disc_jax_mnist"
  DATASET = "mnist"


class DiscJaxFashionMnist(_OfflineBuilder):
  name = "disc_jax_fashion_mnist"
  DATASET = "fashion_mnist"


class DiscJaxKmnist(_OfflineBuilder):
  name = "disc_jax_kmnist"
  DATASET = "kmnist"


class DiscJaxCifar10(_OfflineBuilder):
  name = "disc_jax_cifar10"
  DATASET = "cifar10"


class DiscJaxCifar100(_OfflineBuilder):
  name = "disc_jax_cifar100"
  DATASET = "cifar100"


class DiscJaxCaltech256(_OfflineBuilder):
  name = "disc_jax_caltech256"
  DATASET = "caltech256"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "JPEGs of 256_ObjectCategories.tar; 60 per class train (seed 0), the rest test."}


BUILDERS = {"mnist": DiscJaxMnist, "fashion_mnist": DiscJaxFashionMnist, "kmnist": DiscJaxKmnist,
            "cifar10": DiscJaxCifar10, "cifar100": DiscJaxCifar100, "caltech256": DiscJaxCaltech256}


def offline_name(dataset: str) -> str:
  """The TFDS name the offline copy of ``dataset`` is stored under ('disc_jax_<dataset>')."""
  if dataset not in BUILDERS:
    raise ValueError(f"dataset must be one of {sorted(BUILDERS)} for offline preparation, got {dataset!r}")
  return BUILDERS[dataset].name


def offline_builder(dataset: str, data_dir: str | pathlib.Path | None = None, *,
                    checksums: Mapping[str, Mapping[str, object]] | None = None) -> tfds.core.DatasetBuilder:
  """The (maybe not yet prepared) offline builder of ``dataset`` writing array_record."""
  offline_name(dataset)
  return BUILDERS[dataset](data_dir=None if data_dir is None else str(data_dir), file_format="array_record",
                           checksums=checksums)


def prepare_offline(dataset: str, manual_dir: str | pathlib.Path, data_dir: str | pathlib.Path | None = None, *,
                    checksums: Mapping[str, Mapping[str, object]] | None = None) -> tfds.core.DatasetBuilder:
  """Verifies the original files of ``dataset`` in ``manual_dir`` and writes them into ``data_dir``.

  Args:
    dataset: 'mnist', 'fashion_mnist' or 'kmnist'.
    manual_dir: folder holding the original files (names as in :data:`FILES`).
    data_dir: TFDS data_dir to write to (None: TFDS's default, ~/tensorflow_datasets).
    checksums: file name -> {size, md5, sha256} (any subset) to check against; None uses
      the published :data:`CHECKSUMS`. Tests give their own for tiny files.

  Returns:
    The prepared builder; ``tfds.data_source(offline_name(dataset), split=..., data_dir=...)``
    reads the result. Does nothing (and checks nothing) when already prepared.

  Raises:
    MissingFileError: a file is absent (names the file and where to download it).
    CorruptFileError: a file fails its size/md5/sha256 or format check.
  """
  builder = offline_builder(dataset, data_dir, checksums=checksums)
  if builder.is_prepared():
    return builder
  folder = pathlib.Path(manual_dir).expanduser()
  if not folder.is_dir():
    first = FILES[dataset]["train"][0]
    raise MissingFileError(f"{dataset}: manual_dir {folder} does not exist (it should hold {first!r} and the "
                           f"other original files). {_hint(dataset)}")
  for name in dict.fromkeys(n for split_files in FILES[dataset].values() for n in split_files):
    if not (folder / name).is_file():
      raise MissingFileError(f"{dataset}: missing original file {name!r} in {folder}. {_hint(dataset)}")
  config = tfds.download.DownloadConfig(manual_dir=str(folder))
  return prepare_locked(lambda: offline_builder(dataset, data_dir, checksums=checksums),
                        lambda b: b.download_and_prepare(download_config=config))


def prepare_locked(make_builder: Callable[[], tfds.core.DatasetBuilder],
                   build: Callable[[tfds.core.DatasetBuilder], None]) -> tfds.core.DatasetBuilder:
  """Runs ``build(builder)`` under the dataset's lock, after removing dead builds' output.

  The lock is an ``flock`` on ``<data_dir>/<name>/.prepare.lock``, released by the
  kernel when its holder dies. Holding it, no other build of this dataset is running, so
  every ``incomplete.*`` folder there is a dead build's and is removed. A process that
  waited for the lock finds the dataset prepared and returns it without building. A
  build that fails with an exception has its folder removed by TFDS itself.
  """
  builder = make_builder()
  root = pathlib.Path(builder.data_dir).parent
  if builder.builder_config is not None:   # <name>/<config>/<version>
    root = root.parent
  root.mkdir(parents=True, exist_ok=True)
  with open(root / ".prepare.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      builder = make_builder()              # sees what a build that held the lock wrote
      if builder.is_prepared():
        return builder
      for stale in root.rglob("incomplete.*"):
        if stale.is_dir():
          shutil.rmtree(stale, ignore_errors=True)
      build(builder)
      return builder
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)
