"""Pipeline on grain: batches unchanged bitwise, per-process rows, grain workers, process arguments.

Three references for "unchanged":

* ``RECORDED``: sha256 prefixes of whole batches, recorded with the pipeline as it was
  before it moved to grain and to per-process rows (same configs as here, this machine);
* ``_reference_batch``: that earlier single-process logic, kept here verbatim in
  structure (gather the whole global batch, augment it with whole-batch calls
  ``f(images, rng)``, normalise, pad eval batches after normalising);
* concatenating the P per-process batches (P = 1, 2, 4) must give the global batch.

The recorded digests hold for this machine's numpy; 'rotate' uses float32 cos/sin, whose
last bit may differ on a CPU with other SIMD kernels, where only ``RECORDED`` would fail.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from disc_jax.data import ArraySource, FuzzyRGB, Pipeline, SyntheticSource, load_source
from disc_jax.data import augment as augment_lib
from disc_jax.data.pipeline import AUGMENT_STREAM

AUG = ("crop:2", "flip", "rotate:20", "vflip")


def _digest(batch):
  h = hashlib.sha256()
  for k in sorted(batch):
    a = np.ascontiguousarray(batch[k])
    h.update(k.encode())
    h.update(str(a.dtype).encode())
    h.update(str(a.shape).encode())
    h.update(a.tobytes())
  return h.hexdigest()[:16]


def _configs():
  syn = SyntheticSource("train", num_examples=64, image_shape=(8, 8, 3), num_classes=4)
  out = {}
  for sampler in ("random", "balanced"):
    for shards in (1, 4):
      out[f"syn/{sampler}/{shards}"] = (
          syn, dict(batch_size=16, seed=3, augment=AUG, sampler=sampler, second_batch=True, num_shards=shards),
          (0, 1, 3, 4, 9))
  out["fuzzy/resize"] = (FuzzyRGB("test"), dict(batch_size=32, seed=1, augment=("crop:4", "flip", "rotate:15"),
                                                image_size=20), (0, 46, 47))
  syt = SyntheticSource("test", num_examples=50, image_shape=(6, 6, 1), num_classes=5)
  out["syn/eval"] = (syt, dict(batch_size=16, seed=0, train=False, image_size=(10, 12), num_shards=4), (0, 1, 2, 3))
  return out


RECORDED = {
    "syn/random/1": ["3cadeb0ecb406306", "96c740b521f6b4ea", "82cfcc9cd2881194", "0380a78aeb08b04d",
                     "7e4a5d7bc4ac485b"],
    "syn/random/4": ["3cadeb0ecb406306", "96c740b521f6b4ea", "82cfcc9cd2881194", "0380a78aeb08b04d",
                     "7e4a5d7bc4ac485b"],
    "syn/balanced/1": ["00abf0bb31f9cf3e", "1d7cfcdd6ab7d29a", "9e21fcd61f3c0ffc", "a7287c6f9fad96bb",
                       "fdae1b40ab262f79"],
    "syn/balanced/4": ["21a5900497d1ca4b", "7a5fc917862e02fb", "684ca7e0ef74a74a", "f5a8c737fed715c6",
                       "28bb6be7be9021c7"],
    "fuzzy/resize": ["028107a76e1c06bf", "addc03c533037089", "7dcaa11294237a1c"],
    "syn/eval": ["50d3c13bc404c215", "c1c4dd73deb4f859", "0570f11944a1c796", "e91edb13305b7269"],
    # Fashion-MNIST from the original files (test_fashion_mnist_batches_unchanged).
    "fm/balanced": ["2ffd323a2b1a0562", "039ef27b58ae7740", "1162045caefe7534"],
    "fm/random": ["b401234200a33941", "d4513ae24f60f74b"],
    "fm/eval": ["e75ca50d1946f573", "d9d91508cb4781ea"],
}


def _reference_batch(p: Pipeline, step: int) -> dict[str, np.ndarray]:
  """The single-process batch as computed before per-process rows (whole batch, whole-batch augment calls)."""
  fns = p._augment                        # each is also a whole-batch call f(images, rng)

  def images_of(idx, rng):
    raw = p.source.get_batch(idx)
    images = augment_lib.resize(raw["image"], p.image_shape[:2])
    for fn in fns:
      images = fn(images, rng)
    return images.astype(np.float32) * p._scale + p._offset, raw["label"].astype(np.int32)

  if p.train:
    out = {}
    for k, sampler in enumerate(p._samplers):
      rng = np.random.default_rng([p.seed, AUGMENT_STREAM, int(step), k])
      image, label = images_of(sampler.batch(step), rng)
      out["image" + ("2" if k else "")], out["label" + ("2" if k else "")] = image, label
    return out
  idx = np.arange(step * p.batch_size, min((step + 1) * p.batch_size, len(p.source)))
  image, label = images_of(idx, None)
  pad = p.batch_size - idx.size
  mask = np.ones(p.batch_size, np.float32)
  if pad:
    image = np.concatenate([image, np.zeros((pad, *p.image_shape), np.float32)])
    label = np.concatenate([label, np.zeros(pad, np.int32)])
    mask[idx.size:] = 0.0
  return {"image": image, "label": label, "mask": mask}


def _equal(a, b):
  assert a.keys() == b.keys()
  for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("name", sorted(_configs()))
def test_batches_equal_recorded_and_reference(name):
  source, kw, steps = _configs()[name]
  p = Pipeline(source, **kw)
  assert [_digest(p.batch(s)) for s in steps] == RECORDED[name]
  for s in steps:
    _equal(p.batch(s), _reference_batch(p, s))
  # and through grain's iteration, resumed at the first recorded step
  it = p.batches(start_step=steps[1])
  got = [_digest(next(it)) for _ in range(steps[2] - steps[1] + 1)]
  it.close()
  assert got[0] == RECORDED[name][1] and got[-1] == RECORDED[name][2]


@pytest.mark.parametrize("name", sorted(_configs()))
@pytest.mark.parametrize("count", [2, 4])
def test_process_rows_concatenate_to_the_global_batch(name, count):
  source, kw, steps = _configs()[name]
  kw = {**kw, "num_shards": math.lcm(kw.get("num_shards", 1), count)}   # each process holds whole devices
  whole = Pipeline(source, **kw)
  parts = [Pipeline(source, **kw, process_index=i, process_count=count) for i in range(count)]
  assert all(q.local_batch_size * count == whole.batch_size for q in parts)
  for s in steps:
    local = [q.batch(s) for q in parts]
    joined = {k: np.concatenate([b[k] for b in local]) for k in local[0]}
    _equal(joined, whole.batch(s))


class RecordingSource(ArraySource):
  """Records every index array get_batch is called with."""

  def __init__(self, n=60, classes=5):
    rng = np.random.default_rng(0)
    super().__init__(rng.integers(0, 256, (n, 5, 5, 3), dtype=np.uint8), np.arange(n) % classes, classes,
                     name="recording")
    self.calls = []

  def get_batch(self, indices):
    self.calls.append(np.array(indices))
    return super().get_batch(indices)


@pytest.mark.parametrize("sampler", ["random", "balanced"])
def test_a_process_reads_only_its_own_rows(sampler):
  count, bsz = 4, 12
  src = RecordingSource()
  whole = Pipeline(src, batch_size=bsz, seed=5, sampler=sampler, second_batch=True, augment=("crop:1",),
                   num_shards=4)
  expected = {s: [sm.batch(s) for sm in whole._samplers] for s in range(7)}
  for i in range(count):
    src.calls.clear()
    q = Pipeline(src, batch_size=bsz, seed=5, sampler=sampler, second_batch=True, augment=("crop:1",),
                 num_shards=4, process_index=i, process_count=count)
    for s in range(7):
      q.batch(s)
    own = [e[i * 3:(i + 1) * 3] for s in range(7) for e in expected[s]]
    assert len(src.calls) == len(own)
    for call, want in zip(src.calls, own):
      np.testing.assert_array_equal(call, want)


def test_eval_process_reads_only_its_own_rows_and_masks_its_padding():
  src = RecordingSource(n=22)
  count, bsz = 4, 8                       # 3 batches: 8, 8, 6 real rows
  whole = Pipeline(src, batch_size=bsz, train=False, num_shards=4)
  masks = []
  for i in range(count):
    src.calls.clear()
    q = Pipeline(src, batch_size=bsz, train=False, num_shards=4, process_index=i, process_count=count)
    batches = list(q.batches())
    assert len(batches) == 3 and all(b["image"].shape == (2, 5, 5, 3) for b in batches)
    masks.append(batches[-1]["mask"])
    for call in src.calls:
      rows = call % bsz
      assert np.all((rows >= 2 * i) & (rows < 2 * i + 2)), (i, call)
  # the last batch: rows 0-5 real, 6-7 padding -> process 3 holds padding only and reads nothing for it
  np.testing.assert_array_equal(np.concatenate(masks), [1, 1, 1, 1, 1, 1, 0, 0])
  assert whole.batch(2)["mask"].sum() == 6


@pytest.mark.parametrize("train", [True, False])
def test_workers_give_the_same_stream(train):
  src = SyntheticSource("train", num_examples=96, image_shape=(6, 6, 3), num_classes=4)
  kw = dict(batch_size=16, seed=2, train=train, num_shards=2, process_index=1, process_count=2)
  if train:
    kw.update(augment=("crop:2", "flip", "rotate:10"), sampler="balanced", second_batch=True)
  ref = Pipeline(src, **kw)
  start, n = (3, 9) if train else (1, 5)
  expected = [ref.batch(s) for s in range(start, start + n)]
  for workers in (0, 2):
    it = Pipeline(src, **kw, num_workers=workers).batches(start_step=start)
    got = [next(it) for _ in range(n)] if train else list(it)
    if train:
      it.close()
    assert len(got) == n
    for a, b in zip(got, expected):
      _equal(a, b)


def test_process_arguments_are_checked():
  src = FuzzyRGB("test")
  with pytest.raises(ValueError, match="process_index"):
    Pipeline(src, batch_size=16, process_index=2, process_count=2, num_shards=2)
  with pytest.raises(ValueError, match="multiple of process_count"):
    Pipeline(src, batch_size=16, process_count=2, num_shards=1)
  with pytest.raises(ValueError, match="num_workers"):
    Pipeline(src, batch_size=16, num_workers=-1)
  p = Pipeline(src, batch_size=16, process_index=1, process_count=2, num_shards=8)
  assert p.rows == slice(8, 16) and p.batch(0)["image"].shape == (8, 32, 32, 3)


def test_fashion_mnist_batches_unchanged(tmp_path, shared_data_dir):
  kw = dict(data_dir=tmp_path / "tfds", manual_dir=shared_data_dir / "fashion_mnist")
  train, test = load_source("fashion_mnist", "train", **kw), load_source("fashion_mnist", "test", **kw)
  p = Pipeline(train, batch_size=256, seed=0, augment=("crop:4", "flip", "rotate:15"), sampler="balanced",
               min_per_class=25, second_batch=True, num_shards=8)
  assert [_digest(p.batch(s)) for s in (0, 234, 100000)] == RECORDED["fm/balanced"]
  halves = [Pipeline(train, batch_size=256, seed=0, augment=("crop:4", "flip", "rotate:15"), sampler="balanced",
                     min_per_class=25, second_batch=True, num_shards=8, process_index=i, process_count=2)
            for i in range(2)]
  joined = [h.batch(234) for h in halves]
  assert _digest({k: np.concatenate([b[k] for b in joined]) for k in joined[0]}) == RECORDED["fm/balanced"][1]
  p = Pipeline(train, batch_size=256, seed=0, augment=("crop:4", "flip"))
  assert [_digest(p.batch(s)) for s in (0, 235)] == RECORDED["fm/random"]
  p = Pipeline(test, batch_size=384, train=False, num_shards=8)
  assert [_digest(p.batch(s)) for s in (0, p.steps_per_epoch - 1)] == RECORDED["fm/eval"]


def test_sources_pickle_and_tfds_source_feeds_workers(tmp_path):
  import cloudpickle

  from disc_jax.data import ClassSubsetSource, TfdsSource, offline, prepare_offline
  from tests.data.test_offline import _checksums, _tiny

  _tiny("mnist", tmp_path / "orig", n_train=40, n_test=3)
  prepare_offline("mnist", tmp_path / "orig", tmp_path / "tfds", checksums=_checksums(tmp_path / "orig"))
  lazy = TfdsSource(offline.offline_name("mnist"), "train", data_dir=tmp_path / "tfds", in_memory=False, name="mnist")
  sources = [FuzzyRGB("test"), SyntheticSource("train", num_examples=40), lazy,
             ClassSubsetSource(SyntheticSource("train", num_examples=40), [1, 3, 4])]
  idx = np.array([5, 0, 2])
  for src in sources:
    copy = cloudpickle.loads(cloudpickle.dumps(src))
    _equal(copy.get_batch(idx), src.get_batch(idx))
  kw = dict(batch_size=8, seed=1, augment=("crop:2", "rotate:10"), num_shards=2, process_index=1, process_count=2)
  expected = [Pipeline(lazy, **kw).batch(s) for s in range(2, 8)]
  it = Pipeline(lazy, **kw, num_workers=2).batches(start_step=2)
  got = [next(it) for _ in range(6)]
  it.close()
  for a, b in zip(got, expected):
    _equal(a, b)
