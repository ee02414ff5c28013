"""disc_jax.metrics against float64 NumPy references and hand-computed values."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import jax
import jax.numpy as jnp

from disc_jax import metrics as M

RTOL = 1e-5
ATOL = 1e-5


# ------------------------------------------------------------- float64 NumPy references


def np_intra_class_std(x, y, k):
  out = np.full(k, np.nan)
  for c in range(k):
    xc = x[y == c]
    if len(xc) >= 2:
      out[c] = math.sqrt(((xc - xc.mean(0)) ** 2).sum() / (len(xc) - 1))
  return out


def np_fisher(x, y, k):
  n = len(x)
  mu = x.mean(0)
  s_b = np.zeros(x.shape[1])
  s_w = np.zeros(x.shape[1])
  for c in range(k):
    xc = x[y == c]
    if len(xc):
      s_b += len(xc) / n * (xc.mean(0) - mu) ** 2
      s_w += len(xc) / n * xc.var(0)
  s_t = x.var(0)  # total variance, computed independently of s_b + s_w
  np.testing.assert_allclose(s_b + s_w, s_t, rtol=1e-10, atol=1e-12)
  const = s_t <= 1e-20 * (np.abs(x).max(0) ** 2 + 1e-300)  # constant up to rounding
  return np.where(const, 0.0, s_b / np.where(const, 1, s_t))


def np_mean_abs_corr(x):
  r = np.corrcoef(x, rowvar=False)
  d = x.shape[1]
  return (np.abs(r).sum(1) - 1) / (d - 1)


def np_itra(a, ya, b, yb, normalize=True):
  if normalize:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
  dists = [np.linalg.norm(a[i] - b[j]) for i in range(len(a)) for j in range(len(b))
           if ya[i] == yb[j]]
  return np.mean(dists) if dists else np.nan


def np_log_softmax(z):
  z = z - z.max(1, keepdims=True)
  return z - np.log(np.exp(z).sum(1, keepdims=True))


@pytest.fixture
def data():
  rng = np.random.default_rng(0)
  k, d = 4, 5
  y = rng.integers(0, k, size=64)
  x = rng.normal(size=(64, d)) + 2.0 * rng.normal(size=(k, d))[y]
  return x, y, k


# --------------------------------------------------------------------------- logits


def test_accuracy_and_ce_match_numpy_with_mask():
  rng = np.random.default_rng(1)
  z = rng.normal(size=(20, 6)) * 3
  y = rng.integers(0, 6, size=20)
  mask = (rng.random(20) > 0.3).astype(np.float32)
  y_pad = np.where(mask > 0, y, -1)  # padded rows may carry an invalid label
  keep = mask > 0
  ref_acc = np.mean(z[keep].argmax(1) == y[keep])
  ref_ce = -np_log_softmax(z[keep])[np.arange(keep.sum()), y[keep]].mean()
  np.testing.assert_allclose(M.top1_accuracy(z.astype(np.float32), y_pad, mask), ref_acc,
                             rtol=RTOL)
  np.testing.assert_allclose(M.cross_entropy(z.astype(np.float32), y_pad, mask), ref_ce,
                             rtol=RTOL)
  jitted = jax.jit(M.cross_entropy)(z.astype(np.float32), y_pad, mask)
  np.testing.assert_allclose(jitted, ref_ce, rtol=RTOL)


def test_accuracy_hand_values_and_edge_cases():
  z = jnp.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
  # tie in row 0 goes to the lowest index (class 0).
  assert float(M.top1_accuracy(z, jnp.array([0, 1]))) == 1.0
  assert float(M.top1_accuracy(z, jnp.array([1, 1]))) == 0.5
  assert math.isnan(float(M.top1_accuracy(z, jnp.array([0, 1]), jnp.zeros(2))))
  assert math.isnan(float(M.cross_entropy(z, jnp.array([0, 1]), jnp.zeros(2))))
  # bf16 logits are upcast: CE of uniform logits is log C.
  ce = M.cross_entropy(jnp.zeros((2, 3), jnp.bfloat16), jnp.array([0, 2]))
  assert ce.dtype == jnp.float32
  np.testing.assert_allclose(ce, np.log(3), rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(logits=np.zeros((2, 3), np.float32), labels=np.array([0, 3])), r"\[0, 3\)"),
    (dict(logits=np.zeros((2, 3), np.float32), labels=np.array([0.0, 1.0])), "integer"),
    (dict(logits=np.zeros((2, 3), np.float32), labels=np.array([0, 1, 2])), "shape"),
    (dict(logits=np.zeros((2, 3), np.int32), labels=np.array([0, 1])), "floating"),
    (dict(logits=np.zeros((2, 3), np.float32), labels=np.array([0, 1]), mask=np.ones(3)),
     "mask"),
])
def test_logit_metrics_reject_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    M.top1_accuracy(**kwargs)


# ------------------------------------------------------------------------- features


def test_intra_class_std_hand_values_and_edge_cases():
  x = np.array([[0., 0.], [2., 0.], [0., 0.], [0., 3.], [0., 6.], [5., 5.]], np.float32)
  y = np.array([0, 0, 1, 1, 1, 2])
  got = np.asarray(M.intra_class_std(x, y, 4))
  # class 0: ||(-1,0)||^2 + ||(1,0)||^2 = 2, / (2-1) -> sqrt 2; class 1: 18 / 2 -> 3;
  # class 2 (one sample): NaN (Bessel denominator 0); class 3 (absent): NaN.
  np.testing.assert_allclose(got[:2], [math.sqrt(2), 3.0], rtol=1e-6)
  assert np.isnan(got[2]) and np.isnan(got[3])
  # eq. 12 uses the Euclidean norm, not the mean per-dimension std (which gives 1.0 here).
  per_dim = np.std(x[:2], axis=0, ddof=1).mean()
  assert not np.isclose(got[0], per_dim)


def test_intra_class_std_matches_numpy_masked_and_jitted(data):
  x, y, k = data
  mask = np.arange(len(x)) % 3 != 0
  ref = np_intra_class_std(x[mask], y[mask], k)
  y_pad = np.where(mask, y, 99)  # masked rows' labels are ignored
  got = M.intra_class_std(x.astype(np.float32), y_pad, k, mask=mask)
  np.testing.assert_allclose(got, ref, rtol=RTOL)
  jit = jax.jit(M.intra_class_std, static_argnums=2)(x.astype(np.float32), y, k)
  np.testing.assert_allclose(jit, np_intra_class_std(x, y, k), rtol=RTOL)


def test_class_centroids(data):
  x, y, k = data
  got = np.asarray(M.class_centroids(x.astype(np.float32), y, k + 1))
  for c in range(k):
    np.testing.assert_allclose(got[c], x[y == c].mean(0), rtol=RTOL, atol=ATOL)
  assert np.isnan(got[k]).all()  # absent class


def test_nearest_centroid_matches_numpy(data):
  x, y, k = data
  xt = x.astype(np.float32)
  cen = np.stack([x[y == c].mean(0) for c in range(k)])
  ref_pred = ((x[:, None, :] - cen[None]) ** 2).sum(-1).argmin(1)
  np.testing.assert_array_equal(M.nearest_centroid_predict(xt, cen.astype(np.float32)),
                                ref_pred)
  ref = np.mean(ref_pred == y)
  np.testing.assert_allclose(M.nearest_centroid_accuracy(xt, y, cen.astype(np.float32)), ref)
  # centroids from the training features: same as the explicit class means.
  test_x, test_y = xt[::2], y[::2]
  got = M.nearest_centroid_accuracy(test_x, test_y, M.class_centroids(xt, y, k))
  np.testing.assert_allclose(got, np.mean(ref_pred[::2] == test_y))


def test_nearest_centroid_hand_values_mask_and_absent_class():
  cen = np.array([[0., 0.], [np.nan, np.nan], [10., 0.]], np.float32)  # class 1 absent
  x = np.array([[1., 0.], [6., 0.], [4., 0.], [100., 100.]], np.float32)
  assert M.nearest_centroid_predict(x, cen).tolist() == [0, 2, 0, 2]
  y = np.array([0, 2, 2, 1])
  assert float(M.nearest_centroid_accuracy(x, y, cen)) == 0.5
  assert float(M.nearest_centroid_accuracy(x, y, cen, mask=np.array([1, 1, 0, 0]))) == 1.0
  with pytest.raises(ValueError, match="centroids"):
    M.nearest_centroid_accuracy(x, y, np.zeros((3, 5), np.float32))


def test_fisher_score_matches_numpy_and_bounds(data):
  x, y, k = data
  x = np.concatenate([x, np.full((len(x), 1), 3.7)], 1)  # a constant dimension
  got = np.asarray(M.fisher_score(x.astype(np.float32), y, k))
  ref = np_fisher(x, y, k)
  np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
  assert got[-1] == 0.0
  assert (got >= 0).all() and (got <= 1).all()
  mask = np.arange(len(x)) >= 10
  got_m = M.fisher_score(x.astype(np.float32), y, k, mask=mask)
  np.testing.assert_allclose(got_m, np_fisher(x[mask], y[mask], k), rtol=1e-4, atol=1e-6)
  jit = jax.jit(M.fisher_score, static_argnums=2)(x.astype(np.float32), y, k)
  np.testing.assert_allclose(jit, got, rtol=1e-6, atol=1e-7)


def test_fisher_score_hand_values():
  # dim 0 separates the classes perfectly (no within-class spread): 1;
  # dim 1 has identical class distributions: 0; dim 2: S_b = 1, S_w = 1 -> 0.5.
  x = np.array([[0., 1., -2.], [0., -1., 0.], [4., 1., 0.], [4., -1., 2.]], np.float32)
  got = M.fisher_score(x, np.array([0, 0, 1, 1]), 2)
  np.testing.assert_allclose(got, [1.0, 0.0, 0.5], atol=1e-7)
  assert np.isnan(np.asarray(M.fisher_score(x, np.array([0, 0, 1, 1]), 2,
                                            mask=np.zeros(4)))).all()


def test_mean_abs_correlation_matches_numpy(data):
  x, _, _ = data
  x = x.copy()
  x[:, 1] = -2 * x[:, 0] + 1  # perfectly (anti-)correlated pair
  got = M.mean_abs_correlation(x.astype(np.float32))
  np.testing.assert_allclose(got, np_mean_abs_corr(x), rtol=1e-4, atol=1e-6)
  mask = np.arange(len(x)) < 40
  got_m = M.mean_abs_correlation(x.astype(np.float32), mask=mask)
  np.testing.assert_allclose(got_m, np_mean_abs_corr(x[mask]), rtol=1e-4, atol=1e-6)


def test_mean_abs_correlation_constant_dim_and_bad_input():
  x = np.array([[1., 5., 2.], [2., 5., 4.], [3., 5., 6.]], np.float32)
  # dim 1 is constant: correlation 0 with everything; dims 0 and 2: |corr| = 1.
  np.testing.assert_allclose(M.mean_abs_correlation(x), [0.5, 0.0, 0.5], atol=1e-6)
  with pytest.raises(ValueError, match="2 dimensions"):
    M.mean_abs_correlation(x[:, :1])


def test_itra_distance_matches_numpy(data):
  x, y, _ = data
  a, ya, b, yb = x[:30], y[:30], x[30:], y[30:]
  for normalize in (True, False):
    got = M.itra_normalized_distance(a.astype(np.float32), ya, b.astype(np.float32), yb,
                                     normalize=normalize)
    np.testing.assert_allclose(got, np_itra(a, ya, b, yb, normalize), rtol=RTOL)
  m1, m2 = np.arange(30) % 2 == 0, np.arange(34) < 20
  got = M.itra_normalized_distance(a.astype(np.float32), ya, b.astype(np.float32), yb,
                                   mask_1=m1, mask_2=m2)
  np.testing.assert_allclose(got, np_itra(a[m1], ya[m1], b[m2], yb[m2]), rtol=RTOL)


def test_itra_distance_scale_invariance_and_edge_cases():
  a = np.array([[1., 0.], [3., 3.]], np.float32)
  b = np.array([[0., 2.], [2., 2.]], np.float32)
  ya, yb = np.array([0, 1]), np.array([0, 1])
  # pairs (a0, b0): sqrt 2 and (a1, b1): 0 on the unit circle -> mean sqrt(2)/2.
  d = float(M.itra_normalized_distance(a, ya, b, yb))
  np.testing.assert_allclose(d, math.sqrt(2) / 2, rtol=1e-6)
  np.testing.assert_allclose(M.itra_normalized_distance(7 * a, ya, 0.1 * b, yb), d, rtol=1e-6)
  raw = M.itra_normalized_distance(a, ya, b, yb, normalize=False)
  np.testing.assert_allclose(raw, (math.sqrt(5) + math.sqrt(2)) / 2, rtol=1e-6)
  assert math.isnan(float(M.itra_normalized_distance(a, ya, b, yb + 5)))  # no pair
  with pytest.raises(ValueError, match="feature dimension"):
    M.itra_normalized_distance(a, ya, np.zeros((2, 3), np.float32), yb)


# ---------------------------------------------------------------------- accumulator


def test_accumulator_over_padded_batches_equals_full_set(data):
  x, y, k = data
  rng = np.random.default_rng(3)
  logits = rng.normal(size=(len(x), k)).astype(np.float32)
  acc = M.EvalAccumulator()
  bs = 24  # 64 rows -> batches of 24, 24, 16 (+8 padding rows with label 0)
  for s in range(0, len(x), bs):
    n = min(bs, len(x) - s)
    pad = bs - n
    mask = np.concatenate([np.ones(n), np.zeros(pad)]).astype(np.float32)
    lb = np.concatenate([logits[s:s + n], np.full((pad, k), 50.0, np.float32)])
    yb = np.concatenate([y[s:s + n], np.zeros(pad, int)])
    fb = np.concatenate([x[s:s + n], np.full((pad, x.shape[1]), 1e6)]).astype(np.float32)
    acc.update(jnp.asarray(lb), jnp.asarray(yb), jnp.asarray(mask), features=fb)
  res = acc.result()
  assert res["count"] == len(x)
  np.testing.assert_allclose(res["accuracy"], float(M.top1_accuracy(logits, y)), rtol=1e-6)
  np.testing.assert_allclose(res["cross_entropy"], float(M.cross_entropy(logits, y)),
                             rtol=1e-5)
  feats, labs = acc.features()
  np.testing.assert_array_equal(labs, y)
  np.testing.assert_allclose(feats, x.astype(np.float32))
  summary = M.feature_metrics(feats, labs, k, centroids={"train": M.class_centroids(
      feats, labs, k)})
  np.testing.assert_allclose(summary["intra_class_std"],
                             np.nanmean(np_intra_class_std(x, y, k)), rtol=1e-5)
  np.testing.assert_allclose(summary["fisher_score"], np_fisher(x, y, k).mean(), rtol=1e-4)
  np.testing.assert_allclose(summary["mean_abs_correlation"], np_mean_abs_corr(x).mean(),
                             rtol=1e-4)
  assert 0.0 <= summary["nearest_centroid_accuracy/train"] <= 1.0


def test_accumulator_takes_batch_sharded_arrays(data, mesh):
  x, y, k = data
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  logits = np.random.default_rng(4).normal(size=(len(x), k)).astype(np.float32)
  mask = (np.arange(len(x)) < 60).astype(np.float32)
  put = lambda a: jax.device_put(a, rows)
  acc = M.EvalAccumulator()
  acc.update(put(logits), put(y), put(mask), features=put(x.astype(np.float32)))
  np.testing.assert_allclose(acc.result()["accuracy"],
                             float(M.top1_accuracy(logits[:60], y[:60])), rtol=1e-6)
  np.testing.assert_allclose(acc.features()[0], x[:60].astype(np.float32))


def test_accumulator_empty_and_without_features():
  acc = M.EvalAccumulator()
  assert math.isnan(acc.result()["accuracy"]) and acc.result()["count"] == 0
  acc.update(np.zeros((2, 3), np.float32), np.array([0, 1]))  # no mask: all rows real
  assert acc.result()["count"] == 2
  with pytest.raises(ValueError, match="features="):
    acc.features()


def test_docstring_examples():
  failures, tried = doctest.testmod(M, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert tried > 10 and failures == 0
