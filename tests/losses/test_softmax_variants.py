"""L-Softmax, SigSoftmax, Noisy Softmax and Virtual Softmax against float64 NumPy."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from disc_jax import losses
from tests.helpers import head_batch, np_cross_entropy_rows

B, D, C = 6, 5, 4


def _data(seed=0, b=B, d=D, c=C, dtype=np.float64):
  return head_batch(seed, b, d, c, dtype)


# ------------------------------------------------------------ NumPy references

def np_ce(logits, y):
  return np_cross_entropy_rows(logits, y).mean()


def np_target_geometry(x, y, w):
  nx = np.linalg.norm(x, axis=1)
  nw = np.linalg.norm(w, axis=0)[y]
  dot = (x * w[:, y].T).sum(axis=1)
  cos = np.clip(dot / (nx * nw), -1.0, 1.0)
  return nx * nw, cos


def np_psi(theta, m):
  k = np.minimum(np.floor(m * theta / np.pi), m - 1)
  return (-1.0) ** k * np.cos(m * theta) - 2.0 * k


def np_lsoftmax_logits(x, y, w, b, m, lam):
  z = x @ w
  nprod, cos = np_target_geometry(x, y, w)
  rows = np.arange(len(y))
  z[rows, y] = (lam * z[rows, y] + nprod * np_psi(np.arccos(cos), m)) / (1.0 + lam)
  return z + b


def np_sigsoftmax(z):
  e = np.exp(z - z.max(axis=1, keepdims=True)) / (1.0 + np.exp(-z))
  return e / e.sum(axis=1, keepdims=True)


def np_noisy_logits(x, y, w, b, alpha, xi):
  z = x @ w
  nprod, cos = np_target_geometry(x, y, w)
  theta = np.arccos(cos)
  noisy = np.minimum(theta + alpha * theta * np.abs(xi), np.pi)
  z[np.arange(len(y)), y] = nprod * np.cos(noisy)
  return z + b


def np_virtual_logits(x, y, w, b):
  nprod, _ = np_target_geometry(x, y, w)
  return np.concatenate([x @ w + b, (nprod + b[y])[:, None]], axis=1)


# ------------------------------------------------------------------ L-Softmax

@pytest.mark.parametrize("m", [1, 2, 3, 4])
def test_l_softmax_matches_numpy(m):
  x, y, w, b = _data(1)
  with jax.enable_x64(True):
    for lam in (0.0, 3.5):
      got = losses.l_softmax_logits(x, y, w, b, margin=m, lam=lam)
      want = np_lsoftmax_logits(x, y, w, b, m, lam)
      np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
      loss = losses.l_softmax_loss(x, y, w, b, margin=m, lam=lam)
      np.testing.assert_allclose(loss, np_ce(np_lsoftmax_logits(x, y, w, b, m, lam), y), rtol=1e-10)


def test_l_softmax_margin_one_is_cross_entropy_and_large_lambda_tends_to_it():
  x, y, w, b = _data(2)
  with jax.enable_x64(True):
    ce = np_ce(x @ w + b, y)
    np.testing.assert_allclose(losses.l_softmax_loss(x, y, w, b, margin=1, lam=7.0), ce, rtol=1e-12)
    near = losses.l_softmax_loss(x, y, w, b, margin=4, lam=1e9)
    np.testing.assert_allclose(near, ce, rtol=1e-7)
    # The margin makes the target harder: the loss grows with m at lam = 0.
    vals = [float(losses.l_softmax_loss(x, y, w, b, margin=m)) for m in (1, 2, 3, 4)]
    assert all(a < b_ for a, b_ in zip(vals, vals[1:]))


def test_psi_is_continuous_decreasing_and_matches_theta_form():
  theta = np.linspace(0.0, np.pi, 2001)
  with jax.enable_x64(True):
    for m in (1, 2, 3, 4):
      psi = np.asarray(losses.l_softmax_psi(np.cos(theta), m))
      np.testing.assert_allclose(psi, np_psi(theta, m), atol=1e-9)
      assert np.all(np.diff(psi) <= 1e-12)
      assert psi[-1] == pytest.approx(-(2 * m - 1))  # psi(pi) = -(2m - 1)


def test_lambda_schedule_is_the_reference_formula():
  base, gamma, power, lmin = 1000.0, 2e-5, 45.0, 0.0
  for step in (0, 1, 999, 20_000, 100_000):
    want = max(lmin, base * (1 + gamma * (step + 1)) ** (-power))
    got = losses.l_softmax_lambda(step, base=base, gamma=gamma, power=power, lambda_min=lmin)
    np.testing.assert_allclose(got, want, rtol=1e-5)
  assert float(losses.l_softmax_lambda(10**6, lambda_min=5.0)) == 5.0
  traced = jax.jit(lambda s: losses.l_softmax_lambda(s, gamma=1.0, power=1.0))
  np.testing.assert_allclose(traced(jnp.int32(3)), 1000.0 / 5.0, rtol=1e-6)


def test_l_softmax_gradients_away_from_the_joins():
  x, y, w, b = _data(4)
  _, cos = np_target_geometry(x, y, w)
  for m in (2, 3, 4):  # the joins of psi are at cos(j pi / m)
    joins = np.cos(np.arange(1, m) * np.pi / m)
    assert np.min(np.abs(cos[:, None] - joins[None])) > 2e-2
  with jax.enable_x64(True):
    for m in (2, 3, 4):
      fn = lambda x_, w_, b_, m=m: losses.l_softmax_loss(x_, y, w_, b_, margin=m, lam=0.5)
      check_grads(jax.jit(fn), (x, w, b), order=1, modes=["rev"])


# ----------------------------------------------------------------- SigSoftmax

def test_sigsoftmax_matches_numpy_and_sums_to_one():
  x, y, w, b = _data(4)
  z = x @ w + b
  with jax.enable_x64(True):
    p = np.asarray(losses.sigsoftmax(z))
    np.testing.assert_allclose(p, np_sigsoftmax(z), rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    want = -np.log(np_sigsoftmax(z)[np.arange(B), y]).mean()
    np.testing.assert_allclose(losses.sigsoftmax_loss(x, y, w, b), want, rtol=1e-12)
    check_grads(jax.jit(lambda x_, w_, b_: losses.sigsoftmax_loss(x_, y, w_, b_)), (x, w, b),
                order=1, modes=["rev"])
  # float32 at extreme logits: finite, still a distribution.
  zz = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 1.0, -2e4]], np.float32)
  p32 = losses.sigsoftmax(zz)
  assert np.all(np.isfinite(p32)) and np.allclose(p32.sum(axis=1), 1.0, atol=1e-6)
  assert np.all(np.isfinite(losses.log_sigsoftmax(zz)))


# -------------------------------------------------------------- Noisy Softmax

def test_noisy_softmax_matches_numpy_and_zero_noise_is_cross_entropy():
  x, y, w, b = _data(5)
  key = jax.random.key(11)
  with jax.enable_x64(True):
    xi = np.asarray(jax.random.normal(key, (B,), jnp.float64))  # one draw per sample
    for alpha in (0.3, 2.0):  # 2.0 makes some noisy angles hit the pi cap
      got = losses.noisy_softmax_logits(x, y, w, b, rng=key, alpha=alpha)
      np.testing.assert_allclose(got, np_noisy_logits(x, y, w, b, alpha, xi), rtol=1e-7, atol=1e-7)
    zero = losses.noisy_softmax_loss(x, y, w, b, rng=key, alpha=0.0)
    np.testing.assert_allclose(zero, np_ce(x @ w + b, y), rtol=1e-13)
    # The noise only lowers the target logit, and other logits are untouched.
    noisy = np.asarray(losses.noisy_softmax_logits(x, y, w, b, rng=key, alpha=0.5))
    plain = np.asarray(jnp.asarray(x) @ jnp.asarray(w) + jnp.asarray(b))
    rows = np.arange(B)
    assert np.all(noisy[rows, y] <= plain[rows, y] + 1e-12)
    mask = np.ones_like(plain, bool); mask[rows, y] = False
    np.testing.assert_array_equal(noisy[mask], plain[mask])
    noisy_fn = lambda x_, w_, b_: losses.noisy_softmax_loss(x_, y, w_, b_, rng=key, alpha=0.3)
    check_grads(jax.jit(noisy_fn), (x, w, b), order=1, modes=["rev"])


def test_noisy_softmax_noise_anneals_with_the_angle():
  # A feature aligned with W_y (theta ~ 0) gets no perturbation; a misaligned one does.
  w = np.eye(3)
  x = np.array([[5.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
  y = np.array([0, 0], np.int32)
  with jax.enable_x64(True):
    got = np.asarray(losses.noisy_softmax_logits(x, y, w, None, rng=jax.random.key(0), alpha=1.0))
  assert got[0, 0] == pytest.approx(5.0, abs=1e-6)
  assert got[1, 0] < 1.0 - 1e-3


# ------------------------------------------------------------ Virtual Softmax

def test_virtual_softmax_logit_and_loss():
  x, y, w, b = _data(6)
  with jax.enable_x64(True):
    v = np.asarray(losses.virtual_softmax_logits(x, y, w, None))
    want = np.linalg.norm(w, axis=0)[y] * np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(v[:, -1], want, rtol=1e-12)
    got = np.asarray(losses.virtual_softmax_logits(x, y, w, b))
    np.testing.assert_allclose(got, np_virtual_logits(x, y, w, b), rtol=1e-12)
    assert np.all(got[:, -1] >= got[np.arange(B), y] - 1e-12)  # bounds the target
    loss = losses.virtual_softmax_loss(x, y, w, b)
    np.testing.assert_allclose(loss, np_ce(np_virtual_logits(x, y, w, b), y), rtol=1e-12)
    assert float(loss) > np_ce(x @ w + b, y)  # an extra negative class
    check_grads(jax.jit(lambda x_, w_, b_: losses.virtual_softmax_loss(x_, y, w_, b_)), (x, w, b),
                order=1, modes=["rev"])


# ------------------------------------------------- extremes, jit, bad inputs

_LOSSES = {
    "l_softmax": lambda x, y, w, b: losses.l_softmax_loss(x, y, w, b, margin=4, lam=0.0),
    "sigsoftmax": losses.sigsoftmax_loss,
    "noisy": lambda x, y, w, b: losses.noisy_softmax_loss(x, y, w, b, rng=jax.random.key(1),
                                                          alpha=0.5),
    "virtual": losses.virtual_softmax_loss,
}


@pytest.mark.parametrize("name", sorted(_LOSSES))
def test_finite_at_extreme_logits_and_zero_features(name):
  fn = _LOSSES[name]
  x, y, w, b = _data(7, dtype=np.float32)
  x = x * (1e4 / np.abs(x @ w).max())  # logits of order 1e4
  zero = np.zeros_like(x)
  for feats in (x, zero):
    val, grads = jax.jit(jax.value_and_grad(fn, argnums=(0, 2, 3)))(feats, y, w, b)
    assert np.isfinite(val), (name, val)
    assert all(np.all(np.isfinite(g)) for g in grads), name


@pytest.mark.parametrize("name", sorted(_LOSSES))
def test_jit_compiles_once(name):
  fn = jax.jit(chex.assert_max_traces(_LOSSES[name], n=1))
  for seed in (0, 1, 2):
    x, y, w, b = _data(seed, dtype=np.float32)
    assert np.isfinite(fn(x, y, w, b))


def test_lambda_can_be_traced_inside_jit():
  x, y, w, b = _data(8, dtype=np.float32)
  fn = jax.jit(lambda s: losses.l_softmax_loss(x, y, w, b, margin=2,
                                               lam=losses.l_softmax_lambda(s)))
  assert np.isfinite(fn(jnp.int32(0))) and np.isfinite(fn(jnp.int32(10**5)))


def test_bad_inputs_raise_value_errors_naming_the_argument():
  x, y, w, b = _data(9, dtype=np.float32)
  key = jax.random.key(0)
  for m in (0, 5, 2.0, True):
    with pytest.raises(ValueError, match="`margin`"):
      losses.l_softmax_loss(x, y, w, b, margin=m)
  with pytest.raises(ValueError, match="`lam`"):
    losses.l_softmax_loss(x, y, w, b, lam=-1.0)
  with pytest.raises(ValueError, match="`gamma`"):
    losses.l_softmax_lambda(0, gamma=-1.0)
  with pytest.raises(ValueError, match="`kernel`.*transposed"):
    losses.sigsoftmax_loss(x, y, w.T, b)
  with pytest.raises(ValueError, match="`bias`"):
    losses.virtual_softmax_loss(x, y, w, b[:-1])
  with pytest.raises(ValueError, match="`labels`"):
    losses.l_softmax_loss(x, y[:-1], w, b)
  with pytest.raises(ValueError, match="`labels`"):
    losses.virtual_softmax_loss(x, np.full_like(y, C), w, b)
  with pytest.raises(ValueError, match="`features`"):
    losses.sigsoftmax_loss(x[None], y, w, b)
  with pytest.raises(ValueError, match="`rng`"):
    losses.noisy_softmax_loss(x, y, w, b, rng=None)
  with pytest.raises(ValueError, match="`alpha`"):
    losses.noisy_softmax_loss(x, y, w, b, rng=key, alpha=-0.1)
  assert math.isfinite(float(losses.sigsoftmax_loss(x, y, w, None)))  # bias-free head
