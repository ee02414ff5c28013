"""The drop-in contract every public loss of ``disc_jax.losses`` keeps, one test per property.

For every loss (the ``CASES`` table below):

* ``where=m`` equals slicing the batch (``x[m]``), in value and gradient, eagerly and
  under ``jit``, and a new mask does not retrace;
* ``reduction="none"`` (per-example losses) gives [B] with 0 at masked rows and the
  default as the mean of the selected rows; an unknown ``reduction`` is a ValueError;
* an all-False mask and an empty batch give 0 with a zero, finite gradient;
* NaN or inf in a selected row gives NaN, in a masked row nothing;
* an out-of-range label under ``jit`` gives NaN;
* inside ``jax.shard_map`` over 8 devices, each with its own mask, the per-device call
  equals the global masked call (value and gradient), and ``jax.pmap`` agrees too.

The per-loss modules test the values against NumPy transcriptions of the papers.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.sharding import PartitionSpec as P

from disc_jax import losses
from tests.helpers import AXIS, NUM_DEVICES

C = 4   # classes
D = 4   # feature width
B = 16  # rows of the first batch (2 per device)
B2 = 8  # rows of the second batch (1 per device)


@dataclasses.dataclass(frozen=True)
class Case:
  """One loss, called as ``fn(inputs, **kw)`` on a dict of named arrays."""

  fn: Callable[..., jax.Array]
  make: Callable[[np.random.Generator, int, int], dict]
  rows: tuple[str, ...]                 # inputs split along the first batch
  rows2: tuple[str, ...] = ()           # inputs split along the second batch
  grad: tuple[str, ...] = ("features",)  # inputs differentiated
  nan_key: str = "features"             # the features poisoned with NaN / inf
  label_key: str | None = "labels"      # labels with a range [0, C), or None
  per_example: bool = True              # has reduction="none"
  random: bool = False                  # draws per-row noise: where != slicing
  mean_rows: Callable[[dict, np.ndarray], np.ndarray] | None = None  # rows the mean runs over

  @property
  def two_batch(self) -> bool:
    return bool(self.rows2)


def _head(rng, b, _):
  return dict(features=rng.normal(size=(b, D)), labels=rng.integers(0, C, b).astype(np.int32),
              kernel=rng.normal(size=(D, C)), bias=0.3 * rng.normal(size=C))


def _centers(rng, b, _):
  return dict(features=rng.normal(size=(b, D)), labels=rng.integers(0, C, b).astype(np.int32),
              centers=rng.normal(size=(C, D)))


def _sigma2r(rng, b, _):
  return dict(_centers(rng, b, _), growth=rng.normal(size=C))


def _acts(rng, b, _):
  acts = rng.uniform(0.0, 2.0, (b, 2, 2, D)) * (rng.uniform(size=(b, 2, 2, D)) > 0.3)
  return dict(activations=acts, labels=rng.integers(0, C, b).astype(np.int32))


def _pair(rng, b, b2):
  return dict(features_1=rng.normal(size=(b, D)),
              labels_1=rng.integers(0, C, b).astype(np.int32),
              features_2=rng.normal(size=(b2, D)) * 1.3 + 0.4,
              labels_2=rng.integers(0, C, b2).astype(np.int32))


def _snnl_rows(a, mask):
  """SNNL averages over the selected rows that have a selected same-class partner."""
  labels = np.asarray(a["labels"])
  same = (labels[:, None] == labels[None, :]) & mask[None, :] & ~np.eye(len(labels), dtype=bool)
  return mask & same.any(axis=1)


KEY = jax.random.key(3)
CASES = {
    "center_loss": Case(lambda a, **k: losses.center_loss(a["features"], a["labels"],
                                                          a["centers"], **k),
                        _centers, rows=("features", "labels"), grad=("features", "centers")),
    "intra_class_variance_loss": Case(
        lambda a, **k: losses.intra_class_variance_loss(a["features"], a["labels"],
                                                        a["centers"], **k),
        _centers, rows=("features", "labels"), grad=("features", "centers")),
    "sigma2r_loss": Case(
        lambda a, **k: losses.sigma2r_loss(a["features"], a["labels"], a["centers"],
                                           a["growth"], n_neighbors=2, z=3.0, epsilon=0.1, **k),
        _sigma2r, rows=("features", "labels"), grad=("features", "centers", "growth")),
    "sigma2r_loss[vector_std]": Case(
        lambda a, **k: losses.sigma2r_loss(a["features"], a["labels"], a["centers"],
                                           a["growth"], n_neighbors=3, spread="vector_std", **k),
        _sigma2r, rows=("features", "labels"), grad=("features", "centers", "growth")),
    "sigma2r_loss[rms_distance]": Case(
        lambda a, **k: losses.sigma2r_loss(a["features"], a["labels"], a["centers"],
                                           a["growth"], n_neighbors=3, spread="rms_distance",
                                           **k),
        _sigma2r, rows=("features", "labels"), grad=("features", "centers", "growth")),
    "soft_nearest_neighbor_loss": Case(
        lambda a, **k: losses.soft_nearest_neighbor_loss(a["features"], a["labels"],
                                                         temperature=0.7, **k),
        _centers, rows=("features", "labels"), label_key=None, mean_rows=_snnl_rows),
    "gini_loss": Case(lambda a, **k: losses.gini_loss(a["activations"], a["labels"], C, **k),
                      _acts, rows=("activations", "labels"), grad=("activations",),
                      nan_key="activations", per_example=False),
    "kl_loss": Case(lambda a, **k: losses.kl_loss(a["activations"], a["labels"], C, **k),
                    _acts, rows=("activations", "labels"), grad=("activations",),
                    nan_key="activations", per_example=False),
    "kl_loss[channels||labels]": Case(
        lambda a, **k: losses.kl_loss(a["activations"], a["labels"], C,
                                      direction="channels||labels", **k),
        _acts, rows=("activations", "labels"), grad=("activations",), nan_key="activations",
        per_example=False),
    "group_softmax_loss": Case(
        lambda a, **k: losses.group_softmax_loss(a["features"], a["labels"], a["kernel"],
                                                 a["bias"], groups=(1, 2, 4), **k),
        _head, rows=("features", "labels"), grad=("features", "kernel", "bias")),
    "itra_loss": Case(
        lambda a, **k: losses.itra_loss(a["features_1"], a["labels_1"], a["features_2"],
                                        a["labels_2"], C, **k),
        _pair, rows=("features_1", "labels_1"), rows2=("features_2", "labels_2"),
        grad=("features_1", "features_2"), nan_key="features_1", label_key="labels_2",
        per_example=False),
    "itra_loss_eq3": Case(
        lambda a, **k: losses.itra_loss(a["features_1"], a["labels_1"], a["features_2"],
                                        a["labels_2"], C, class_conditional=False, sigma=2.0,
                                        **k),
        _pair, rows=("features_1", "labels_1"), rows2=("features_2", "labels_2"),
        grad=("features_1", "features_2"), nan_key="features_2", label_key=None,
        per_example=False),
    "mmd": Case(lambda a, **k: losses.mmd(a["features_1"], a["features_2"], **k),
                _pair, rows=("features_1",), rows2=("features_2",),
                grad=("features_1", "features_2"), nan_key="features_2", label_key=None,
                per_example=False),
    "l_softmax_loss": Case(
        lambda a, **k: losses.l_softmax_loss(a["features"], a["labels"], a["kernel"],
                                             a["bias"], margin=2, lam=0.5, **k),
        _head, rows=("features", "labels"), grad=("features", "kernel", "bias")),
    "sigsoftmax_loss": Case(
        lambda a, **k: losses.sigsoftmax_loss(a["features"], a["labels"], a["kernel"],
                                              a["bias"], **k),
        _head, rows=("features", "labels"), grad=("features", "kernel", "bias")),
    "noisy_softmax_loss": Case(
        lambda a, random=True, **k: losses.noisy_softmax_loss(
            a["features"], a["labels"], a["kernel"], a["bias"], rng=KEY,
            alpha=0.3 if random else 0.0, **k),
        _head, rows=("features", "labels"), grad=("features", "kernel", "bias"), random=True),
    "virtual_softmax_loss": Case(
        lambda a, **k: losses.virtual_softmax_loss(a["features"], a["labels"], a["kernel"],
                                                   a["bias"], **k),
        _head, rows=("features", "labels"), grad=("features", "kernel", "bias")),
    "feature_dropout_loss": Case(
        lambda a, random=True, **k: losses.feature_dropout_loss(
            a["features"], a["labels"], a["kernel"], a["bias"], rate=0.5 if random else 0.0,
            rng=KEY, **k),
        _head, rows=("features", "labels"), grad=("features", "kernel", "bias"), random=True),
    "adversarial_dropout_loss": Case(
        lambda a, **k: losses.adversarial_dropout_loss(a["features"], a["labels"], a["kernel"],
                                                       a["bias"], delta=0.25, weight=0.7, **k),
        _head, rows=("features", "labels"), grad=("features", "kernel", "bias")),
}
NAMES = sorted(CASES)
PER_EXAMPLE = [n for n in NAMES if CASES[n].per_example]


# ---------------------------------------------------------------- helpers
def inputs(case: Case, seed: int = 0, b: int = B, b2: int = B2) -> dict:
  return case.make(np.random.default_rng(seed), b, b2)


def masks(seed: int = 1, b: int = B, b2: int = B2) -> tuple[np.ndarray, np.ndarray]:
  """Masks with about 2/3 of the rows selected; device 3's rows (6, 7) both masked."""
  rng = np.random.default_rng(seed)
  m1, m2 = rng.uniform(size=b) < 0.67, rng.uniform(size=b2) < 0.67
  if b == B:
    m1[6:8] = False
    m1[:2] = True
  m2[:2] = True
  return m1, m2


