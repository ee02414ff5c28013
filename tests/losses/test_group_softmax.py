"""Tests of group_softmax_loss against a float64 NumPy transcription of eq. 3-13."""

from __future__ import annotations

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P
from jax.test_util import check_grads

from disc_jax.losses import (discriminativity_scores, group_logits, group_softmax_loss,
                             grouping_permutation)
from disc_jax.losses._group_softmax import check_groups
from tests.helpers import FRESH_SEED

SEEDS = [0, 1, 2, FRESH_SEED]
VARIANTS = list(itertools.product(["I", "II"], ["discriminative", "random", "fixed"]))
_STATIC = ("groups", "loss_type", "grouping")
# Jitted forms keep the suite fast (eager mode compiles every op per shape); the
# eager function is exercised by the input-check tests and the doctests.
_jit_loss = jax.jit(group_softmax_loss, static_argnames=_STATIC)
_jit_value_and_grad = jax.jit(jax.value_and_grad(group_softmax_loss, argnums=(0, 2, 3)),
                              static_argnames=_STATIC)


def _full_kwargs(groups=(1, 2, 4), loss_type="II", grouping="discriminative", rng=None):
  """Every static argument spelled out, so equal settings share one compile."""
  groups = (groups,) if isinstance(groups, int) else tuple(groups)
  rng = jax.random.key(0) if rng is None else rng
  return dict(groups=groups, loss_type=loss_type, grouping=grouping, rng=rng)


def jloss(x, y, W, b, **kwargs):
  return _jit_loss(x, y, W, b, **_full_kwargs(**kwargs))


def jvalue_and_grad(x, y, W, b, **kwargs):
  return _jit_value_and_grad(x, y, W, b, **_full_kwargs(**kwargs))

# One variant per grouping for the tests that need a compile per variant but
# check something the loss type does not change (collectives, tracing).
GROUPING_VARIANTS = [("II", "discriminative"), ("I", "random"), ("II", "fixed")]


@functools.partial(jax.jit, static_argnames=("loss_type", "grouping"))
def _loss_of_params(x, W, b, y, key, *, loss_type, grouping):
  return group_softmax_loss(x, y, W, b, loss_type=loss_type, grouping=grouping, rng=key)


# ---------------------------------------------------------------- reference
def ref_ingredient_logits(x, W, b):
  """Eq. 3: z_jc = W_jc x_j + b_c / D, [D, C] for one sample."""
  return W * x[:, None] + b[None, :] / len(x)


def ref_scores(x, y, W, b):
  """Eq. 9 (left form) averaged over the batch."""
  C = W.shape[1]
  lam = np.zeros(W.shape[0])
  for xb, yb in zip(x, y):
    Z = ref_ingredient_logits(xb, W, b)
    others = [c for c in range(C) if c != yb]
    lam += Z[:, yb] - Z[:, others].sum(axis=1) / (C - 1)
  return lam / len(x)


def ref_permutation(x, y, W, b, grouping, key):
  D = W.shape[0]
  if grouping == "discriminative":
    return np.argsort(ref_scores(x, y, W, b), kind="stable")
  if grouping == "random":  # the documented contract: jax.random.permutation(rng, D)
    return np.asarray(jax.random.permutation(key, D))
  return np.arange(D)


def logsumexp(v):
  top = v.max()
  return top + np.log(np.exp(v - top).sum())


def ref_loss(x, y, W, b, groups, loss_type, grouping, key=None):
  """Eq. 5, 7/8 per group, 12/13 over 𝔾, averaged over the batch."""
  x, W, b = (np.asarray(a, np.float64) for a in (x, W, b))
  perm = ref_permutation(x, y, W, b, grouping, key)
  total = 0.0
  for xb, yb in zip(x, y):
    Z = ref_ingredient_logits(xb, W, b)
    per_set = 0.0
    for G in groups:
      blocks = perm.reshape(G, -1)
      ell = 0.0
      for i in range(G):
        zbar = Z[blocks[i]].sum(axis=0)                  # eq. 5
        if loss_type == "I":
          ell += -(G * zbar[yb] - logsumexp(G * zbar)) / G  # eq. 7
        else:
          ell += -(zbar[yb] - logsumexp(zbar))              # eq. 8
      per_set += ell
    total += per_set / len(groups)                       # eq. 12, 13
  return total / len(x)


