"""Tests of sigma2r_loss against a float64 NumPy transcription of σ²R eq. 8-10 / Algorithm 1."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from disc_jax.losses import _pairwise
from disc_jax.losses import center_loss, sigma2r_loss
from tests.helpers import FRESH_SEED, edge_case_batch

SEEDS = [0, 1, FRESH_SEED]
NUM_CLASSES = 4

s2r_jit = jax.jit(sigma2r_loss, static_argnames=("n_neighbors", "spread"))
s2r_value_and_grad = jax.jit(jax.value_and_grad(sigma2r_loss, argnums=(0, 2, 3)),
                             static_argnames=("n_neighbors", "spread"))
SPREADS = ["std", "vector_std", "rms_distance"]


# ---------------------------------------------------------------- reference
def ref_spread(p, members, n, spread="std") -> float:
  """sigma(n, p) over the (up to) n members nearest to p, with a Python loop.

  'std': the sample std of all |N| D coordinates; 'vector_std': sqrt(sum ||q - mean||^2
  / (|N| - 1)); both 0 for |N| < 2. 'rms_distance': sqrt of the mean squared distance
  to p (0 for none).
  """
  nearest = sorted(members, key=lambda q: float(np.sum((p - q) ** 2)))[:n]
  if spread == "rms_distance":
    if not nearest:
      return 0.0
    return math.sqrt(sum(float(np.sum((p - q) ** 2)) for q in nearest) / len(nearest))
  if len(nearest) < 2:
    return 0.0
  dims = range(len(p))
  if spread == "std":
    values = [float(q[d]) for q in nearest for d in dims]
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
  mean = [sum(float(q[d]) for q in nearest) / len(nearest) for d in dims]
  sum_sq = sum((float(q[d]) - mean[d]) ** 2 for q in nearest for d in dims)
  return math.sqrt(sum_sq / (len(nearest) - 1))


def ref_sigma2r(x, labels, centers, growth, n=7, z=40.0, epsilon=1e-3, spread="std") -> float:
  """Algorithm 1 with loops: (1/m) sum_i beta_i ||x_i - C_{y_i}||^2."""
  x, centers = np.asarray(x, np.float64), np.asarray(centers, np.float64)
  total = 0.0
  for i in range(len(x)):
    y = labels[i]
    others = [x[j] for j in range(len(x)) if j != i and labels[j] == y]
    members = [x[j] for j in range(len(x)) if labels[j] == y]
    sigma_x = ref_spread(x[i], others, n, spread)
    sigma_c = ref_spread(centers[y], members, n, spread)
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
@pytest.mark.parametrize("spread", SPREADS)
def test_matches_numpy_reference(x64, seed, n_neighbors, z, epsilon, spread):
  x, labels, centers, growth = random_batch(seed)
  got = s2r_jit(x, labels, centers, growth, n_neighbors=n_neighbors, z=z, epsilon=epsilon,
                spread=spread)
  assert got.dtype == jnp.float64
  expected = ref_sigma2r(x, labels, centers, growth, n_neighbors, z, epsilon, spread)
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
@pytest.mark.parametrize("spread, sigma_x, sigma_c", [
    # Each corner's two nearest corners are its neighbours along the sides, 2 sqrt 2
    # apart; the two nearest corners of C (ties by index) are (0, 0) and (2, 0).
    ("std", math.sqrt(4 / 3), 1.0),             # coordinates {2,0,0,2} / {0,0,2,0}
    ("vector_std", 2.0, math.sqrt(2.0)),        # (2 sqrt 2)^2 / 2 / 1, 2^2 / 2 / 1
    ("rms_distance", 2.0, math.sqrt(2.0)),      # distances 2 and sqrt 2
])
def test_square_around_its_center(x64, spread, sigma_x, sigma_c):
  # Four corners of a square of side 2 around C = (1, 1), n = 2; ||x - C||^2 = 2.
  x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
  got = sigma2r_loss(x, np.zeros(4, np.int32), np.ones((1, 2)), np.zeros(1), n_neighbors=2,
                     z=2.0, epsilon=0.25, spread=spread)
  growth_rate = 0.25 + 2.0 * 0.5
  expected = 2.0 / (1 + np.exp(-growth_rate * (sigma_x - sigma_c))) * 2.0
  assert float(got) == pytest.approx(expected, rel=1e-12)


def test_flat_sigmoid_is_z_times_center_loss(x64):
  # K -> 0 (epsilon = 0, w_K -> -inf): beta = Z / 2 for every sample.
  x, labels, centers, _ = random_batch(5)
  got = sigma2r_loss(x, labels, centers, np.full(NUM_CLASSES, -1e4), z=3.0, epsilon=0.0)
  assert float(got) == pytest.approx(3.0 * float(center_loss(x, labels, centers)), rel=1e-12)


@pytest.mark.parametrize("spread", ["std", "vector_std"])
def test_std_spreads_do_not_grow_with_the_distance_of_the_center(x64, spread):
  # A center 10 or 100 away from a class has the same n nearest points, hence the
  # same sigma(n, C) and the same beta: the loss grows with ||x - C||^2 instead of
  # switching off. The RMS-distance reading switches off for the far center.
  x = np.array([[0.0, 0.0], [10.0, 1.0], [10.0, -1.0], [9.0, 0.5]])
  labels = np.zeros(4, np.int32)
  near, far = np.array([[20.0, 0.0]]), np.array([[110.0, 0.0]])
  loss = lambda c, sp: float(sigma2r_loss(  # noqa: E731
      x, labels, c, np.zeros(1), n_neighbors=2, z=2.0, epsilon=0.0, spread=sp))
  for c in (near, far):
    assert loss(c, spread) == pytest.approx(
        ref_sigma2r(x, labels, c, np.zeros(1), 2, 2.0, 0.0, spread), rel=1e-12)
  beta_over_d = [loss(c, spread) / np.mean(np.sum((x - c) ** 2, 1)) for c in (near, far)]
  assert beta_over_d[0] > 0.1 and beta_over_d[1] > 0.1
  assert loss(far, "rms_distance") < 1e-30


def test_small_class_rules_rms_distance(x64):
  # Class 0 has 3 samples and n = 5: x_i uses its 2 others, C uses all 3.
  # Class 1 has 1 sample: sigma(n, x) = 0 and sigma(n, C) = ||x - C||.
  x = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
  labels = np.array([0, 0, 0, 1], np.int32)
  centers = np.array([[1.0, 1.0], [0.0, 0.0]])
  growth = np.array([0.3, -0.2])
  got = sigma2r_loss(x, labels, centers, growth, n_neighbors=5, z=4.0, epsilon=0.1,
                     spread="rms_distance")
  k0, k1 = 0.1 + 4 / (1 + np.exp(-0.3)), 0.1 + 4 / (1 + np.exp(0.2))
  sig_c0 = np.sqrt((2 + 5 + 10) / 3)
  sig_x = [np.sqrt((9 + 16) / 2), np.sqrt((9 + 25) / 2), np.sqrt((16 + 25) / 2)]
  d0 = [2.0, 5.0, 10.0]
  terms = [4 / (1 + np.exp(-k0 * (s - sig_c0))) * d for s, d in zip(sig_x, d0)]
  terms.append(4 / (1 + np.exp(-k1 * (0.0 - np.sqrt(2)))) * 2.0)
  assert float(got) == pytest.approx(np.mean(terms), rel=1e-12)


def test_small_class_rules_vector_std(x64):
  # Class 0 has 3 samples and n = 5: x_i's spread is that of its 2 others, C's that of
  # all 3. Class 1 has 1 sample: both of its spreads are 0 (fewer than 2 points).
  x = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [1.0, 1.0]])
  labels = np.array([0, 0, 0, 1], np.int32)
  centers = np.array([[1.0, 1.0], [0.0, 0.0]])
  growth = np.array([0.3, -0.2])
  got = sigma2r_loss(x, labels, centers, growth, n_neighbors=5, z=4.0, epsilon=0.1,
                     spread="vector_std")
  k0 = 0.1 + 4 / (1 + np.exp(-0.3))
  # two points a distance d apart: sum of squared deviations d^2 / 2, / (2 - 1)
  sig_x = [np.sqrt(25 / 2), np.sqrt(16 / 2), np.sqrt(9 / 2)]
  mean = np.array([1.0, 4 / 3])
  sig_c0 = np.sqrt(np.sum((x[:3] - mean) ** 2) / 2)
  d0 = [2.0, 5.0, 10.0]
  terms = [4 / (1 + np.exp(-k0 * (s - sig_c0))) * d for s, d in zip(sig_x, d0)]
  terms.append(4 / 2 * 2.0)   # class 1: beta = Z sigmoid(0) = Z / 2
  assert float(got) == pytest.approx(np.mean(terms), rel=1e-12)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_neighbors", [2, 7])
@pytest.mark.parametrize("spread", SPREADS)
def test_check_grads(x64, seed, n_neighbors, spread):
  x, labels, centers, growth = random_batch(seed, batch=8)
  fn = lambda a, c, w: sigma2r_loss(a, labels, c, w, n_neighbors=n_neighbors,  # noqa: E731
                                    z=3.0, epsilon=0.1, spread=spread)
  check_grads(fn, (x, centers, growth), order=1, modes=("rev",))


@pytest.mark.parametrize("spread", SPREADS)
def test_gradient_flows_through_beta_to_growth_and_centers(x64, spread):
  x, labels, centers, growth = random_batch(2)
  _, (g_x, g_c, g_w) = s2r_value_and_grad(x, labels, centers, growth, n_neighbors=3,
                                          spread=spread)
  present = np.unique(labels)
  # w_K only enters through beta; with 'std' a singleton class has both spreads 0,
  # so beta = Z/2 whatever K and its w_K gets no gradient.
  counts = np.bincount(labels, minlength=4)
  varied = present if spread == "rms_distance" else np.flatnonzero(counts >= 3)
  assert varied.size >= 2
  assert np.all(np.abs(np.asarray(g_w)[varied]) > 0)
  np.testing.assert_array_equal(np.asarray(g_w)[2], 0.0)     # absent class
  np.testing.assert_array_equal(np.asarray(g_c)[2], 0.0)
  # The center-loss part of the center gradient: -2/m sum_i beta_i (x_i - C). With
  # the std spreads it is all of it (sigma(n, C) depends on which points are nearest to C,
  # not on where C is); with 'rms_distance' there is also the path through sigma(n, C).
  rate = 1e-3 + 40 / (1 + np.exp(-growth[labels]))
  sig_x = np.array([ref_spread(x[i], [x[j] for j in range(len(x)) if j != i
                                      and labels[j] == labels[i]], 3, spread)
                    for i in range(len(x))])
  sig_c = np.array([ref_spread(centers[k], list(x[labels == k]), 3, spread) for k in range(4)])
  beta = 40 / (1 + np.exp(-rate * (sig_x - sig_c[labels])))
  direct = np.zeros_like(centers)
  np.add.at(direct, labels, -2 / len(x) * beta[:, None] * (x - centers[labels]))
  same = np.allclose(np.asarray(g_c)[present], direct[present], rtol=1e-9)
  assert same == (spread != "rms_distance")
  assert np.all(np.isfinite(np.asarray(g_x)))


def _far_classes(data_seed):
  """Three 2-D classes of 30 points (std 1) about 10 units from the origin."""
  rng = np.random.default_rng(data_seed)
  means = 10.0 * np.array([[1.0, 0.0], [-0.5, 0.87], [-0.5, -0.87]])
  labels = np.repeat(np.arange(3), 30).astype(np.int32)
  x = means[labels] + rng.normal(size=(90, 2))
  class_means = np.stack([x[labels == k].mean(0) for k in range(3)])
  return x.astype(np.float32), labels, class_means


def _fit_centers(x, labels, spread, init_seed, steps=300):
  """Adam at lr 0.1 (the paper's rate for centers and w_K) on centers and w_K, both
  drawn from N(0, 1) (the paper's initialisation); the features stay fixed."""
  import optax
  rng = np.random.default_rng(init_seed)
  params = {"centers": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32),
            "growth": jnp.asarray(rng.normal(size=3), jnp.float32)}
  opt = optax.adam(0.1)
  state = opt.init(params)

  @jax.jit
  def step(params, state):
    loss, g = jax.value_and_grad(lambda p: sigma2r_loss(
        x, labels, p["centers"], p["growth"], spread=spread))(params)
    updates, state = opt.update(g, state, params)
    return optax.apply_updates(params, updates), state, loss

  first = None
  for _ in range(steps):
    params, state, loss = step(params, state)
    first = float(loss) if first is None else first
  centers = np.asarray(params["centers"])
  return centers, np.asarray(params["growth"]), first


@pytest.mark.parametrize("init_seed", [1, 2, 3])
def test_no_dead_zone_centers_from_standard_normal_reach_their_classes(init_seed):
  x, labels, class_means = _far_classes(data_seed=0)
  centers, growth, first_loss = _fit_centers(x, labels, "std", init_seed)
  assert first_loss > 1.0                     # the loss is alive at the N(0, 1) start
  dist = np.linalg.norm(centers - class_means, axis=1)
  assert np.all(dist < 0.5), dist             # every center is at its class mean
  assert np.all(growth < 0), growth           # and every w_K has fallen (Fig. 5)


@pytest.mark.parametrize("spread", ["vector_std", "rms_distance"])
def test_other_spreads_stall_outside_the_classes(spread):
  # The options kept for comparison do not bring the centers back from the same start:
  # 'rms_distance' switches off at once (beta underflows), 'vector_std' once w_K has
  # made K ~ Z (every sigma(n, x_i) is below the spread of a far center's "cap").
  x, labels, class_means = _far_classes(data_seed=0)
  centers, _, _ = _fit_centers(x, labels, spread, init_seed=1)
  dist = np.linalg.norm(centers - class_means, axis=1)
  assert np.max(dist) > 4.0, dist


EDGE_CASES = ["absent_classes", "identical_features", "one_sample_of_a_class",
              "all_samples_one_class", "every_class_a_singleton", "single_sample"]


def edge_case(kind):
  x, labels, rng = edge_case_batch(kind)
  return x, labels, rng.normal(size=(NUM_CLASSES * 2, 3)), rng.normal(size=NUM_CLASSES * 2)

@pytest.mark.parametrize("kind", EDGE_CASES)
@pytest.mark.parametrize("spread", SPREADS)
def test_edge_cases_finite_value_and_gradient(x64, kind, spread):
  x, labels, centers, growth = edge_case(kind)
  value, grads = s2r_value_and_grad(x, labels, centers, growth, n_neighbors=3, spread=spread)
  assert np.isfinite(float(value))
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
  np.testing.assert_allclose(float(value), ref_sigma2r(x, labels, centers, growth, 3,
                                                       spread=spread),
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
    ((F, L4, C, W), {"spread": "var"}, "`spread` must be one of"),
    ((F, L4, C, W), {"n_neighbors": None}, "`n_neighbors` must be an integer >= 1"),
    ((F, L4, C, W), {"z": 0.0}, "`z` must be > 0"),
    ((F, L4, C, W), {"z": -40.0}, "`z` must be > 0"),
    ((F, L4, C, W), {"epsilon": -1e-3}, "`epsilon` must be >= 0"),
])
def test_bad_input_raises(args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    sigma2r_loss(*args, **kwargs)


def test_python_lists_are_refused_naming_the_argument():
  with pytest.raises(TypeError, match="`features` must be an array, got a Python list"):
    sigma2r_loss(F.tolist(), L4, C, W)
  with pytest.raises(TypeError, match="`labels` must be an array, got a Python list"):
    sigma2r_loss(F, L4.tolist(), C, W)


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
