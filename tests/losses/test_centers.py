"""Tests of center_loss, update_centers and intra_class_variance_loss against NumPy loops."""

from __future__ import annotations


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from disc_jax.losses import center_loss, intra_class_variance_loss, update_centers
from tests.helpers import FRESH_SEED, edge_case_batch

SEEDS = [0, 1, 2, FRESH_SEED]
NUM_CLASSES = 5
LOSSES = {"center": center_loss, "icv": intra_class_variance_loss}


# ---------------------------------------------------------------- reference
def ref_center_loss(x, labels, centers) -> float:
  """Wen et al. eq. 2 as a batch mean: 1/(2m) sum_i ||x_i - c_{y_i}||^2."""
  return sum(0.5 * float(np.sum((x[i] - centers[labels[i]]) ** 2))
             for i in range(len(x))) / len(x)


def ref_icv(x, labels, centroids) -> float:
  """Pilarczyk and Skarbek eq. 5: 1/N_b sum_j ||x_j - C_{y_j}||^2."""
  return sum(float(np.sum((x[j] - centroids[labels[j]]) ** 2)) for j in range(len(x))) / len(x)


def ref_update(centers, x, labels, alpha) -> np.ndarray:
  """Wen et al. eq. 4: c_j -= alpha sum_{i: y_i = j} (c_j - x_i) / (1 + n_j)."""
  new = np.array(centers, np.float64)
  for j in range(len(centers)):
    members = [x[i] for i in range(len(x)) if labels[i] == j]
    delta = sum((centers[j] - m for m in members), np.zeros(centers.shape[1]))
    new[j] = centers[j] - alpha * delta / (1 + len(members))
  return new


REFS = {"center": ref_center_loss, "icv": ref_icv}


def random_batch(seed, batch=12, dim=4, present=(0, 1, 3, 4)):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batch, dim))
  labels = rng.choice(present, batch).astype(np.int32)  # class 2 absent
  centers = rng.normal(size=(NUM_CLASSES, dim))
  return x, labels, centers


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", SEEDS)
def test_losses_match_reference(x64, name, seed):
  x, labels, centers = random_batch(seed)
  got = LOSSES[name](x, labels, centers)
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(float(got), REFS[name](x, labels, centers), rtol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", [0.5, 0.05, 1.0])
def test_update_matches_reference(x64, seed, alpha):
  x, labels, centers = random_batch(seed)
  got = update_centers(centers, x, labels, alpha)
  np.testing.assert_allclose(np.asarray(got), ref_update(centers, x, labels, alpha),
                             rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
def test_float32_and_bfloat16(name):
  x, labels, centers = random_batch(7)
  got = LOSSES[name](x.astype(np.float32), labels, centers.astype(np.float32))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), REFS[name](x, labels, centers), rtol=1e-5)
  xb = jnp.asarray(x, jnp.bfloat16)
  got = LOSSES[name](xb, labels, centers.astype(np.float32))
  assert got.dtype == jnp.float32
  rounded = np.asarray(xb.astype(jnp.float32), np.float64)
  np.testing.assert_allclose(float(got), REFS[name](rounded, labels, centers), rtol=1e-5)


# ---------------------------------------------------------------- closed forms
def test_features_on_their_centers_give_zero(x64):
  x, labels, centers = random_batch(3)
  on_center = centers[labels]
  for fn in LOSSES.values():
    assert float(fn(on_center, labels, centers)) == 0.0


def test_icv_is_twice_the_center_loss(x64):
  x, labels, centers = random_batch(4)
  assert float(intra_class_variance_loss(x, labels, centers)) == pytest.approx(
      2 * float(center_loss(x, labels, centers)), rel=1e-14)


def test_icv_at_class_means_is_within_class_variance(x64):
  # Minimising eq. 5 over C alone gives the class means; the value is then the
  # within-class variance (Pilarczyk and Skarbek, Sec. 3) and the C-gradient is 0.
  x, labels, _ = random_batch(5)
  means = np.zeros((NUM_CLASSES, x.shape[1]))
  for k in np.unique(labels):
    means[k] = x[labels == k].mean(0)
  within = sum(np.sum((x[labels == k] - means[k]) ** 2) for k in np.unique(labels)) / len(x)
  value, grad = jax.value_and_grad(intra_class_variance_loss, argnums=2)(x, labels, means)
  assert float(value) == pytest.approx(within, rel=1e-12)
  np.testing.assert_allclose(np.asarray(grad), 0.0, atol=1e-14)


def test_update_alpha_zero_and_absent_classes_leave_centers(x64):
  x, labels, centers = random_batch(6)
  np.testing.assert_array_equal(np.asarray(update_centers(centers, x, labels, 0.0)), centers)
  new = np.asarray(update_centers(centers, x, labels, 0.7))
  np.testing.assert_array_equal(new[2], centers[2])      # class 2 absent
  assert not np.allclose(new[0], centers[0])


