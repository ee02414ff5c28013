"""Tests of gini_loss / kl_loss against a float64 NumPy transcription of eq. 1-7."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from disc_jax.losses import gini_loss, kl_loss
from tests.helpers import FRESH_SEED

LOSSES = {"gini": gini_loss, "kl": kl_loss}
SEEDS = [0, 1, 2, FRESH_SEED]


# ---------------------------------------------------------------- reference
def ref_s_bar(acts: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
  """Eq. 2-4 literally: M (GAP of |A|), Ȳ = Y / column sums, S = Mᵀ Ȳ, row-normalise."""
  acts = np.abs(np.asarray(acts, np.float64))
  m, c = acts.shape[0], acts.shape[-1]
  M = acts.reshape(m, -1, c).mean(axis=1)
  Y = np.zeros((m, n))
  Y[np.arange(m), labels] = 1.0
  Y_bar = np.zeros_like(Y)
  for j in range(n):
    if Y[:, j].sum() > 0:  # absent class: zero column
      Y_bar[:, j] = Y[:, j] / Y[:, j].sum()
  S = M.T @ Y_bar
  S_bar = np.zeros_like(S)
  for i in range(c):
    if S[i].sum() != 0:  # dead channel: zero row
      S_bar[i] = S[i] / S[i].sum()
  return S_bar


def ref_gini(acts, labels, n) -> float:
  S_bar = ref_s_bar(acts, labels, n)
  return float(np.mean([1.0 - sum(v**2 for v in row) for row in S_bar]))


def ref_kl(acts, labels, n, direction="labels||channels", epsilon=1e-10) -> float:
  """labels||channels transcribes the authors' ``kl_div``: prob_dist = column sums of
  S̄; s = its sum; prob_dist += 1e-10; prob_dist /= s; then ``F.kl_div(prob_dist.log(),
  target, 'sum')`` = sum_i target_i (log target_i - log prob_dist_i), 0 where target_i = 0,
  with target = the batch label histogram."""
  S_bar = ref_s_bar(acts, labels, n)
  m = len(labels)
  total = S_bar.sum()
  if total == 0:
    return 0.0
  kl = 0.0
  for i in range(n):
    h_y = np.sum(labels == i) / m
    if direction == "labels||channels":
      h_s = (S_bar[:, i].sum() + epsilon) / total
      if h_y != 0:
        kl += h_y * (np.log(h_y) - np.log(h_s))
    else:
      h_s = S_bar[:, i].sum() / total
      if h_s != 0:
        kl += h_s * np.log(h_s / h_y)
  return float(kl)


REFS = {"gini": ref_gini, "kl": ref_kl}


def random_batch(seed, shape=(12, 3, 2, 5), num_classes=6, present=4):
  """Non-negative activations; labels drawn from `present` of the classes."""
  rng = np.random.default_rng(seed)
  acts = rng.uniform(0.0, 2.0, shape) * (rng.uniform(size=shape) > 0.3)
  classes = rng.choice(num_classes, present, replace=False)
  labels = rng.choice(classes, shape[0])
  return acts, labels.astype(np.int32), num_classes


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(12, 5), (12, 3, 2, 5), (10, 4, 7)])
def test_matches_numpy_reference(x64, name, seed, shape):
  acts, labels, n = random_batch(seed, shape)
  got = LOSSES[name](jnp.asarray(acts), jnp.asarray(labels), n)
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(float(got), REFS[name](acts, labels, n), rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
def test_float32_close_to_reference(name):
  acts, labels, n = random_batch(7)
  got = LOSSES[name](acts.astype(np.float32), labels, n)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), REFS[name](acts, labels, n), rtol=1e-4, atol=1e-6)


def test_bfloat16_input_computed_in_float32():
  acts, labels, n = random_batch(3)
  got = gini_loss(jnp.asarray(acts, jnp.bfloat16), labels, n)
  assert got.dtype == jnp.float32
  rounded = np.asarray(jnp.asarray(acts, jnp.bfloat16).astype(jnp.float32))
  np.testing.assert_allclose(float(got), ref_gini(rounded, labels, n), rtol=1e-4)


def test_spatial_axes_are_average_pooled(x64):
  acts, labels, n = random_batch(4, (8, 3, 3, 6))
  pooled = acts.mean(axis=(1, 2))
  for fn in LOSSES.values():
    np.testing.assert_allclose(float(fn(acts, labels, n)), float(fn(pooled, labels, n)),
                               rtol=1e-12)


# ---------------------------------------------------------------- closed forms
def test_perfectly_discriminative_gives_gini_zero_and_matching_histograms_kl_zero(x64):
  # Classes 0, 1, 2 with 2, 4, 2 samples (h^Y = 1/4, 1/2, 1/4); channel 0 fires
  # only for class 0, channels 1-2 only for class 1, channel 3 only for class 2,
  # so every S̄ row is one-hot (Gini 0) and h^S = 1/4, 2/4, 1/4 = h^Y (KL 0).
  rng = np.random.default_rng(11)
  labels = np.array([0, 1, 1, 2, 0, 1, 2, 1], np.int32)
  owner = np.array([0, 1, 1, 2])
  acts = rng.uniform(0.5, 2.0, (8, 2, 2, 4)) * (labels[:, None] == owner[None])[:, None, None]
  assert float(gini_loss(acts, labels, 5)) == pytest.approx(0.0, abs=1e-12)
  assert float(kl_loss(acts, labels, 5)) == pytest.approx(0.0, abs=1e-9)  # up to the 1e-10


def test_balanced_uniform_features_give_kl_zero_and_max_gini(x64):
  labels = np.repeat(np.arange(4), 3).astype(np.int32)
  acts = np.full((12, 6), 0.7)
  assert float(kl_loss(acts, labels, 4)) == pytest.approx(0.0, abs=1e-9)
  assert float(gini_loss(acts, labels, 4)) == pytest.approx(1 - 1 / 4, rel=1e-12)


def test_dead_channel_adds_one_to_gini_sum(x64):
  labels = np.array([0, 1, 0, 1], np.int32)
  acts = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  # Channels 0, 1 are one-hot (0 each), channel 2 is dead (1): mean 1/3.
  assert float(gini_loss(acts, labels, 2)) == pytest.approx(1 / 3, rel=1e-12)
  assert float(kl_loss(acts, labels, 2)) == pytest.approx(0.0, abs=1e-9)


def test_kl_is_positive_when_histograms_differ(x64):
  labels = np.array([0, 0, 0, 1], np.int32)  # h^Y = (3/4, 1/4)
  acts = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # h^S = (1/2, 1/2)
  # Default: KL(H^Y || H^S), the authors' code; the option: KL(H^S || H^Y), the paper's order.
  expected = 0.75 * np.log(0.75 / 0.5) + 0.25 * np.log(0.25 / 0.5)
  assert float(kl_loss(acts, labels, 2, epsilon=0.0)) == pytest.approx(expected, rel=1e-12)
  reverse = 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)
  got = kl_loss(acts, labels, 2, direction="channels||labels")
  assert float(got) == pytest.approx(reverse, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("direction", ["labels||channels", "channels||labels"])
def test_kl_directions_match_reference(x64, seed, direction):
  acts, labels, n = random_batch(seed, (12, 3, 2, 5))
  got = kl_loss(acts, labels, n, direction=direction)
  np.testing.assert_allclose(float(got), ref_kl(acts, labels, n, direction), rtol=1e-9)


def test_kl_present_class_without_mass_is_large_but_finite(x64):
  # Class 1 is present but no channel fires for it: the authors' 1e-10 keeps the
  # term finite, h^Y_1 log(h^Y_1 sum / 1e-10).
  labels = np.array([0, 1], np.int32)
  acts = np.array([[1.0, 2.0], [0.0, 0.0]])
  # column masses (2, 0), total 2
  expected = 0.5 * np.log(0.5 / ((2 + 1e-10) / 2)) + 0.5 * np.log(0.5 / (1e-10 / 2))
  assert float(kl_loss(acts, labels, 2)) == pytest.approx(expected, rel=1e-9)


def test_signed_activations_use_their_magnitudes(x64):
  # The maps are |A| averaged over space (the authors' code), so signed maps give
  # the same losses as their absolute values, and every S̄ row stays a distribution.
  rng = np.random.default_rng(3)
  acts = rng.normal(size=(8, 2, 2, 5))
  labels = rng.choice(3, 8).astype(np.int32)
  for fn in LOSSES.values():
    np.testing.assert_allclose(float(fn(acts, labels, 3)), float(fn(np.abs(acts), labels, 3)),
                               rtol=1e-12)
  assert 0.0 <= float(gini_loss(acts, labels, 3)) < 1.0


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", [0, 1])
def test_check_grads(x64, name, seed):
  rng = np.random.default_rng(seed)
  acts = jnp.asarray(rng.uniform(0.2, 2.0, (10, 2, 2, 5)))
  labels = jnp.asarray(rng.choice([0, 2, 3], 10).astype(np.int32))  # class 1 absent
  fn = functools.partial(LOSSES[name], labels=labels, num_classes=4)
  check_grads(fn, (acts,), order=1, modes=("rev",))


def edge_case(kind: str):
  rng = np.random.default_rng(5)
  acts = rng.uniform(0.1, 1.0, (8, 2, 2, 4))
  labels = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
  n = 3
  if kind == "absent_classes":
    n = 7
  elif kind == "dead_channel":
    acts[..., 1] = 0.0
  elif kind == "all_channels_dead":
    acts[:] = 0.0
  elif kind == "identical_features":
    acts[:] = acts[0]
  elif kind == "one_sample_of_a_class":
    labels = np.array([0, 1, 1, 0, 1, 2, 0, 1], np.int32)
  elif kind == "all_samples_one_class":
    labels[:] = 2
  elif kind == "class_with_zero_activations":
    acts[labels == 2] = 0.0
  return acts, labels, n


EDGE_CASES = ["absent_classes", "dead_channel", "all_channels_dead", "identical_features",
              "one_sample_of_a_class", "all_samples_one_class",
              "class_with_zero_activations"]


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("kind", EDGE_CASES)
def test_edge_cases_finite_value_and_gradient(x64, name, kind):
  acts, labels, n = edge_case(kind)
  value, grad = jax.value_and_grad(LOSSES[name])(jnp.asarray(acts), labels, n)
  assert np.isfinite(float(value))
  assert np.all(np.isfinite(np.asarray(grad)))
  np.testing.assert_allclose(float(value), REFS[name](acts, labels, n), rtol=1e-5, atol=1e-12)
  if kind in ("dead_channel", "all_channels_dead"):
    dead = [1] if kind == "dead_channel" else [0, 1, 2, 3]
    np.testing.assert_array_equal(np.asarray(grad)[..., dead], 0.0)


# ---------------------------------------------------------------- jit / sharding
@pytest.mark.parametrize("name", LOSSES)
def test_jit_traces_once_per_shape(name):
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(acts, labels):
    return jax.value_and_grad(LOSSES[name])(acts, labels, 6)

  for seed in range(3):
    acts, labels, _ = random_batch(seed)
    value, _ = step(acts.astype(np.float32), labels)
    assert np.isfinite(float(value))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("acts, labels, n, match", [
    (np.ones((4, 3)), np.zeros(5, np.int32), 2, "`labels` has 5 entries"),
    (np.ones((4, 3)), np.zeros((4, 1), np.int32), 2, "`labels` must have rank 1"),
    (np.ones((4, 3)), np.zeros(4, np.float32), 2, "`labels` must be integer"),
    (np.ones((4, 3)), np.array([0, 1, 2, 1], np.int32), 2, "`labels` must lie in"),
    (np.ones((4, 3)), np.array([0, -1, 1, 1], np.int32), 2, "`labels` must lie in"),
    (np.ones((4, 3), np.int32), np.zeros(4, np.int32), 2, "`activations` must be a floating"),
    (np.ones(4), np.zeros(4, np.int32), 2, "`activations` must have rank >= 2"),
    (np.ones((4, 3)), np.zeros(4, np.int32), 0, "`num_classes` must be an integer >= 1"),
    (np.ones((4, 3)), np.zeros(4, np.int32), None, "`num_classes` must be an integer >= 1"),
])
def test_bad_input_raises(name, acts, labels, n, match):
  with pytest.raises(ValueError, match=match):
    LOSSES[name](acts, labels, n)
