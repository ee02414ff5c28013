"""Tests of sigma2r_loss against a float64 NumPy transcription of σ²R eq. 8-10 / Algorithm 1."""

from __future__ import annotations

import os
import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from disc_jax.losses import _pairwise
from disc_jax.losses import center_loss, sigma2r_loss

FRESH_SEED = int(os.environ["DISC_JAX_TEST_SEED"])  # per session (tests/conftest.py)
SEEDS = [0, 1, FRESH_SEED]
NUM_CLASSES = 4

s2r_jit = jax.jit(sigma2r_loss, static_argnames=("n_neighbors",))
s2r_value_and_grad = jax.jit(jax.value_and_grad(sigma2r_loss, argnums=(0, 2, 3)),
                             static_argnames=("n_neighbors",))


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


# ---------------------------------------------------------------- reference
def ref_spread(p, members, n) -> float:
  """sigma(n, p): sqrt of the mean squared distance to the (up to) n nearest members."""
  if not members:
    return 0.0
  dists = sorted(float(np.sum((p - q) ** 2)) for q in members)[:n]
  return math.sqrt(sum(dists) / len(dists))


def ref_sigma2r(x, labels, centers, growth, n=7, z=40.0, epsilon=1e-3) -> float:
  """Algorithm 1 with loops: (1/m) sum_i beta_i ||x_i - C_{y_i}||^2."""
  x, centers = np.asarray(x, np.float64), np.asarray(centers, np.float64)
  total = 0.0
  for i in range(len(x)):
    y = labels[i]
    others = [x[j] for j in range(len(x)) if j != i and labels[j] == y]
    members = [x[j] for j in range(len(x)) if labels[j] == y]
    sigma_x = ref_spread(x[i], others, n)
    sigma_c = ref_spread(centers[y], members, n)
    growth_rate = epsilon + z / (1.0 + math.exp(-float(growth[y])))          # eq. 9
    beta = z / (1.0 + math.exp(-growth_rate * (sigma_x - sigma_c)))           # eq. 8
    total += beta * float(np.sum((x[i] - centers[y]) ** 2))                   # eq. 10
  return total / len(x)