def test_update_alpha_one_is_a_shrunk_class_mean(x64):
  # alpha = 1: c_j' = (c_j + sum_i x_i) / (1 + n_j).
  x, labels, centers = random_batch(8)
  new = np.asarray(update_centers(centers, x, labels, 1.0))
  for k in np.unique(labels):
    members = x[labels == k]
    np.testing.assert_allclose(new[k], (centers[k] + members.sum(0)) / (1 + len(members)),
                               rtol=1e-12)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", [0, 1])
def test_check_grads(x64, name, seed):
  x, labels, centers = random_batch(seed, batch=6, dim=3)
  fn = lambda a, c: LOSSES[name](a, labels, c)  # noqa: E731
  check_grads(fn, (x, centers), order=1, modes=("rev",))


def test_check_grads_update(x64):
  x, labels, centers = random_batch(2, batch=6, dim=3)
  check_grads(lambda c, a: update_centers(c, a, labels, 0.5), (centers, x), order=1,
              modes=("rev",))


EDGE_CASES = ["absent_classes", "identical_features", "one_sample_of_a_class",
              "all_samples_one_class", "single_sample"]


def edge_case(kind):
  x, labels, rng = edge_case_batch(kind)
  return x, labels, rng.normal(size=(10, 3))  # classes 3-9 absent in every case

@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("kind", EDGE_CASES)
def test_edge_cases_finite_value_and_gradient(x64, name, kind):
  x, labels, centers = edge_case(kind)
  value, grads = jax.value_and_grad(LOSSES[name], argnums=(0, 2))(x, labels, centers)
  assert np.isfinite(float(value))
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
  np.testing.assert_allclose(float(value), REFS[name](x, labels, centers), rtol=1e-5)
  absent = np.setdiff1d(np.arange(10), labels)
  np.testing.assert_array_equal(np.asarray(grads[1])[absent], 0.0)
  new = update_centers(centers, x, labels, 0.5)
  np.testing.assert_allclose(np.asarray(new), ref_update(centers, x, labels, 0.5), rtol=1e-10)


# ---------------------------------------------------------------- jit / sharding
def test_jit_traces_once_per_shape():
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(x, labels, centers):
    loss, grads = jax.value_and_grad(
        lambda a, c: center_loss(a, labels, c) + intra_class_variance_loss(a, labels, c),
        argnums=(0, 1))(x, centers)
    return loss, grads, update_centers(centers, x, labels, 0.5)

  for seed in range(3):
    x, labels, centers = random_batch(seed)
    loss, _, _ = step(x.astype(np.float32), labels, centers.astype(np.float32))
    assert np.isfinite(float(loss))


def _global_batch():
  x, labels, centers = random_batch(21, batch=16, dim=3)
  return x.astype(np.float32), labels, centers.astype(np.float32)


def test_update_under_shard_map_equals_global_batch(mesh):
  x, labels, centers = _global_batch()
  fn = lambda c, a, y: update_centers(c, a, y, 0.5, axis_name="data")  # noqa: E731
  sharded = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=(P(), P("data"), P("data")),
                                  out_specs=P()))
  np.testing.assert_allclose(np.asarray(sharded(centers, x, labels)),
                             np.asarray(update_centers(centers, x, labels, 0.5)),
                             rtol=1e-6, atol=1e-6)


def test_update_with_where_equals_sliced_batch(x64):
  x, labels, centers = random_batch(9)
  keep = np.random.default_rng(0).uniform(size=len(x)) < 0.6
  np.testing.assert_allclose(np.asarray(update_centers(centers, x, labels, 0.5, where=keep)),
                             ref_update(centers, x[keep], labels[keep], 0.5), rtol=1e-12)
  none = np.zeros(len(x), bool)
  np.testing.assert_array_equal(np.asarray(update_centers(centers, x, labels, 0.5, where=none)),
                                centers)


# ---------------------------------------------------------------- bad input
F, L4, C = np.ones((4, 3)), np.zeros(4, np.int32), np.zeros((2, 3))


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("x, labels, centers, match", [
    (F, np.zeros(5, np.int32), C, "`labels` has 5 entries"),
    (F, L4.reshape(4, 1), C, "`labels` must have rank 1"),
    (F, L4.astype(np.float32), C, "`labels` must be integer"),
    (F, np.array([0, 1, 2, 0]), C, "`labels` must lie in"),
    (F.astype(np.int32), L4, C, "`features` must be a floating"),
    (F, L4, np.zeros((2, 4)), "must have shape \\[num_classes, D=3\\]"),
    (F, L4, np.zeros(3), "must have rank 2"),
])
def test_bad_input_raises(name, x, labels, centers, match):
  with pytest.raises(ValueError, match=match):
    LOSSES[name](x, labels, centers)
  with pytest.raises(ValueError, match=match):
    update_centers(centers, x, labels, 0.5)


def test_error_names_centroids_for_icv():
  with pytest.raises(ValueError, match="`centroids` must have shape"):
    intra_class_variance_loss(F, L4, np.zeros((2, 4)))