def mask_kwargs(case: Case, m1, m2) -> dict:
  if case.two_batch:
    return dict(where_1=m1, where_2=m2)
  return dict(where=m1)


def sliced(case: Case, a: dict, m1, m2) -> dict:
  out = dict(a)
  for k in case.rows:
    out[k] = np.asarray(a[k])[m1]
  for k in case.rows2:
    out[k] = np.asarray(a[k])[m2]
  return out


def call(case: Case, a: dict, *, deterministic: bool = False, **kw):
  """The loss; ``deterministic`` turns a random loss's noise off (alpha = 0, rate = 0)."""
  if case.random and deterministic:
    return case.fn(a, random=False, **kw)
  return case.fn(a, **kw)


def grads(case: Case, a: dict, **kw) -> dict:
  """Gradients with respect to ``case.grad`` of the loss at ``a``."""
  def f(diff):
    return call(case, dict(a, **diff), **kw)
  return jax.grad(f)({k: jnp.asarray(a[k]) for k in case.grad})


def scatter_back(case: Case, g_sub: dict, a: dict, m1, m2) -> dict:
  """Gradients of the sliced call placed at the selected rows (0 at masked rows)."""
  out = {}
  for k, g in g_sub.items():
    if k in case.rows or k in case.rows2:
      m = m1 if k in case.rows else m2
      full = np.zeros(np.shape(a[k]))
      full[m] = np.asarray(g)
      out[k] = full
    else:
      out[k] = np.asarray(g)
  return out


