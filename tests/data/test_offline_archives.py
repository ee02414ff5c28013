"""Offline CIFAR-10/100 and Caltech-256 from their archives (synthetic archives of the published layout); dead builds."""
from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds

from disc_jax.data import CorruptFileError, MissingFileError, TfdsSource, load_source, offline, offline_name
from disc_jax.data import prepare_offline


def _add(tar: tarfile.TarFile, name: str, obj) -> None:
  data = pickle.dumps(obj, protocol=2)
  info = tarfile.TarInfo(name)
  info.size = len(data)
  tar.addfile(info, io.BytesIO(data))


def _write_cifar(folder, dataset: str, n_per_batch=4, n_test=3, seed=0, meta_override=None):
  """A tarball laid out like the published one; returns {split: (images NHWC, labels dict)}.

  The expected images are built independently of the reader: row r of ``data`` holds the
  1024 red, then green, then blue values of image r, row by row.
  """
  rng = np.random.default_rng(seed)
  folder.mkdir(parents=True, exist_ok=True)
  members = offline.CIFAR_MEMBERS[dataset]
  path = folder / offline.FILES[dataset]["train"][0]
  out = {}
  with tarfile.open(path, "w:gz") as tar:
    if dataset == "cifar10":
      meta = {b"label_names": [n.encode() for n in offline.LABEL_NAMES["cifar10"]], b"num_vis": 3072}
    else:
      meta = {b"fine_label_names": [n.encode() for n in offline.LABEL_NAMES["cifar100"]],
              b"coarse_label_names": [n.encode() for n in offline.CIFAR100_COARSE]}
    meta.update(meta_override or {})
    _add(tar, members["meta"], meta)
    for split in ("train", "test"):
      images, labels = [], {}
      for member in members[split]:
        n = n_test if split == "test" else n_per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        batch = {b"data": data, b"batch_label": member.encode(), b"filenames": [b"x.png"] * n}
        if dataset == "cifar10":
          lab = {"label": rng.integers(0, 10, n)}
          batch[b"labels"] = lab["label"].tolist()
        else:
          lab = {"label": rng.integers(0, 100, n), "coarse_label": rng.integers(0, 20, n)}
          batch[b"fine_labels"], batch[b"coarse_labels"] = lab["label"].tolist(), lab["coarse_label"].tolist()
        _add(tar, member, batch)
        images.append(data.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1))
        for k, v in lab.items():
          labels.setdefault(k, []).append(v)
      out[split] = (np.concatenate(images), {k: np.concatenate(v) for k, v in labels.items()})
  return out


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_prepare_synthetic_tarball_and_read_back(tmp_path, dataset):
  data = _write_cifar(tmp_path / "orig", dataset)
  prepare_offline(dataset, tmp_path / "orig", tmp_path / "tfds", checksums=offline.SKIP_CHECKSUMS)
  for split, (images, labels) in data.items():
    ds = tfds.data_source(offline_name(dataset), split=split, data_dir=str(tmp_path / "tfds"), download=False)
    records = ds.__getitems__(list(range(len(ds))))
    assert len(records) == images.shape[0] == (20 if split == "train" and dataset == "cifar10" else
                                               4 if split == "train" else 3)
    np.testing.assert_array_equal(np.stack([r["image"] for r in records]), images)
    for k, v in labels.items():
      np.testing.assert_array_equal([r[k] for r in records], v)
    assert records[1]["id"] in (b"%s_00001" % split.encode(), f"{split}_00001")
  src = load_source(dataset, "train", data_dir=tmp_path / "tfds")
  assert isinstance(src, TfdsSource) and src.name == dataset and src.image_shape == (32, 32, 3)
  assert src.num_classes == (10 if dataset == "cifar10" else 100)
  np.testing.assert_array_equal(src.get_batch(np.array([3, 0]))["image"], data["train"][0][[3, 0]])
  assert src.label_names == offline.LABEL_NAMES[dataset]


def test_published_md5_is_checked_by_default(tmp_path):
  _write_cifar(tmp_path / "orig", "cifar10")
  with pytest.raises(CorruptFileError, match=r"md5 of 'cifar-10-python\.tar\.gz'.*cs\.toronto\.edu"):
    prepare_offline("cifar10", tmp_path / "orig", tmp_path / "tfds")
  assert not offline.offline_builder("cifar10", tmp_path / "tfds").is_prepared()
  assert not list((tmp_path / "tfds").rglob("incomplete.*"))


def test_missing_and_malformed_archives(tmp_path):
  (tmp_path / "empty").mkdir()
  with pytest.raises(MissingFileError, match=r"cifar-100-python\.tar\.gz"):
    prepare_offline("cifar100", tmp_path / "empty", tmp_path / "tfds", checksums=offline.SKIP_CHECKSUMS)
  _write_cifar(tmp_path / "wrong", "cifar10", meta_override={b"label_names": [b"cat"] * 10})
  with pytest.raises(CorruptFileError, match="label_names"):
    prepare_offline("cifar10", tmp_path / "wrong", tmp_path / "tfds", checksums=offline.SKIP_CHECKSUMS)
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "cifar-10-python.tar.gz").write_bytes(b"not a tarball")
  with pytest.raises(CorruptFileError, match="gzipped tar"):
    prepare_offline("cifar10", tmp_path / "bad", tmp_path / "tfds", checksums=offline.SKIP_CHECKSUMS)
  assert not offline.offline_builder("cifar10", tmp_path / "tfds").is_prepared()