def random_batch(seed, batch=12, dim=3, present=(0, 1, 3)):
  """Class 2 absent; small classes so that n_neighbors > class size happens."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batch, dim))
  labels = rng.choice(present, batch).astype(np.int32)
  centers = rng.normal(size=(NUM_CLASSES, dim)) * 0.5
  growth = rng.normal(size=NUM_CLASSES)
  return x, labels, centers, growth


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_neighbors", [1, 3, 7])
@pytest.mark.parametrize("z, epsilon", [(40.0, 1e-3), (2.0, 0.5)])
def test_matches_numpy_reference(x64, seed, n_neighbors, z, epsilon):
  x, labels, centers, growth = random_batch(seed)
  got = s2r_jit(x, labels, centers, growth, n_neighbors=n_neighbors, z=z, epsilon=epsilon)
  assert got.dtype == jnp.float64
  expected = ref_sigma2r(x, labels, centers, growth, n_neighbors, z, epsilon)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_float32_close_to_reference():
  x, labels, centers, growth = random_batch(7)
  got = s2r_jit(*(a.astype(np.float32) if a.dtype == np.float64 else a
                  for a in (x, labels, centers, growth)))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), ref_sigma2r(x, labels, centers, growth), rtol=1e-4)


def test_bfloat16_input_computed_in_float32():
  x, labels, centers, growth = random_batch(3)
  xb = jnp.asarray(x, jnp.bfloat16)
  got = sigma2r_loss(xb, labels, centers.astype(np.float32), growth.astype(np.float32))
  assert got.dtype == jnp.float32
  rounded = np.asarray(xb.astype(jnp.float32), np.float64)
  np.testing.assert_allclose(float(got), ref_sigma2r(rounded, labels, centers, growth),
                             rtol=1e-4)


def test_blocked_rows_match_reference(x64, monkeypatch):
  jax.clear_caches()
  monkeypatch.setattr(_pairwise, "_BLOCK_ELEMS", 40)  # 3 rows per block (+ remainders)
  x, labels, centers, growth = random_batch(11, batch=10)
  got = sigma2r_loss(x, labels, centers, growth, n_neighbors=2)
  np.testing.assert_allclose(float(got), ref_sigma2r(x, labels, centers, growth, 2), rtol=1e-5)
  check_grads(lambda a, c, w: sigma2r_loss(a, labels, c, w, n_neighbors=2),
              (x, centers, growth), order=1, modes=("rev",))
  monkeypatch.undo()
  jax.clear_caches()


# ---------------------------------------------------------------- closed forms
def test_square_around_its_center(x64):
  # Four corners of a square of side 2 around C = (1, 1), n = 2: each corner's
  # two nearest corners are at squared distance 4 (sigma_x = 2); the two
  # nearest corners of C are at 2 (sigma_C = sqrt 2); ||x - C||^2 = 2.
  x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
  got = sigma2r_loss(x, np.zeros(4, np.int32), np.ones((1, 2)), np.zeros(1), n_neighbors=2,
                     z=2.0, epsilon=0.25)
  growth_rate = 0.25 + 2.0 * 0.5
  expected = 2.0 / (1 + np.exp(-growth_rate * (2 - np.sqrt(2)))) * 2.0
  assert float(got) == pytest.approx(expected, rel=1e-12)


def test_flat_sigmoid_is_z_times_center_loss(x64):
  # K -> 0 (epsilon = 0, w_K -> -inf): beta = Z / 2 for every sample.
  x, labels, centers, _ = random_batch(5)
  got = sigma2r_loss(x, labels, centers, np.full(NUM_CLASSES, -1e4), z=3.0, epsilon=0.0)
  assert float(got) == pytest.approx(3.0 * float(center_loss(x, labels, centers)), rel=1e-12)


def test_small_class_rules(x64):
  # Class 0 has 3 samples and n = 5: x_i uses its 2 others, C uses all 3.
  # Class 1 has 1 sample: sigma(n, x) = 0 and sigma(n, C) = ||x - C||.
  x = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
  labels = np.array([0, 0, 0, 1], np.int32)
  centers = np.array([[1.0, 1.0], [0.0, 0.0]])
  growth = np.array([0.3, -0.2])
  got = sigma2r_loss(x, labels, centers, growth, n_neighbors=5, z=4.0, epsilon=0.1)
  k0, k1 = 0.1 + 4 / (1 + np.exp(-0.3)), 0.1 + 4 / (1 + np.exp(0.2))
  sig_c0 = np.sqrt((2 + 5 + 10) / 3)
  sig_x = [np.sqrt((9 + 16) / 2), np.sqrt((9 + 25) / 2), np.sqrt((16 + 25) / 2)]
  d0 = [2.0, 5.0, 10.0]
  terms = [4 / (1 + np.exp(-k0 * (s - sig_c0))) * d for s, d in zip(sig_x, d0)]
  terms.append(4 / (1 + np.exp(-k1 * (0.0 - np.sqrt(2)))) * 2.0)
  assert float(got) == pytest.approx(np.mean(terms), rel=1e-12)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_neighbors", [2, 7])
def test_check_grads(x64, seed, n_neighbors):
  x, labels, centers, growth = random_batch(seed, batch=8)
  fn = lambda a, c, w: sigma2r_loss(a, labels, c, w, n_neighbors=n_neighbors,  # noqa: E731
                                    z=3.0, epsilon=0.1)
  check_grads(fn, (x, centers, growth), order=1, modes=("rev",))


def test_gradient_flows_through_beta_to_growth_and_centers(x64):
  x, labels, centers, growth = random_batch(2)
  _, (g_x, g_c, g_w) = s2r_value_and_grad(x, labels, centers, growth, n_neighbors=3)
  present = np.unique(labels)
  assert np.all(np.abs(np.asarray(g_w)[present]) > 0)       # w_K only enters through beta
  np.testing.assert_array_equal(np.asarray(g_w)[2], 0.0)     # absent class
  np.testing.assert_array_equal(np.asarray(g_c)[2], 0.0)
  # The center gradient is not just the center-loss part -2/m sum_i beta_i (x_i - C):
  # it also has the path through sigma(n, C) inside beta.
  rate = 1e-3 + 40 / (1 + np.exp(-growth[labels]))
  sig_x = np.array([ref_spread(x[i], [x[j] for j in range(len(x)) if j != i
                                      and labels[j] == labels[i]], 3) for i in range(len(x))])
  sig_c = np.array([ref_spread(centers[k], list(x[labels == k]), 3) for k in range(4)])
  beta = 40 / (1 + np.exp(-rate * (sig_x - sig_c[labels])))
  direct = np.zeros_like(centers)
  np.add.at(direct, labels, -2 / len(x) * beta[:, None] * (x - centers[labels]))
  assert not np.allclose(np.asarray(g_c)[present], direct[present], rtol=1e-3)
  assert np.all(np.isfinite(np.asarray(g_x)))


EDGE_CASES = ["absent_classes", "identical_features", "one_sample_of_a_class",
              "all_samples_one_class", "every_class_a_singleton", "single_sample"]


def edge_case(kind):
  rng = np.random.default_rng(5)
  x = rng.normal(size=(8, 3))
  labels = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
  centers = rng.normal(size=(NUM_CLASSES * 2, 3))
  growth = rng.normal(size=NUM_CLASSES * 2)
  if kind == "identical_features":
    x[:] = x[0]
  elif kind == "one_sample_of_a_class":
    labels[2] = 7
  elif kind == "all_samples_one_class":
    labels[:] = 3
  elif kind == "every_class_a_singleton":
    labels = np.arange(8, dtype=np.int32)
  elif kind == "single_sample":
    x, labels = x[:1], labels[:1]
  return x, labels, centers, growth


@pytest.mark.parametrize("kind", EDGE_CASES)
def test_edge_cases_finite_value_and_gradient(x64, kind):
  x, labels, centers, growth = edge_case(kind)
  value, grads = s2r_value_and_grad(x, labels, centers, growth, n_neighbors=3)
  assert np.isfinite(float(value))
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
  np.testing.assert_allclose(float(value), ref_sigma2r(x, labels, centers, growth, 3),
                             rtol=1e-5, atol=1e-12)


# ---------------------------------------------------------------- jit / sharding
def test_jit_traces_once_per_shape():
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(x, labels, centers, growth):
    return jax.value_and_grad(sigma2r_loss, argnums=(0, 2, 3))(x, labels, centers, growth)

  for seed in range(3):
    x, labels, centers, growth = random_batch(seed)
    value, _ = step(x.astype(np.float32), labels, centers.astype(np.float32),
                    growth.astype(np.float32))
    assert np.isfinite(float(value))


def _global_batch():
  x, labels, centers, growth = random_batch(21, batch=16)
  return x.astype(np.float32), labels, centers.astype(np.float32), growth.astype(np.float32)


def test_shard_map_equals_global_batch_value_and_gradient():
  x, labels, centers, growth = _global_batch()
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  fn = functools.partial(sigma2r_loss, n_neighbors=3, axis_name="data")
  sharded = jax.shard_map(fn, mesh=mesh, in_specs=(P("data"), P("data"), P(), P()),
                          out_specs=P())
  v_glob, g_glob = s2r_value_and_grad(x, labels, centers, growth, n_neighbors=3)
  v_shard, g_shard = jax.jit(jax.value_and_grad(sharded, argnums=(0, 2, 3)))(
      x, labels, centers, growth)
  np.testing.assert_allclose(float(v_shard), float(v_glob), rtol=1e-6, atol=1e-6)
  for a, b in zip(g_shard, g_glob):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_pmap_equals_global_batch():
  x, labels, centers, growth = _global_batch()
  expected = float(sigma2r_loss(x, labels, centers, growth, n_neighbors=3))
  fn = functools.partial(sigma2r_loss, n_neighbors=3, axis_name="data")
  per_device = jax.pmap(fn, axis_name="data", in_axes=(0, 0, None, None))(
      x.reshape(8, 2, 3), labels.reshape(8, 2), centers, growth)
  np.testing.assert_allclose(np.asarray(per_device), expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- bad input
F, L4, C, W = np.ones((4, 3)), np.zeros(4, np.int32), np.zeros((2, 3)), np.zeros(2)


@pytest.mark.parametrize("args, kwargs, match", [
    ((F, np.zeros(5, np.int32), C, W), {}, "`labels` has 5 entries"),
    ((F, L4.reshape(4, 1), C, W), {}, "`labels` must have rank 1"),
    ((F, L4.astype(np.float32), C, W), {}, "`labels` must be integer"),
    ((F, np.array([0, 1, 2, 0]), C, W), {}, "`labels` must lie in"),
    ((F.astype(np.int32), L4, C, W), {}, "`features` must be a floating"),
    ((F, L4, np.zeros((2, 4)), W), {}, "`centers` must have shape"),
    ((F, L4, np.zeros(3), W), {}, "`centers` must have rank 2"),
    ((F, L4, C, np.zeros(3)), {}, "`growth` must have shape"),
    ((F, L4, C, W), {"n_neighbors": 0}, "`n_neighbors` must be an integer >= 1"),
    ((F, L4, C, W), {"n_neighbors": 2.5}, "`n_neighbors` must be an integer >= 1"),
])
def test_bad_input_raises(args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    sigma2r_loss(*args, **kwargs)


# ---------------------------------------------------------------- scale
@pytest.mark.slow
def test_runs_at_batch_8192_width_2048():
  b, dim, classes = 8192, 2048, 100
  keys = jax.random.split(jax.random.key(0), 4)
  x = jax.random.normal(keys[0], (b, dim))
  labels = jax.random.randint(keys[1], (b,), 0, classes)
  centers = jax.random.normal(keys[2], (classes, dim))
  growth = jax.random.normal(keys[3], (classes,))
  fn = jax.jit(jax.value_and_grad(sigma2r_loss, argnums=(0, 2, 3)))
  compiled = fn.lower(x, labels, centers, growth).compile()
  assert compiled.memory_analysis().temp_size_in_bytes < b * b * 4 + 16 * b * dim * 4
  value, grads = compiled(x, labels, centers, growth)
  assert np.isfinite(float(value))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)
