"""Tests of mmd / itra_loss against float64 NumPy transcriptions of ITRA eq. 3 and 5."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from disc_jax.losses import _pairwise
from disc_jax.losses import itra_loss, mmd
from tests.helpers import FRESH_SEED

SEEDS = [0, 1, FRESH_SEED]
NUM_CLASSES = 5

mmd_jit = jax.jit(mmd)
itra_jit = jax.jit(itra_loss, static_argnames=("num_classes", "class_conditional"))


# ---------------------------------------------------------------- reference
def ref_sq_dist(a, b) -> float:
  return float(sum((float(u) - float(v)) ** 2 for u, v in zip(a, b)))


def ref_pair_dists(z) -> list[float]:
  """Squared distances of all pairs i < j of distinct points (by index)."""
  return [ref_sq_dist(z[i], z[j]) for i in range(len(z)) for j in range(i + 1, len(z))]


def ref_sigma(z) -> float:
  """Median of the pairwise squared distances; mean, then 1, if it is 0."""
  pairs = np.array(ref_pair_dists(z), np.float64)
  median = float(np.median(pairs))
  if median > 0:
    return median
  return float(pairs.mean()) if pairs.mean() > 0 else 1.0


def ref_mmd(x, y, sigma) -> float:
  """The "Preliminary" formula with loops: [Kxx/n^2 + Kyy/m^2 - 2 Kxy/(nm)]^(1/2)."""
  k = lambda a, b: np.exp(-ref_sq_dist(a, b) / sigma)  # noqa: E731
  n, m = len(x), len(y)
  kxx = sum(k(a, b) for a in x for b in x) / n**2
  kyy = sum(k(a, b) for a in y for b in y) / m**2
  kxy = sum(k(a, b) for a in x for b in y) / (n * m)
  return float(np.sqrt(max(kxx + kyy - 2 * kxy, 0.0)))


def ref_itra(f1, l1, f2, l2, num_classes, class_conditional=True, sigma=None) -> float:
  f1, f2 = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
  if sigma is None:
    sigma = ref_sigma(np.concatenate([f1, f2]))
  if not class_conditional:
    return ref_mmd(f1, f2, sigma)
  per_class = [ref_mmd(f1[l1 == k], f2[l2 == k], sigma) for k in range(num_classes)
               if np.any(l1 == k) and np.any(l2 == k)]
  return float(np.mean(per_class)) if per_class else 0.0


def random_pair(seed, n=10, m=8, dim=4, present=(0, 1, 3, 4)):
  """Two batches; class 2 absent, classes drawn so some appear in one batch only."""
  rng = np.random.default_rng(seed)
  f1 = rng.normal(size=(n, dim))
  f2 = rng.normal(size=(m, dim)) * 1.3 + 0.4
  l1 = rng.choice(present, n).astype(np.int32)
  l2 = rng.choice(present[:3], m).astype(np.int32)
  return f1, l1, f2, l2


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n, m, dim", [(9, 7, 3), (12, 12, 5)])
@pytest.mark.parametrize("sigma", [None, 2.5])
def test_mmd_matches_reference(x64, seed, n, m, dim, sigma):
  rng = np.random.default_rng(seed)
  x, y = rng.normal(size=(n, dim)), rng.normal(size=(m, dim)) + 0.3
  got = mmd_jit(x, y, sigma=sigma)
  assert got.dtype == jnp.float64
  expected = ref_mmd(x, y, ref_sigma(np.concatenate([x, y])) if sigma is None else sigma)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("class_conditional", [True, False])
@pytest.mark.parametrize("sigma", [None, 3.0])
def test_itra_matches_reference(x64, seed, class_conditional, sigma):
  f1, l1, f2, l2 = random_pair(seed)
  got = itra_jit(f1, l1, f2, l2, num_classes=NUM_CLASSES,
                 class_conditional=class_conditional, sigma=sigma)
  expected = ref_itra(f1, l1, f2, l2, NUM_CLASSES, class_conditional, sigma)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_float32_close_to_reference():
  f1, l1, f2, l2 = random_pair(7)
  got = itra_jit(f1.astype(np.float32), l1, f2.astype(np.float32), l2, num_classes=NUM_CLASSES)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), ref_itra(f1, l1, f2, l2, NUM_CLASSES), rtol=1e-4)


def test_bfloat16_input_computed_in_float32():
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.normal(size=(6, 3)), jnp.bfloat16)
  y = jnp.asarray(rng.normal(size=(5, 3)) + 1, jnp.bfloat16)
  got = mmd_jit(x, y)
  assert got.dtype == jnp.float32
  xr, yr = (np.asarray(a.astype(jnp.float32), np.float64) for a in (x, y))
  np.testing.assert_allclose(float(got), ref_mmd(xr, yr, ref_sigma(np.concatenate([xr, yr]))),
                             rtol=1e-4)


@pytest.fixture
def small_blocks(monkeypatch):
  """Tiny row blocks, forcing the lax.map path (compiled functions are re-traced)."""
  jax.clear_caches()
  monkeypatch.setattr(_pairwise, "_BLOCK_ELEMS", 64)
  yield
  monkeypatch.undo()
  jax.clear_caches()


@pytest.mark.parametrize("n, m, block", [(9, 5, 4)])  # 3 blocks of 4 + a remainder of 2
def test_blocked_rows_match_reference(x64, small_blocks, n, m, block):
  assert _pairwise._block_size(n + m, n + m) == block
  f1, l1, f2, l2 = random_pair(n + m, n=n, m=m, dim=3)
  got = itra_loss(f1, l1, f2, l2, NUM_CLASSES)
  np.testing.assert_allclose(float(got), ref_itra(f1, l1, f2, l2, NUM_CLASSES), rtol=1e-5)
  fn = lambda a, b: itra_loss(a, l1, b, l2, NUM_CLASSES, sigma=2.0)  # noqa: E731
  check_grads(fn, (f1, f2), order=1, modes=("rev",))


# ---------------------------------------------------------------- the bandwidth
@pytest.mark.parametrize("num_points", [5, 6, 9])  # 10, 15, 36 distinct pairs
@pytest.mark.parametrize("seed", SEEDS)
def test_median_off_diagonal_is_numpy_median(x64, num_points, seed):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 4, (num_points, num_points)).astype(np.float64)  # many ties
  d = (a + a.T) * rng.choice([1.0, 0.5], (1, 1))
  d[0, 1] = d[1, 0] = -1e-9  # rounding below 0 counts as 0
  np.fill_diagonal(d, rng.normal(size=num_points) * 1e-3)  # the diagonal is ignored
  pairs = np.clip(d[np.triu_indices(num_points, 1)], 0, None)
  got = _pairwise.median_off_diagonal(jnp.asarray(d), jnp.arange(num_points), num_points)
  assert float(got) == float(np.median(pairs))


@pytest.mark.parametrize("seed", SEEDS)
def test_masked_median_is_the_median_of_the_valid_points(x64, seed):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(9, 2))
  d = ((z[:, None] - z[None]) ** 2).sum(-1)
  valid = rng.uniform(size=9) < 0.6
  valid[:2] = True
  d[~valid] = np.nan  # masked points never enter a count
  d[:, ~valid] = np.nan
  sub = d[np.ix_(valid, valid)]
  want = np.median(sub[np.triu_indices(int(valid.sum()), 1)])
  got = _pairwise.median_off_diagonal(jnp.asarray(d), jnp.arange(9), 9,
                                      row_valid=jnp.asarray(valid), col_valid=jnp.asarray(valid))
  assert float(got) == float(want)
  one = np.zeros(9, bool)
  one[3] = True  # a single valid point: no pair, 0
  assert float(_pairwise.median_off_diagonal(jnp.asarray(d), jnp.arange(9), 9,
                                             row_valid=jnp.asarray(one),
                                             col_valid=jnp.asarray(one))) == 0.0


def test_median_off_diagonal_float32_exact():
  rng = np.random.default_rng(2)
  z = rng.normal(size=(11, 3)).astype(np.float32)
  d = ((z[:, None] - z[None]) ** 2).sum(-1)
  pairs = d[np.triu_indices(11, 1)]
  got = _pairwise.median_off_diagonal(jnp.asarray(d), jnp.arange(11), 11)
  assert float(got) == float(np.median(pairs))  # 55 pairs: the middle one, exactly


def test_default_sigma_is_the_median_and_not_differentiated(x64):
  f1, l1, f2, l2 = random_pair(4)
  sigma = ref_sigma(np.concatenate([f1, f2]))
  assert float(itra_loss(f1, l1, f2, l2, NUM_CLASSES)) == pytest.approx(
      float(itra_loss(f1, l1, f2, l2, NUM_CLASSES, sigma=sigma)), rel=1e-12)
  grad_default = jax.grad(itra_loss, argnums=(0, 2))(f1, l1, f2, l2, NUM_CLASSES)
  grad_fixed = jax.grad(itra_loss, argnums=(0, 2))(f1, l1, f2, l2, NUM_CLASSES, sigma=sigma)
  for a, b in zip(grad_default, grad_fixed):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-14)


def test_zero_median_falls_back_to_mean(x64):
  # 5 copies of one point and 1 other: 10 of 15 pairs coincide, median 0.
  x = np.zeros((3, 2))
  y = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 2.0]])
  sigma = ref_sigma(np.concatenate([x, y]))
  assert sigma == pytest.approx(5 * 5 / 15)
  np.testing.assert_allclose(float(mmd(x, y)), ref_mmd(x, y, sigma), rtol=1e-10)


# ---------------------------------------------------------------- closed forms
def test_identical_batches_give_zero(x64):
  f1, l1, _, _ = random_pair(5)
  assert float(mmd(f1, f1)) == pytest.approx(0.0, abs=1e-7)
  for cc in (True, False):
    assert float(itra_loss(f1, l1, f1, l1, NUM_CLASSES, class_conditional=cc)) == (
        pytest.approx(0.0, abs=1e-7))
  grad = jax.grad(mmd, argnums=(0, 1))(f1, f1)
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grad)
  np.testing.assert_allclose(np.asarray(grad[0]), 0.0, atol=1e-6)


def test_far_apart_batches(x64):
  # Kxy -> 0, so MMD^2 = mean Kxx + mean Kyy.
  x = np.array([[0.0, 0.0], [1.0, 0.0]])
  y = x + 100.0
  expected = np.sqrt(2 * (2 + 2 * np.exp(-1.0)) / 4)
  assert float(mmd(x, y, sigma=1.0)) == pytest.approx(expected, rel=1e-12)


def test_eq3_is_mmd_of_the_whole_batches(x64):
  f1, l1, f2, l2 = random_pair(6)
  assert float(itra_loss(f1, l1, f2, l2, NUM_CLASSES, class_conditional=False)) == (
      pytest.approx(float(mmd(f1, f2)), rel=1e-12))


def test_itra_c_averages_only_classes_in_both_batches(x64):
  rng = np.random.default_rng(8)
  f1, f2 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
  l1 = np.array([0, 0, 1, 1, 2, 2], np.int32)   # class 2 only in batch 1
  l2 = np.array([0, 1, 1, 3, 3, 0], np.int32)   # class 3 only in batch 2
  sigma = 1.7
  expected = 0.5 * (ref_mmd(f1[l1 == 0], f2[l2 == 0], sigma)
                    + ref_mmd(f1[l1 == 1], f2[l2 == 1], sigma))
  got = itra_loss(f1, l1, f2, l2, 4, sigma=sigma)
  assert float(got) == pytest.approx(expected, rel=1e-10)
  # A class missing from one batch gets no gradient.
  grad = jax.grad(itra_loss)(f1, l1, f2, l2, 4, sigma=sigma)
  np.testing.assert_array_equal(np.asarray(grad)[l1 == 2], 0.0)


def test_no_common_class_gives_zero(x64):
  f1, f2 = np.ones((3, 2)), np.zeros((3, 2))
  value, grad = jax.value_and_grad(itra_loss)(f1, np.zeros(3, np.int32), f2,
                                              np.ones(3, np.int32), 2)
  assert float(value) == 0.0
  np.testing.assert_array_equal(np.asarray(grad), 0.0)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("seed", [0, 1])
def test_check_grads_mmd(x64, seed):
  rng = np.random.default_rng(seed)
  x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)) + 0.5
  check_grads(functools.partial(mmd, sigma=2.0), (x, y), order=1, modes=("rev",))


@pytest.mark.parametrize("class_conditional", [True, False])
def test_check_grads_itra(x64, class_conditional):
  f1, l1, f2, l2 = random_pair(9, n=6, m=5, dim=3)
  fn = lambda a, b: itra_loss(a, l1, b, l2, NUM_CLASSES,  # noqa: E731
                              class_conditional=class_conditional, sigma=3.0)
  check_grads(fn, (f1, f2), order=1, modes=("rev",))


EDGE_CASES = ["identical_features", "one_sample_of_a_class", "all_samples_one_class",
              "class_in_one_batch_only", "single_samples"]
EDGE_CLASSES = 8  # classes 3-7 are absent in every case


def edge_case(kind):
  rng = np.random.default_rng(5)
  f1, f2 = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
  l1 = np.array([0, 1, 2, 0, 1, 2], np.int32)
  l2 = np.array([2, 1, 0, 0, 1, 2], np.int32)
  if kind == "identical_features":
    f1[:] = f1[0]
    f2[:] = f1[0]
  elif kind == "one_sample_of_a_class":
    l1 = np.array([0, 1, 2, 0, 1, 1], np.int32)
    l2 = np.array([2, 1, 0, 0, 0, 1], np.int32)
  elif kind == "all_samples_one_class":
    l1[:] = 1
    l2[:] = 1
  elif kind == "class_in_one_batch_only":
    l2 = np.array([0, 1, 0, 0, 1, 1], np.int32)
  elif kind == "single_samples":
    f1, l1, f2, l2 = f1[:1], l1[:1], f2[:1], l1[:1]
  return f1, l1, f2, l2


itra_value_and_grad = jax.jit(jax.value_and_grad(itra_loss, argnums=(0, 2)),
                              static_argnames=("num_classes", "class_conditional"))


@pytest.mark.parametrize("kind", EDGE_CASES)
@pytest.mark.parametrize("class_conditional", [True, False])
def test_edge_cases_finite_value_and_gradient(x64, kind, class_conditional):
  f1, l1, f2, l2 = edge_case(kind)
  value, grads = itra_value_and_grad(f1, l1, f2, l2, num_classes=EDGE_CLASSES,
                                     class_conditional=class_conditional)
  assert np.isfinite(float(value))
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
  expected = ref_itra(f1, l1, f2, l2, EDGE_CLASSES, class_conditional)
  np.testing.assert_allclose(float(value), expected, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- jit / sharding
def test_jit_traces_once_per_shape():
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(f1, l1, f2, l2):
    return jax.value_and_grad(itra_loss, argnums=(0, 2))(f1, l1, f2, l2, NUM_CLASSES)

  for seed in range(3):
    f1, l1, f2, l2 = random_pair(seed)
    value, _ = step(f1.astype(np.float32), l1, f2.astype(np.float32), l2)
    assert np.isfinite(float(value))


# ---------------------------------------------------------------- bad input
F, L4 = np.ones((4, 3)), np.zeros(4, np.int32)


@pytest.mark.parametrize("args, kwargs, match", [
    ((F, np.zeros(5, np.int32), F, L4, 2), {}, "`labels_1` has 5 entries"),
    ((F, L4, F, np.zeros(3, np.int32), 2), {}, "`labels_2` has 3 entries"),
    ((F, L4.reshape(4, 1), F, L4, 2), {}, "`labels_1` must have rank 1"),
    ((F, L4.astype(np.float32), F, L4, 2), {}, "`labels_1` must be integer"),
    ((F, L4, F, np.array([0, 1, 2, 1]), 2), {}, "`labels_2` must lie in"),
    ((F.astype(np.int32), L4, F, L4, 2), {}, "`features_1` must be a floating"),
    ((F, L4, np.ones((4, 2)), L4, 2), {}, "same feature size"),
    ((F, L4, F, L4, 0), {}, "`num_classes` must be an integer >= 1"),
    ((F, L4, F, L4, 2), {"sigma": 0.0}, "`sigma` must be > 0"),
    ((F, L4, F, L4, 2), {"sigma": np.inf}, "`sigma` must be > 0 and finite"),
])
def test_itra_bad_input_raises(args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    itra_loss(*args, **kwargs)


@pytest.mark.parametrize("x, y, match", [
    (F, np.ones((4, 2)), "same feature size"),
    (F.astype(np.int32), F, "`x` must be a floating"),
    (F, np.ones(4), "`y` must have rank 2"),
])
def test_mmd_bad_input_raises(x, y, match):
  with pytest.raises(ValueError, match=match):
    mmd(x, y)


# ---------------------------------------------------------------- scale
@pytest.mark.slow
@pytest.mark.parametrize("class_conditional", [True, False])
def test_runs_at_batch_8192_width_2048(class_conditional):
  b, dim = 8192, 2048
  keys = jax.random.split(jax.random.key(0), 4)
  f1 = jax.random.normal(keys[0], (b, dim))
  f2 = jax.random.normal(keys[1], (b, dim))
  l1 = jax.random.randint(keys[2], (b,), 0, 100)
  l2 = jax.random.randint(keys[3], (b,), 0, 100)
  fn = jax.jit(jax.value_and_grad(functools.partial(
      itra_loss, num_classes=100, class_conditional=class_conditional), argnums=(0, 2)))
  compiled = fn.lower(f1, l1, f2, l2).compile()
  # One [2B, 2B] float32 distance matrix (the union) plus O(B D) buffers.
  temp = compiled.memory_analysis().temp_size_in_bytes
  assert temp < (2 * b) ** 2 * 4 + 16 * b * dim * 4
  value, grads = compiled(f1, l1, f2, l2)
  assert np.isfinite(float(value))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