# ---------------------------------------------------------------- where = slicing
class WhereEqualsSlicingTest(chex.TestCase):
  """``loss(x, where=m) == loss(x[m])`` in float64, with and without ``jit``."""

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(*[(re.sub(r"\W", "_", n), n) for n in NAMES])
  def test_value(self, name):
    case = CASES[name]
    with jax.enable_x64(True):
      a = inputs(case)
      m1, m2 = masks()
      fn = self.variant(lambda a, m1, m2: call(case, a, deterministic=True,
                                               **mask_kwargs(case, m1, m2)))
      got = fn(a, m1, m2)
      want = call(case, sliced(case, a, m1, m2), deterministic=True)
      chex.assert_shape(got, ())
      chex.assert_trees_all_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_where_gradient_equals_slicing(x64, name):
  case = CASES[name]
  a = inputs(case)
  m1, m2 = masks()
  got = grads(case, a, deterministic=True, **mask_kwargs(case, m1, m2))
  want = scatter_back(case, grads(case, sliced(case, a, m1, m2), deterministic=True), a, m1, m2)
  chex.assert_trees_all_close({k: np.asarray(v) for k, v in got.items()}, want,
                              rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].random])
def test_random_losses_mask_without_changing_the_other_rows_draws(x64, name):
  # With noise the rows' draws depend on their position, so compare with the
  # per-example values of the unmasked call (same key, same shapes).
  case = CASES[name]
  a = inputs(case)
  m1, _ = masks()
  per_row = np.asarray(call(case, a, reduction="none"))
  got = call(case, a, where=m1)
  chex.assert_trees_all_close(got, per_row[m1].mean(), rtol=1e-10)


