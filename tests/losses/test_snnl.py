"""Tests of soft_nearest_neighbor_loss against a float64 NumPy transcription of σ²R eq. 2."""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from disc_jax.losses import _pairwise
from disc_jax.losses import soft_nearest_neighbor_loss as snnl
from tests.helpers import FRESH_SEED, edge_case_batch

SEEDS = [0, 1, 2, FRESH_SEED]

snnl_jit = jax.jit(snnl)
snnl_value_and_grad = jax.jit(jax.value_and_grad(snnl))


# ---------------------------------------------------------------- reference
def ref_snnl(x, labels, temperature=1.0) -> float:
  """Eq. 2 with loops, in log space (log-sum-exp by hand) so tiny T cannot underflow."""
  x = np.asarray(x, np.float64)
  terms = []
  for i in range(len(x)):
    logits_all, logits_same = [], []
    for j in range(len(x)):
      if j == i:
        continue
      logit = -float(np.sum((x[i] - x[j]) ** 2)) / temperature
      logits_all.append(logit)
      if labels[j] == labels[i]:
        logits_same.append(logit)
    if not logits_same:  # no same-class partner: left out of the mean
      continue

    def lse(values):
      top = max(values)
      return top + math.log(sum(math.exp(v - top) for v in values))

    terms.append(lse(logits_all) - lse(logits_same))
  return float(np.mean(terms)) if terms else 0.0


def random_batch(seed, batch=12, dim=4, num_classes=4):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(batch, dim))
  labels = rng.integers(0, num_classes, batch).astype(np.int32)
  return x, labels


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("temperature", [1.0, 0.3, 5.0])
def test_matches_numpy_reference(x64, seed, temperature):
  x, labels = random_batch(seed)
  got = snnl_jit(x, labels, temperature=temperature)
  assert got.dtype == jnp.float64
  np.testing.assert_allclose(float(got), ref_snnl(x, labels, temperature), rtol=1e-5)


def test_float32_close_to_reference():
  x, labels = random_batch(7)
  got = snnl_jit(x.astype(np.float32), labels)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(float(got), ref_snnl(x, labels), rtol=1e-4)


def test_bfloat16_input_computed_in_float32():
  x, labels = random_batch(3)
  xb = jnp.asarray(x, jnp.bfloat16)
  got = snnl(xb, labels)
  assert got.dtype == jnp.float32
  rounded = np.asarray(xb.astype(jnp.float32), np.float64)
  np.testing.assert_allclose(float(got), ref_snnl(rounded, labels), rtol=1e-4)


def test_blocked_rows_match_reference(x64, monkeypatch):
  jax.clear_caches()
  monkeypatch.setattr(_pairwise, "_BLOCK_ELEMS", 40)  # 10 rows of 13: 3 blocks of 3 + 1
  x, labels = random_batch(11, batch=10)
  assert _pairwise._block_size(10, 10) == 4
  np.testing.assert_allclose(float(snnl(x, labels)), ref_snnl(x, labels), rtol=1e-5)
  check_grads(lambda a: snnl(a, labels), (x,), order=1, modes=("rev",))
  monkeypatch.undo()
  jax.clear_caches()


# ---------------------------------------------------------------- closed forms
def test_separated_clusters_give_zero_and_swapped_labels_the_gap(x64):
  x = np.array([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [5.0, 6.0]])
  assert float(snnl(x, np.array([0, 0, 1, 1]))) == pytest.approx(0.0, abs=1e-18)
  # Labels (0, 1, 0, 1): each point's partner is at 50 or 61 instead of 1.
  expected = np.mean([-np.log(np.exp(-50) / (np.exp(-1) + np.exp(-50) + np.exp(-61))),
                      -np.log(np.exp(-50) / (np.exp(-1) + np.exp(-41) + np.exp(-50)))] * 2)
  got = float(snnl(x, np.array([0, 1, 0, 1])))
  assert got == pytest.approx(expected, rel=1e-12)


def test_one_class_gives_zero(x64):
  x, _ = random_batch(4)
  assert float(snnl(x, np.zeros(len(x), np.int32))) == pytest.approx(0.0, abs=1e-14)


def test_identical_features_give_log_of_class_ratio(x64):
  # All distances 0: term_i = log((B - 1) / (n_{y_i} - 1)).
  labels = np.array([0, 0, 0, 1, 1, 2], np.int32)
  got = float(snnl(np.ones((6, 3)), labels))
  expected = np.mean([np.log(5 / 2)] * 3 + [np.log(5 / 1)] * 2)  # class 2 left out
  assert got == pytest.approx(expected, rel=1e-12)