def random_problem(seed, B=8, D=8, C=4):
  rng = np.random.default_rng(seed)
  x = np.maximum(rng.normal(size=(B, D)), 0) + 0.1 * rng.normal(size=(B, D))
  W = rng.normal(size=(D, C))
  b = 0.5 * rng.normal(size=C)
  y = rng.integers(0, C, B).astype(np.int32)
  return x, y, W, b


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("loss_type, grouping", VARIANTS)
@pytest.mark.parametrize("seed", SEEDS)
def test_matches_numpy_reference(x64, loss_type, grouping, seed):
  x, y, W, b = random_problem(seed)
  key = jax.random.key(seed % 1000)
  got = jloss(x, y, W, b, groups=(1, 2, 4), loss_type=loss_type, grouping=grouping, rng=key)
  assert got.dtype == jnp.float64
  expected = ref_loss(x, y, W, b, (1, 2, 4), loss_type, grouping, key)
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


@pytest.mark.parametrize("groups, loss_type", [((2,), "I"), ((1, 2, 4, 8), "II")])
def test_group_sets_match_reference(x64, groups, loss_type):
  x, y, W, b = random_problem(3)
  got = jloss(x, y, W, b, groups=groups, loss_type=loss_type)
  expected = ref_loss(x, y, W, b, groups if isinstance(groups, tuple) else (groups,),
                      loss_type, "discriminative")
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_float32_close_to_reference():
  x, y, W, b = random_problem(9)
  got = jloss(*(a.astype(np.float32) if a.dtype.kind == "f" else a for a in (x, y, W, b)))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), ref_loss(x, y, W, b, (1, 2, 4), "II",
                                                  "discriminative"), rtol=1e-4)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_discriminativity_scores_and_permutation(x64, seed):
  x, y, W, b = random_problem(seed)
  np.testing.assert_allclose(np.asarray(discriminativity_scores(x, y, W, b)),
                             ref_scores(x, y, W, b), rtol=1e-10, atol=1e-12)
  perm = np.asarray(grouping_permutation(x, y, W, b))
  np.testing.assert_array_equal(perm, np.argsort(ref_scores(x, y, W, b), kind="stable"))
  np.testing.assert_array_equal(np.asarray(grouping_permutation(x, y, W, b, grouping="fixed")),
                                np.arange(8))
  rand = np.asarray(grouping_permutation(x, y, W, b, grouping="random",
                                         rng=jax.random.key(seed)))
  np.testing.assert_array_equal(np.sort(rand), np.arange(8))


def test_group_logits_sum_to_full_logits(x64):
  x, _, W, b = random_problem(4, D=12)
  perm = jnp.asarray(np.random.default_rng(0).permutation(12))
  for g in (1, 3, 12):
    logits = group_logits(jnp.asarray(x), jnp.asarray(W), jnp.asarray(b), perm, g)
    assert logits.shape == (8, g, 4)
    np.testing.assert_allclose(np.asarray(logits.sum(axis=1)), x @ W + b, rtol=1e-10)


def test_random_grouping_depends_on_rng(x64):
  x, y, W, b = random_problem(5)
  values = {float(jloss(x, y, W, b, grouping="random", rng=jax.random.key(k)))
            for k in range(4)}
  assert len(values) > 1


# ---------------------------------------------------------------- closed forms
@pytest.mark.parametrize("loss_type, grouping", GROUPING_VARIANTS)
def test_single_group_equals_optax_cross_entropy(x64, loss_type, grouping):
  x, y, W, b = random_problem(6)
  expected = optax.losses.softmax_cross_entropy_with_integer_labels(
      jnp.asarray(x) @ jnp.asarray(W) + jnp.asarray(b), jnp.asarray(y)).mean()
  got = jloss(x, y, W, b, groups=(1,), loss_type=loss_type, grouping=grouping,
              rng=jax.random.key(0))
  np.testing.assert_allclose(float(got), float(expected), rtol=1e-14)