@pytest.mark.parametrize("name", ["center_loss", "itra_loss", "group_softmax_loss"])
def test_new_masks_do_not_retrace(name):
  case = CASES[name]
  chex.clear_trace_counter()
  fn = jax.jit(chex.assert_max_traces(
      lambda a, kw: call(case, a, deterministic=True, **kw), n=1))
  a = {k: (v.astype(np.float32) if v.dtype == np.float64 else v)
       for k, v in inputs(case).items()}
  for seed in range(3):
    m1, m2 = masks(seed)
    assert np.isfinite(float(fn(a, mask_kwargs(case, m1, m2))))


# ---------------------------------------------------------------- reduction
@pytest.mark.parametrize("name", PER_EXAMPLE)
def test_reduction_none_is_per_example(x64, name):
  case = CASES[name]
  a = inputs(case)
  m1, _ = masks()
  per_row = call(case, a, where=m1, reduction="none")
  chex.assert_shape(per_row, (B,))
  np.testing.assert_array_equal(np.asarray(per_row)[~m1], 0.0)
  rows = case.mean_rows(a, m1) if case.mean_rows else m1
  chex.assert_trees_all_close(np.asarray(per_row)[rows].sum() / max(rows.sum(), 1),
                              call(case, a, where=m1), rtol=1e-10, atol=1e-12)
  unmasked = call(case, a, reduction="none")
  chex.assert_shape(unmasked, (B,))


@pytest.mark.parametrize("name", PER_EXAMPLE)
def test_unknown_reduction_raises(name):
  case = CASES[name]
  with pytest.raises(ValueError, match="`reduction` must be one of \\('mean', 'none'\\)"):
    call(case, inputs(case, b=4, b2=4), reduction="sum")


@pytest.mark.parametrize("name", [n for n in NAMES if not CASES[n].per_example])
def test_batch_level_losses_have_no_reduction(name):
  case = CASES[name]
  with pytest.raises(TypeError):
    call(case, inputs(case, b=4, b2=4), reduction="none")


@pytest.mark.parametrize("name", NAMES)
def test_bad_mask_raises(name):
  case = CASES[name]
  a = inputs(case, b=4, b2=4)
  arg = "where_1" if case.two_batch else "where"
  with pytest.raises(ValueError, match=f"`{arg}` must be a bool array"):
    call(case, a, **{arg: np.ones(4, np.int32)})
  with pytest.raises(ValueError, match=f"`{arg}` must have shape"):
    call(case, a, **{arg: np.ones(5, bool)})


