"""experiments.prepare: offline builds from manual_dir, clear instructions when nothing can be done."""
from __future__ import annotations

import io

import numpy as np

from disc_jax.data import load_source, offline
from experiments import prepare as prepare_lib
from tests.data.test_offline_archives import _write_cifar


def test_prepares_offline_from_per_dataset_folders_and_is_idempotent(tmp_path):
  data = _write_cifar(tmp_path / "manual" / "cifar100", "cifar100")
  _write_cifar(tmp_path / "manual", "cifar10")                  # directly in manual_dir also works
  out = io.StringIO()
  assert prepare_lib.prepare(["cifar10", "cifar100", "fuzzy_rgb"], tmp_path / "tfds", tmp_path / "manual",
                             checksums=offline.SKIP_CHECKSUMS, download=False, out=out)
  lines = out.getvalue().splitlines()
  assert lines[0].startswith("cifar10: prepared offline") and lines[1].startswith("cifar100: prepared offline")
  assert "nothing to prepare" in lines[2]
  src = load_source("cifar100", "test", data_dir=tmp_path / "tfds")
  np.testing.assert_array_equal(src.get_batch(np.arange(3))["image"], data["test"][0])
  out = io.StringIO()
  assert prepare_lib.prepare(["cifar100"], tmp_path / "tfds", None, download=False, out=out)
  assert "already prepared" in out.getvalue()


def test_without_files_or_downloads_says_what_to_put_where(tmp_path):
  out = io.StringIO()
  ok = prepare_lib.prepare(["cifar10", "stl10", "imagenet2012", "caltech256", "sun397", "nonsense"],
                           tmp_path / "tfds", tmp_path / "manual", download=False, out=out)
  text = out.getvalue()
  assert not ok and text.count("FAILED") == 6
  assert f"SUN397.tar.gz, Partitions.zip from https://vision.princeton.edu/projects/2010/SUN/ in {tmp_path}" \
         "/manual/sun397/" in text
  assert "cifar-10-python.tar.gz" in text and "cifar-10-binary.tar.gz" in text
  assert f"stl10_binary.tar.gz from http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz in {tmp_path}" \
         "/manual/stl10/" in text
  assert "ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar" in text
  assert "not in TFDS's catalogue" in text and "256_ObjectCategories.tar" in text and "unknown dataset" in text
  assert not (tmp_path / "tfds").exists() or not list((tmp_path / "tfds").rglob("incomplete.*"))