def test_int_groups_is_one_group_count():
  assert check_groups(2, 8) == (2,)
  assert check_groups([1, 2, 4], 8) == (1, 2, 4)


def test_single_group_equals_optax_cross_entropy_float32():
  x, y, W, b = (a.astype(np.float32) if a.dtype.kind == "f" else a for a in random_problem(8))
  expected = optax.losses.softmax_cross_entropy_with_integer_labels(x @ W + b, y).mean()
  np.testing.assert_allclose(float(jloss(x, y, W, b, groups=1)), float(expected), rtol=1e-6)


@pytest.mark.parametrize("seed", [10, 11])
def test_upper_bounds_of_proposition_1(x64, seed):
  # ℓ_1 <= ℓ_G^I <= ℓ_G^II (eq. 14), here for the discriminative grouping.
  x, y, W, b = random_problem(seed)
  kw = dict(rng=jax.random.key(1))
  ce = float(jloss(x, y, W, b, groups=1, **kw))
  for g in (2, 8):
    t1 = float(jloss(x, y, W, b, groups=g, loss_type="I", **kw))
    t2 = float(jloss(x, y, W, b, groups=g, loss_type="II", **kw))
    assert ce <= t1 + 1e-12 and t1 <= t2 + 1e-12


def test_discriminative_grouping_puts_least_discriminative_first(x64):
  # Component j only helps class 0 with weight j: λ grows with j, so G = 2 puts
  # components 0-3 in group 1 and 4-7 in group 2 even though the kernel rows
  # are stored in reverse order.
  D, C = 8, 3
  order = np.arange(D)[::-1]
  W = np.zeros((D, C))
  W[:, 0] = order.astype(np.float64)
  x = np.ones((4, D))
  y = np.zeros(4, np.int32)
  perm = np.asarray(grouping_permutation(x, y, W, np.zeros(C)))
  np.testing.assert_array_equal(perm, np.arange(D)[::-1])


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("loss_type, grouping", GROUPING_VARIANTS)
def test_check_grads(x64, loss_type, grouping):
  x, y, W, b = (jnp.asarray(a) for a in random_problem(12))
  fn = functools.partial(_loss_of_params, y=y, key=jax.random.key(3), loss_type=loss_type,
                         grouping=grouping)
  check_grads(fn, (x, W, b), order=1, modes=("rev",))


def test_grouping_carries_no_gradient(x64):
  x, y, W, b = (jnp.asarray(a) for a in random_problem(13))
  perm = grouping_permutation(x, y, W, b)
  key = jax.random.key(0)
  _, got = jvalue_and_grad(x, y, W, b, loss_type="II", grouping="discriminative", rng=key)
  # Same loss with the (constant) permutation applied by hand, as "fixed" grouping.
  _, fixed = jvalue_and_grad(x[:, perm], y, W[perm], b, loss_type="II", grouping="fixed",
                             rng=key)
  inv = jnp.argsort(perm)
  np.testing.assert_allclose(np.asarray(got[0]), np.asarray(fixed[0][:, inv]), rtol=1e-12)
  np.testing.assert_allclose(np.asarray(got[1]), np.asarray(fixed[1][inv]), rtol=1e-12)
  np.testing.assert_allclose(np.asarray(got[2]), np.asarray(fixed[2]), rtol=1e-12)


def edge_case(kind: str):
  x, y, W, b = random_problem(14)
  if kind == "absent_classes":
    y = np.array([0, 2, 0, 2, 0, 2, 2, 0], np.int32)
  elif kind == "dead_channel":
    x[:, 3] = 0.0
  elif kind == "identical_features":
    x[:] = x[0]
  elif kind == "one_sample_of_a_class":
    y = np.array([0, 1, 1, 2, 2, 1, 2, 1], np.int32)
  elif kind == "all_samples_one_class":
    y[:] = 1
  elif kind == "huge_logits":
    x *= 1e3
  elif kind == "zero_classifier":
    W[:] = 0.0
    b[:] = 0.0
  return x, y, W, b


@pytest.mark.parametrize("kind", ["absent_classes", "dead_channel", "identical_features",
                                  "one_sample_of_a_class", "all_samples_one_class",
                                  "huge_logits", "zero_classifier"])
