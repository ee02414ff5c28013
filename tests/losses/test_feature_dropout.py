"""Penultimate-feature dropout and adversarial dropout against float64 NumPy."""

from __future__ import annotations

import itertools

import chex
import jax
import numpy as np
import pytest
from jax.test_util import check_grads

from disc_jax import losses
from tests.helpers import head_batch, np_cross_entropy_rows

B, D, C = 5, 8, 3


def _data(seed=0, b=B, d=D, c=C, dtype=np.float64):
  return head_batch(seed, b, d, c, dtype)


np_ce_rows = np_cross_entropy_rows


def np_masked_logits(x, mask, w, b):
  scale = x.shape[1] / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
  return (x * mask * scale) @ w + b


def np_adversarial_mask(x, y, w, b, delta, base):
  """Algorithm 1 of Park et al. with one linearised step, row by row."""
  d = x.shape[1]
  budget = int(d * delta)
  out = base.copy()
  for i in range(len(y)):
    scale = d / max(base[i].sum(), 1.0)
    z = (x[i] * base[i] * scale) @ w + b
    p = np.exp(z - z.max()); p /= p.sum()
    p[y[i]] -= 1.0
    jac = x[i] * scale * (w @ p)           # dCE/d mask_j
    gain = (1.0 - 2.0 * base[i]) * jac
    order = np.argsort(-gain, kind="stable")[:budget]
    for j in order:
      if gain[j] > 0:
        out[i, j] = 1.0 - base[i, j]
  return out


# -------------------------------------------------------------------- dropout

def test_feature_dropout_rate_zero_is_cross_entropy_and_matches_numpy():
  x, y, w, b = _data(1)
  key = jax.random.key(3)
  with jax.enable_x64(True):
    ce = np_ce_rows(x @ w + b, y).mean()
    np.testing.assert_allclose(losses.feature_dropout_loss(x, y, w, b, rate=0.0), ce, rtol=1e-12)
    for rate in (0.2, 0.5):
      keep = np.asarray(jax.random.bernoulli(key, 1.0 - rate, x.shape), np.float64)
      want = np_ce_rows((x * keep / (1.0 - rate)) @ w + b, y).mean()
      got = losses.feature_dropout_loss(x, y, w, b, rate=rate, rng=key)
      np.testing.assert_allclose(got, want, rtol=1e-12)
    drop_fn = lambda x_, w_, b_: losses.feature_dropout_loss(x_, y, w_, b_, rate=0.5, rng=key)
    check_grads(jax.jit(drop_fn), (x, w, b), order=1, modes=["rev"])


def test_feature_dropout_drops_the_requested_fraction():
  # With W = I the logits are the dropped-and-rescaled features themselves, so
  # the gradient w.r.t. the features is non-zero exactly on the kept units.
  x = np.ones((64, 128), np.float32)
  w = np.eye(128, dtype=np.float32)
  y = np.zeros(64, np.int32)
  for rate in (0.2, 0.5):
    g = jax.grad(lambda x_: losses.feature_dropout_loss(x_, y, w, None, rate=rate,
                                                         rng=jax.random.key(0)))(x)
    assert abs(np.mean(np.asarray(g) != 0) - (1.0 - rate)) < 0.02


# ------------------------------------------------------- adversarial dropout

@pytest.mark.parametrize("delta", [0.25, 0.5])
def test_adversarial_mask_matches_numpy(delta):
  x, y, w, b = _data(2)
  with jax.enable_x64(True):
    got = np.asarray(losses.adversarial_dropout_mask(x, y, w, b, delta=delta))
    np.testing.assert_array_equal(got, np_adversarial_mask(x, y, w, b, delta, np.ones_like(x)))
    # From all ones the adversary only drops, at most floor(delta * D) units.
    assert np.all(got <= 1) and np.all((1 - got).sum(axis=1) <= int(D * delta))
    # A random base mask: both directions may flip.
    base = np.asarray(jax.random.bernoulli(jax.random.key(5), 0.6, x.shape), np.float64)
    got = np.asarray(losses.adversarial_dropout_mask(x, y, w, b, delta=delta, base_mask=base))
    np.testing.assert_array_equal(got, np_adversarial_mask(x, y, w, b, delta, base))
    assert np.all(np.abs(got - base).sum(axis=1) <= int(D * delta))


def test_adversarial_mask_raises_the_loss_and_is_near_the_exhaustive_optimum():
  x, y, w, b = _data(3, d=10)
  delta = 0.2  # two flips of 10
  with jax.enable_x64(True):
    adv = np.asarray(losses.adversarial_dropout_mask(x, y, w, b, delta=delta))
  clean = np_ce_rows(x @ w + b, y)
  found = np_ce_rows(np_masked_logits(x, adv, w, b), y)
  assert np.all(found >= clean - 1e-12) and np.any(found > clean + 1e-3)
  best = np.full(len(y), -np.inf)  # exhaustive: every mask dropping <= 2 units
  for k in range(3):
    for idx in itertools.combinations(range(10), k):
      m = np.ones_like(x); m[:, list(idx)] = 0.0
      best = np.maximum(best, np_ce_rows(np_masked_logits(x, m, w, b), y))
  gap = (best - found) / np.maximum(best - clean, 1e-12)
  assert np.median(gap) < 0.5  # the linearised step captures most of the increase