# ---------------------------------------------------------------- nothing to average
def _assert_zero_with_zero_grad(case, a, **kw):
  value = call(case, a, **kw)
  assert float(value) == 0.0
  for g in jax.tree.leaves(grads(case, a, **kw)):
    assert np.all(np.asarray(g) == 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_all_false_mask_gives_zero_and_zero_gradient(x64, name):
  case = CASES[name]
  a = inputs(case)
  none1, none2 = np.zeros(B, bool), np.zeros(B2, bool)
  _assert_zero_with_zero_grad(case, a, **mask_kwargs(case, none1, none2))
  if case.two_batch:  # one batch fully masked: nothing to compare either
    _assert_zero_with_zero_grad(case, a, **mask_kwargs(case, masks()[0], none2))
  if case.per_example:
    np.testing.assert_array_equal(
        np.asarray(call(case, a, reduction="none", where=none1)), 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_zero(x64, name):
  case = CASES[name]
  _assert_zero_with_zero_grad(case, inputs(case, b=0, b2=0))
  if case.two_batch:
    _assert_zero_with_zero_grad(case, inputs(case, b=5, b2=0))
  if case.per_example:
    chex.assert_shape(call(case, inputs(case, b=0), reduction="none"), (0,))


# ---------------------------------------------------------------- NaN in, NaN out
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", NAMES)
def test_non_finite_input_gives_nan(name, bad):
  case = CASES[name]
  a = inputs(case)
  m1, m2 = masks()
  x = np.array(a[case.nan_key], np.float32)
  x[1].flat[0] = bad   # row 1 is selected in both masks
  a[case.nan_key] = x
  assert np.isnan(float(call(case, a)))
  assert np.isnan(float(call(case, a, **mask_kwargs(case, m1, m2))))


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_masked_row_is_ignored(x64, name):
  case = CASES[name]
  a = inputs(case)
  m1, m2 = masks()
  masked_row = int(np.flatnonzero(~(m1 if case.nan_key in case.rows else m2))[0])
  poisoned = dict(a)
  x = np.array(a[case.nan_key])
  x[masked_row] = np.nan
  poisoned[case.nan_key] = x
  kw = mask_kwargs(case, m1, m2)
  chex.assert_trees_all_close(call(case, poisoned, deterministic=True, **kw),
                              call(case, a, deterministic=True, **kw), rtol=1e-12)
  for g in jax.tree.leaves(grads(case, poisoned, deterministic=True, **kw)):
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("bad_label", [C, -1])
@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].label_key])
def test_out_of_range_label_under_jit_gives_nan(name, bad_label):
  case = CASES[name]
  a = inputs(case)
  labels = np.array(a[case.label_key])
  labels[0] = bad_label
  a[case.label_key] = labels
  assert np.isnan(float(jax.jit(functools.partial(call, case))(a)))
  with pytest.raises(ValueError, match="must lie in"):  # concrete labels are checked
    call(case, a)
  # ... but not at a masked row (padding may hold any label).
  m1, m2 = masks()
  m = m1 if case.label_key in case.rows else m2
  m = m.copy()
  m[0] = False
  kw = dict(where_1=m1, where_2=m) if case.label_key in case.rows2 else (
      dict(where_1=m, where_2=m2) if case.two_batch else dict(where=m))
  assert np.isfinite(float(call(case, a, **kw)))


# ---------------------------------------------------------------- data parallel
def _device_masks():
  """One mask per device, all different: device 3 selects none of its rows."""
  return masks(7)