@pytest.mark.parametrize("loss_type, grouping", VARIANTS)
def test_edge_cases_finite_value_and_gradient(x64, kind, loss_type, grouping):
  x, y, W, b = edge_case(kind)
  kw = dict(loss_type=loss_type, grouping=grouping, rng=jax.random.key(2))
  value, grads = jvalue_and_grad(x, y, W, b, **kw)
  assert np.isfinite(float(value))
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
  np.testing.assert_allclose(float(value), ref_loss(x, y, W, b, (1, 2, 4), loss_type,
                                                    grouping, jax.random.key(2)), rtol=1e-5)


# ---------------------------------------------------------------- jit / sharding
@pytest.mark.parametrize("loss_type, grouping", GROUPING_VARIANTS)
def test_jit_traces_once_per_shape(loss_type, grouping):
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(x, y, W, b, key):
    return jax.value_and_grad(group_softmax_loss, argnums=(0, 2, 3))(
        x, y, W, b, loss_type=loss_type, grouping=grouping, rng=key)

  for seed in range(3):
    x, y, W, b = (a.astype(np.float32) if a.dtype.kind == "f" else a
                  for a in random_problem(seed))
    value, _ = step(x, y, W, b, jax.random.key(seed))
    assert np.isfinite(float(value))


def _global_problem(seed):
  x, y, W, b = random_problem(seed, B=16)
  return x.astype(np.float32), y, W.astype(np.float32), b.astype(np.float32)


def test_discriminative_scores_are_global_under_shard_map(mesh):
  x, y, W, b = _global_problem(33)
  sharded = jax.jit(jax.shard_map(functools.partial(grouping_permutation, axis_name="data"),
                                  mesh=mesh, in_specs=(P("data"), P("data"), P(), P()),
                                  out_specs=P()))
  np.testing.assert_array_equal(np.asarray(sharded(x, y, W, b)),
                                np.asarray(grouping_permutation(x, y, W, b)))


# ---------------------------------------------------------------- bad input
F = np.ones((4, 8), np.float32)
Y = np.zeros(4, np.int32)
W_ = np.ones((8, 3), np.float32)
B_ = np.zeros(3, np.float32)


@pytest.mark.parametrize("args, kwargs, match", [
    ((F, np.zeros(5, np.int32), W_, B_), {}, "`labels` has 5 entries"),
    ((F, np.zeros((4, 1), np.int32), W_, B_), {}, "`labels` must have rank 1"),
    ((F, np.zeros(4, np.float32), W_, B_), {}, "`labels` must be integer"),
    ((F, np.array([0, 1, 3, 0], np.int32), W_, B_), {}, "`labels` must lie in"),
    ((F.astype(np.int32), Y, W_, B_), {}, "`features` must be a floating"),
    ((F[0], Y, W_, B_), {}, "`features` must have rank 2"),
    ((F, Y, np.ones((6, 3), np.float32), B_), {}, "`kernel` must have shape"),
    ((F, Y, W_, np.zeros(4, np.float32)), {}, "`bias` must have shape"),
    ((F, Y, np.ones((8, 1), np.float32), np.zeros(1, np.float32)), {}, "`kernel` must have C >= 2"),
    ((F, Y, W_, B_), {"groups": (1, 3)}, "`groups` \\[3\\] do not divide"),
    ((F, Y, W_, B_), {"groups": ()}, "`groups` must name at least one"),
    ((F, Y, W_, B_), {"groups": (0, 2)}, "`groups` must be an integer >= 1"),
    ((F, Y, W_, B_), {"loss_type": "III"}, "`loss_type` must be one of"),
    ((F, Y, W_, B_), {"grouping": "sorted"}, "`grouping` must be one of"),
    ((F, Y, W_, B_), {"grouping": "random"}, "`rng` is required"),
])
def test_bad_input_raises(args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    group_softmax_loss(*args, **kwargs)


def test_bad_input_raises_under_jit_for_static_checks():
  with pytest.raises(ValueError, match="do not divide"):
    jax.jit(functools.partial(group_softmax_loss, groups=(3,)))(F, Y, W_, B_)