def test_samples_without_partner_are_left_out(x64):
  x, _ = random_batch(6, batch=7)
  labels = np.array([0, 0, 1, 1, 1, 2, 3], np.int32)  # classes 2 and 3: singletons
  np.testing.assert_allclose(float(snnl(x, labels)), ref_snnl(x, labels), rtol=1e-10)
  # The singletons still count in the others' denominators: relabelling them
  # into a new common class adds their two terms to the mean.
  paired = labels.copy()
  paired[5:] = 4
  assert float(snnl(x, paired)) != pytest.approx(float(snnl(x, labels)))
  assert float(snnl(x, np.arange(7, dtype=np.int32))) == 0.0  # nobody has a partner


def test_tiny_temperature_is_stable(x64):
  x, labels = random_batch(8)
  value, grad = jax.value_and_grad(snnl)(x, labels, temperature=1e-4)
  assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
  np.testing.assert_allclose(float(value), ref_snnl(x, labels, 1e-4), rtol=1e-8)


def test_float32_far_apart_points_do_not_underflow():
  x = np.array([[0.0], [1.0], [300.0], [301.0]], np.float32)
  value, grad = jax.value_and_grad(snnl)(x, np.array([0, 1, 0, 1]))
  assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
  # exp(-299^2) underflows in float32, the log-space form does not.
  assert float(value) == pytest.approx(ref_snnl(x, np.array([0, 1, 0, 1])), rel=1e-4)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_check_grads(x64, seed, temperature):
  x, labels = random_batch(seed, batch=8, dim=3, num_classes=3)
  check_grads(functools.partial(snnl, labels=labels, temperature=temperature), (x,),
              order=1, modes=("rev",))


EDGE_CASES = ["absent_classes", "identical_features", "one_sample_of_a_class",
              "all_samples_one_class", "no_sample_with_partner", "single_sample"]


def edge_case(kind):
  x, labels, _ = edge_case_batch("every_class_a_singleton" if kind == "no_sample_with_partner"
                                 else kind)
  if kind == "absent_classes":
    labels = np.array([0, 5, 5, 0, 9, 9, 0, 5], np.int32)
  return x, labels

@pytest.mark.parametrize("kind", EDGE_CASES)
def test_edge_cases_finite_value_and_gradient(x64, kind):
  x, labels = edge_case(kind)
  value, grad = snnl_value_and_grad(x, labels)
  assert np.isfinite(float(value))
  assert np.all(np.isfinite(np.asarray(grad)))
  np.testing.assert_allclose(float(value), ref_snnl(x, labels), rtol=1e-5, atol=1e-12)


# ---------------------------------------------------------------- jit / sharding
def test_jit_traces_once_per_shape():
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(x, labels):
    return jax.value_and_grad(snnl)(x, labels, temperature=0.5)

  for seed in range(3):
    x, labels = random_batch(seed)
    value, _ = step(x.astype(np.float32), labels)
    assert np.isfinite(float(value))


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("x, labels, kwargs, match", [
    (np.ones((4, 3)), np.zeros(5, np.int32), {}, "`labels` has 5 entries"),
    (np.ones((4, 3)), np.zeros((4, 1), np.int32), {}, "`labels` must have rank 1"),
    (np.ones((4, 3)), np.zeros(4, np.float32), {}, "`labels` must be integer"),
    (np.ones((4, 3), np.int32), np.zeros(4, np.int32), {}, "`features` must be a floating"),
    (np.ones(4), np.zeros(4, np.int32), {}, "`features` must have rank 2"),
    (np.ones((4, 3)), np.zeros(4, np.int32), {"temperature": 0.0}, "`temperature` must be > 0"),
    (np.ones((4, 3)), np.zeros(4, np.int32), {"temperature": np.inf},
     "`temperature` must be > 0 and finite"),
])
def test_bad_input_raises(x, labels, kwargs, match):
  with pytest.raises(ValueError, match=match):
    snnl(x, labels, **kwargs)


# ---------------------------------------------------------------- scale
@pytest.mark.slow
def test_runs_at_batch_8192_width_2048():
  b, dim = 8192, 2048
  keys = jax.random.split(jax.random.key(0), 2)
  x = jax.random.normal(keys[0], (b, dim))
  labels = jax.random.randint(keys[1], (b,), 0, 100)
  compiled = jax.jit(jax.value_and_grad(snnl)).lower(x, labels).compile()
  # At most one [B, B] float32 matrix plus O(B D) buffers.
  assert compiled.memory_analysis().temp_size_in_bytes < b * b * 4 + 16 * b * dim * 4
  value, grad = compiled(x, labels)
  assert np.isfinite(float(value)) and bool(jnp.all(jnp.isfinite(grad)))