def test_adversarial_loss_matches_numpy_and_limits():
  x, y, w, b = _data(4, d=40)
  with jax.enable_x64(True):
    clean = np_ce_rows(x @ w + b, y).mean()
    adv = np_adversarial_mask(x, y, w, b, 0.05, np.ones_like(x))
    want = clean + 2.0 * np_ce_rows(np_masked_logits(x, adv, w, b), y).mean()
    got = losses.adversarial_dropout_loss(x, y, w, b, delta=0.05, weight=2.0)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # No flip possible (delta * D < 1): (1 + weight) * CE; weight 0: CE.
    np.testing.assert_allclose(losses.adversarial_dropout_loss(x, y, w, b, delta=0.02, weight=1.0),
                               2.0 * clean, rtol=1e-12)
    np.testing.assert_allclose(losses.adversarial_dropout_loss(x, y, w, b, weight=0.0), clean,
                               rtol=1e-12)
    adv_fn = lambda x_, w_, b_: losses.adversarial_dropout_loss(x_, y, w_, b_, delta=0.05)
    check_grads(jax.jit(adv_fn), (x, w, b), order=1, modes=["rev"])


def test_paper_setting_flips_ten_of_2048_units():
  x, y, w, b = _data(5, b=2, d=2048, c=5, dtype=np.float32)
  adv = np.asarray(losses.adversarial_dropout_mask(x, y, w, b, delta=0.005))
  np.testing.assert_array_equal((1 - adv).sum(axis=1), [10, 10])


def test_adversarial_dropout_weight_ramp():
  for epoch in (0, 20, 79, 80, 200):
    t = min(epoch / 80.0, 1.0)
    np.testing.assert_allclose(losses.adversarial_dropout_weight(epoch),
                               10.0 * np.exp(-5.0 * (1.0 - t) ** 2), rtol=1e-6)
  assert float(losses.adversarial_dropout_weight(3, weight_max=2.0, rampup_epochs=0)) == 2.0


# ------------------------------------------------- extremes, jit, bad inputs

_LOSSES = {
    "dropout": lambda x, y, w, b: losses.feature_dropout_loss(x, y, w, b, rate=0.5,
                                                              rng=jax.random.key(1)),
    "adversarial": lambda x, y, w, b: losses.adversarial_dropout_loss(x, y, w, b, delta=0.25),
}


@pytest.mark.parametrize("name", sorted(_LOSSES))
def test_finite_at_extreme_logits_and_zero_features(name):
  fn = _LOSSES[name]
  x, y, w, b = _data(6, dtype=np.float32)
  x = x * (1e4 / np.abs(x @ w).max())
  for feats in (x, np.zeros_like(x)):
    val, grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 2, 3)))(feats, y, w, b)
    assert np.isfinite(val) and all(np.all(np.isfinite(g)) for g in grads), name


@pytest.mark.parametrize("name", sorted(_LOSSES))
def test_jit_compiles_once(name):
  fn = jax.jit(chex.assert_max_traces(_LOSSES[name], n=1))
  for seed in (0, 1, 2):
    x, y, w, b = _data(seed, dtype=np.float32)
    assert np.isfinite(fn(x, y, w, b))


def test_bad_inputs_raise_value_errors_naming_the_argument():
  x, y, w, b = _data(7, dtype=np.float32)
  key = jax.random.key(0)
  for rate in (-0.1, 1.0, 1.5):
    with pytest.raises(ValueError, match="`rate`"):
      losses.feature_dropout_loss(x, y, w, b, rate=rate, rng=key)
  with pytest.raises(ValueError, match="`rng`"):
    losses.feature_dropout_loss(x, y, w, b, rate=0.2)
  for delta in (-0.1, 1.5):
    with pytest.raises(ValueError, match="`delta`"):
      losses.adversarial_dropout_loss(x, y, w, b, delta=delta)
  with pytest.raises(ValueError, match="`weight`"):
    losses.adversarial_dropout_loss(x, y, w, b, weight=-1.0)
  with pytest.raises(ValueError, match="`base_mask`"):
    losses.adversarial_dropout_mask(x, y, w, b, delta=0.5, base_mask=np.ones((B, D + 1)))
  with pytest.raises(ValueError, match="`kernel`"):
    losses.adversarial_dropout_loss(x, y, w[:-1], b)
  with pytest.raises(ValueError, match="`labels`"):
    losses.feature_dropout_loss(x, y.astype(np.float32), w, b, rate=0.0)
  with pytest.raises(ValueError, match="`rampup_epochs`"):
    losses.adversarial_dropout_weight(1, rampup_epochs=-1)
  assert np.isfinite(losses.adversarial_dropout_loss(x, y, w, None, rate=0.3, rng=key))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_unit_that_the_mask_drops_still_gives_nan_under_jit(bad):
  rng = jax.random.PRNGKey(3)
  x = np.random.RandomState(0).randn(4, 6).astype(np.float32)
  w = np.random.RandomState(1).randn(6, 3).astype(np.float32)
  y = np.array([0, 1, 2, 0])
  kept = np.asarray(jax.random.bernoulli(rng, 0.5, x.shape))
  row, unit = np.argwhere(~kept)[0]
  x[row, unit] = bad                      # a unit the mask drops
  loss = jax.jit(lambda x: losses.feature_dropout_loss(x, y, w, None, rate=0.5, rng=rng))
  assert np.isnan(loss(x))
  per_row = losses.feature_dropout_loss(x, y, w, None, rate=0.5, rng=rng, reduction="none")
  assert np.isnan(per_row[row]) and np.isfinite(np.delete(np.asarray(per_row), row)).all()