class _Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned",))


def test_pickles_may_hold_only_arrays(tmp_path):
  folder = tmp_path / "orig"
  folder.mkdir()
  with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
    _add(tar, offline.CIFAR_MEMBERS["cifar10"]["meta"], {b"label_names": _Evil()})
  with pytest.raises(CorruptFileError, match="refusing to load"):
    prepare_offline("cifar10", folder, tmp_path / "tfds", checksums=offline.SKIP_CHECKSUMS)


def test_a_killed_build_does_not_block_or_linger(tmp_path):
  """A build killed mid-way leaves an incomplete.* folder; the next build removes it and succeeds."""
  _write_cifar(tmp_path / "orig", "cifar10", n_test=10)
  script = textwrap.dedent(f"""
      import time
      from disc_jax.data import offline
      real = offline.read_cifar
      def slow(*a):
        out = real(*a)
        print("writing", flush=True)
        time.sleep(60)
        return out
      offline.read_cifar = slow
      offline.prepare_offline("cifar10", {str(tmp_path / "orig")!r}, {str(tmp_path / "tfds")!r},
                              checksums=offline.SKIP_CHECKSUMS)
  """)
  proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
  try:
    for line in proc.stdout:            # TFDS prints its own progress first
      if line.strip() == "writing":
        break
    else:
      pytest.fail("the build ended before it was killed")
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  root = tmp_path / "tfds" / offline_name("cifar10")
  assert [p.name.startswith("incomplete.") for p in root.iterdir() if p.is_dir()] == [True]
  prepare_offline("cifar10", tmp_path / "orig", tmp_path / "tfds", checksums=offline.SKIP_CHECKSUMS)
  assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["1.0.0"]
  assert len(load_source("cifar10", "test", data_dir=tmp_path / "tfds")) == 10


def _jpeg(rng, mode="RGB", size=(9, 7)):
  from PIL import Image
  buf = io.BytesIO()
  pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
  if mode == "CMYK":                 # smooth, so re-encoding it loses little
    pixels = np.broadcast_to(np.linspace(40, 200, size[0], dtype=np.uint8)[None, :, None], pixels.shape)
  img = Image.fromarray(np.ascontiguousarray(pixels)).convert(mode)
  img.save(buf, format="JPEG", quality=95)
  return buf.getvalue()


def _write_caltech256(folder, per_class=(5, 4, 6)):
  """256_ObjectCategories.tar with classes 001, 002, 257 (+ a stray file); returns {member: bytes}."""
  rng = np.random.default_rng(0)
  folder.mkdir(parents=True, exist_ok=True)
  files = {}
  for (num, cls), n in zip(((1, "ak47"), (2, "american-flag"), (257, "clutter")), per_class):
    for i in range(1, n + 1):
      mode = "L" if (num, i) == (2, 1) else "CMYK" if (num, i) == (2, 2) else "RGB"
      files[f"256_ObjectCategories/{num:03d}.{cls}/{num:03d}_{i:04d}.jpg"] = _jpeg(rng, mode)
  files["256_ObjectCategories/198.spider/RENAME2"] = b"not an image"
  with tarfile.open(folder / "256_ObjectCategories.tar", "w") as tar:
    for name, data in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return files


def test_caltech256_from_the_tar(tmp_path, monkeypatch):
  from PIL import Image
  monkeypatch.setattr(offline, "CALTECH256_TRAIN_PER_CLASS", 2)
  files = _write_caltech256(tmp_path / "orig")
  prepare_offline("caltech256", tmp_path / "orig", tmp_path / "tfds", checksums=offline.SKIP_CHECKSUMS)
  seen = {}
  for split, n in (("train", 6), ("test", 15 - 6)):
    ds = tfds.data_source(offline_name("caltech256"), split=split, data_dir=str(tmp_path / "tfds"), download=False)
    records = ds.__getitems__(list(range(len(ds))))
    assert len(records) == n
    for r in records:
      rid = r["id"].decode() if isinstance(r["id"], bytes) else r["id"]
      seen[rid] = (split, int(r["label"]), r["image"])
  assert len(seen) == 15                                  # a partition of the 15 JPEGs; RENAME2 skipped
  assert sorted({lab for _, lab, _ in seen.values()}) == [0, 1, 256]
  for rid, (split, label, image) in seen.items():
    with Image.open(io.BytesIO(files["256_ObjectCategories/" + rid])) as img:
      want = np.asarray(img.convert("RGB") if img.mode == "CMYK" else img)
    if want.ndim == 2:                                    # grayscale: TFDS repeats it to the feature's 3 channels
      want = np.repeat(want[..., None], 3, axis=-1)
    if rid.endswith("002_0002.jpg"):                      # CMYK re-encoded as RGB JPEG: close, not equal
      assert image.shape == want.shape and np.abs(image.astype(int) - want).mean() < 8
    else:                                                 # stored bytes as they are: same decode
      np.testing.assert_array_equal(image, want)
  train_per_class = np.bincount([lab for s, lab, _ in seen.values() if s == "train"], minlength=257)
  assert train_per_class[[0, 1, 256]].tolist() == [2, 2, 2]
  src = load_source("caltech256", "test", data_dir=tmp_path / "tfds", image_size=16)
  b = src.get_batch(np.arange(len(src)))
  assert b["image"].shape == (9, 16, 16, 3) and src.num_classes == 257