@pytest.mark.parametrize("name", NAMES)
def test_shard_map_equals_global_masked_batch(x64, name, mesh):
  case = CASES[name]
  a = inputs(case, seed=21)
  m1, m2 = _device_masks()
  keys = sorted(a)
  split = set(case.rows) | set(case.rows2)

  def local(arrays, m1, m2):
    return call(case, dict(zip(keys, arrays)), deterministic=True, axis_name=AXIS,
                **mask_kwargs(case, m1, m2))

  specs = ([P(AXIS) if k in split else P() for k in keys], P(AXIS), P(AXIS))
  sharded = jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=P())
  arrays = [jnp.asarray(a[k]) for k in keys]
  diff = [i for i, k in enumerate(keys) if k in case.grad]

  def value(fn):
    def f(*d):
      full = list(arrays)
      for i, v in zip(diff, d):
        full[i] = v
      return fn(full)
    return jax.jit(jax.value_and_grad(f, argnums=tuple(range(len(diff)))))

  v_shard, g_shard = value(lambda full: sharded(full, m1, m2))(*(arrays[i] for i in diff))
  v_glob, g_glob = value(lambda full: call(case, dict(zip(keys, full)), deterministic=True,
                                           **mask_kwargs(case, m1, m2)))(
                                               *(arrays[i] for i in diff))
  chex.assert_trees_all_close(v_shard, v_glob, rtol=1e-10, atol=1e-12)
  chex.assert_trees_all_close(g_shard, g_glob, rtol=1e-8, atol=1e-10)
  # ... which is the loss of the sliced global batch.
  chex.assert_trees_all_close(
      v_shard, call(case, sliced(case, a, m1, m2), deterministic=True), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_pmap_equals_global_masked_batch(name):
  case = CASES[name]
  a = {k: (v.astype(np.float32) if v.dtype == np.float64 else v)
       for k, v in inputs(case, seed=22).items()}
  m1, m2 = _device_masks()
  keys = sorted(a)
  split = set(case.rows) | set(case.rows2)

  def per_device(x):
    return x.reshape((NUM_DEVICES, -1) + x.shape[1:])

  def local(arrays, m1, m2):
    return call(case, dict(zip(keys, arrays)), deterministic=True, axis_name=AXIS,
                **mask_kwargs(case, m1, m2))

  in_axes = ([0 if k in split else None for k in keys], 0, 0)
  out = jax.pmap(local, axis_name=AXIS, in_axes=in_axes)(
      [per_device(a[k]) if k in split else a[k] for k in keys], per_device(m1),
      per_device(m2))
  want = call(case, a, deterministic=True, **mask_kwargs(case, m1, m2))
  np.testing.assert_allclose(np.asarray(out), np.full(NUM_DEVICES, float(want)), rtol=2e-5,
                             atol=1e-6)


# ------------------------------------------------ learned parameters and traced hyperparameters
LEARNED = [("center_loss", "centers"), ("intra_class_variance_loss", "centers"),
           ("sigma2r_loss", "centers"), ("sigma2r_loss", "growth")]


@pytest.mark.parametrize("bad", [np.inf, -np.inf], ids=["inf", "-inf"])
@pytest.mark.parametrize("name, key", LEARNED)
def test_an_infinite_learned_parameter_gives_nan(name, key, bad):
  case = CASES[name]
  a = inputs(case)
  p = np.array(a[key], np.float32)
  p.flat[0] = bad                    # class 0's center (or growth rate); class 0 is present
  a[key] = p
  assert 0 in np.asarray(a["labels"])
  assert np.isnan(float(call(case, a)))
  assert np.isnan(float(jax.jit(lambda a: call(case, a))(a)))


HYPER = {  # loss called with one hyperparameter v: (fn(a, v), case, a valid v, invalid v's)
    "soft_nearest_neighbor_loss": (lambda a, v: losses.soft_nearest_neighbor_loss(
        a["features"], a["labels"], temperature=v), 0.7, (-0.7, 0.0, np.inf)),
    "mmd": (lambda a, v: losses.mmd(a["features_1"], a["features_2"], sigma=v),
            2.0, (-2.0, 0.0, np.nan)),
    "itra_loss": (lambda a, v: losses.itra_loss(a["features_1"], a["labels_1"],
                                                a["features_2"], a["labels_2"], C, sigma=v),
                  2.0, (-2.0, 0.0, np.inf)),
    "l_softmax_loss": (lambda a, v: losses.l_softmax_loss(
        a["features"], a["labels"], a["kernel"], a["bias"], margin=2, lam=v), 0.5,
                       (-0.5, np.nan)),
    "noisy_softmax_loss": (lambda a, v: losses.noisy_softmax_loss(
        a["features"], a["labels"], a["kernel"], a["bias"], rng=KEY, alpha=v), 0.3,
                           (-0.3, np.inf)),
    "adversarial_dropout_loss": (lambda a, v: losses.adversarial_dropout_loss(
        a["features"], a["labels"], a["kernel"], a["bias"], delta=0.25, weight=v), 0.7,
                                 (-0.7, np.nan)),
}


@pytest.mark.parametrize("name", sorted(HYPER))
def test_a_traced_hyperparameter_out_of_range_gives_nan(name):
  fn, valid, invalid = HYPER[name]
  a = inputs(CASES[name])
  traced = jax.jit(fn)
  # A valid traced value gives the concrete call's value; concrete values add no guard.
  chex.assert_trees_all_close(traced(a, jnp.float32(valid)), fn(a, valid), rtol=1e-6)
  for v in invalid:
    assert np.isnan(float(traced(a, jnp.float32(v)))), v
    with pytest.raises(ValueError):
      fn(a, v)
