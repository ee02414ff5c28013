"""disc_jax.retrieval against float64 NumPy loops, scikit-learn and hand-computed values."""

from __future__ import annotations

import doctest
import os

import chex
import numpy as np
import pytest
import jax
import jax.numpy as jnp
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from disc_jax import metrics as M
from disc_jax import retrieval as R

SEED = int(os.environ.get("DISC_JAX_TEST_SEED", "0"))
NAMES = ("precision_at_1", "r_precision", "map_at_r", "knn_accuracy")


# ------------------------------------------------------------------ float64 NumPy reference


def np_retrieval(qx, ql, rx, rl, *, same_set=False, k=10, distance="euclidean"):
  """Brute force: every query's full ranking by a stable sort (ties -> lower index)."""
  qx, rx = np.asarray(qx, np.float64), np.asarray(rx, np.float64)
  ql, rl = np.asarray(ql), np.asarray(rl)
  out = {name: [] for name in NAMES}
  for i in range(len(qx)):
    if distance == "euclidean":
      dist = ((rx - qx[i]) ** 2).sum(1)
    else:
      norms = np.linalg.norm(rx, axis=1) * np.linalg.norm(qx[i])
      dist = -np.where(norms > 0, rx @ qx[i] / np.where(norms > 0, norms, 1), 0.0)
    cand = np.delete(np.arange(len(rx)), i) if same_set else np.arange(len(rx))
    order = cand[np.argsort(dist[cand], kind="stable")]
    labels = rl[order]
    rel = labels == ql[i]
    r = int((rl[cand] == ql[i]).sum())
    if r == 0:
      continue
    hits, ap = 0, 0.0
    for j in range(r):
      if rel[j]:
        hits += 1
        ap += hits / (j + 1)
    out["precision_at_1"].append(float(rel[0]))
    out["r_precision"].append(rel[:r].sum() / r)
    out["map_at_r"].append(ap / r)
    top = list(labels[:k])
    counts = {c: top.count(c) for c in top}
    best = max(counts.values())
    pred = next(c for c in top if counts[c] == best)  # tie: the label that ranks first
    out["knn_accuracy"].append(float(pred == ql[i]))
  return {name: float(np.mean(v)) if v else float("nan") for name, v in out.items()}


def grid_case(seed, n=40, d=2):
  """Small integer features (many exact distance ties) and labels with one-member classes."""
  rng = np.random.default_rng(seed)
  x = rng.integers(-2, 3, size=(n, d)).astype(np.float32)
  y = np.concatenate([[10, 11, 12], rng.permutation(np.arange(n - 3) % 5)])  # 3 singletons
  return x, y


def cosine_case(seed, n=40, d=3):
  """Gaussian directions plus exact duplicates and power-of-2 rescaled copies (exact ties)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d)).astype(np.float32)
  x[n // 2:n // 2 + 8] = x[:8] * np.array([1, 2, 4, 0.5, 1, 2, 1, 8], np.float32)[:, None]
  y = rng.integers(0, 4, size=n)
  y[-2:] = [20, 21]
  return x, y


def assert_metrics_close(got, want, atol=1e-6):
  chex.assert_trees_all_close(got, want, atol=atol, rtol=0)


# ------------------------------------------------------------------------- retrieval metrics


@pytest.mark.parametrize("same_set", [True, False])
@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("case,distance", [(grid_case, "euclidean"), (cosine_case, "cosine"),
                                           (cosine_case, "euclidean")])
def test_matches_numpy_reference(case, distance, same_set, k):
  x, y = case(SEED)
  if same_set:
    qx, ql, rx, rl = x, y, x, y
  else:  # disjoint halves: some query classes are missing from the references
    qx, ql, rx, rl = x[:15], y[:15], x[15:], y[15:]
  got = R.retrieval_metrics(qx, ql, rx, rl, same_set=same_set, k=k, distance=distance,
                            block_size=7)
  assert_metrics_close(got, np_retrieval(qx, ql, rx, rl, same_set=same_set, k=k,
                                         distance=distance))


def test_grid_case_has_ties_and_lone_queries():
  x, y = grid_case(SEED)
  d = ((x[:, None] - x[None]) ** 2).sum(-1)
  assert any(len(set(row)) < len(row) - 1 for row in d)  # some query sees equal distances
  stats = R._per_query(x, y, x, y, same_set=True, k=3, distance="euclidean", block_size=8)
  assert not stats["evaluated"][:3].any() and stats["evaluated"][3:].all()


def test_hand_computed_values_and_index_tie_break():
  # References at equal distance 1 from the query at 0: index 0 (label 1) and 1 (label 0).
  rx = np.array([[1.], [-1.], [3.], [-3.]], np.float32)
  rl = np.array([1, 0, 0, 1])
  got = R.retrieval_metrics(np.zeros((1, 1), np.float32), np.array([0]), rx, rl, k=2)
  # Ranking: labels 1, 0 | 0, 1 with R = 2: rel = 0, 1.
  assert_metrics_close(got, {"precision_at_1": 0.0, "r_precision": 0.5, "map_at_r": 0.25,
                             "knn_accuracy": 0.0})  # vote tie 1:1 -> label of rank 1
  got = R.retrieval_metrics(np.zeros((1, 1), np.float32), np.array([0]), rx[[1, 0, 2, 3]],
                            rl[[1, 0, 2, 3]], k=2)
  assert_metrics_close(got, {"precision_at_1": 1.0, "r_precision": 0.5, "map_at_r": 0.5,
                             "knn_accuracy": 1.0})


def test_signed_zero_distances_tie():
  # A zero query has cosine similarity +0 or -0 to every reference; both are a tie.
  rx = np.array([[-1., -1.], [1., 1.]], np.float32)
  got = R.retrieval_metrics(np.zeros((1, 2), np.float32), np.array([0]), rx, np.array([0, 1]),
                            k=1, distance="cosine")
  assert got["precision_at_1"] == 1.0 and got["knn_accuracy"] == 1.0


@pytest.mark.parametrize("k", [1, 50])
def test_top_k_breaks_ties_by_lower_index(k):
  rng = np.random.default_rng(SEED)
  values = jnp.asarray(rng.integers(0, 5, size=(3, 20_000)).astype(np.float32))
  top, idx = jax.lax.top_k(values, k)
  want = np.lexsort((np.arange(20_000)[None].repeat(3, 0), -np.asarray(values)), axis=1)[:, :k]
  np.testing.assert_array_equal(np.asarray(idx), want)
  chex.assert_shape((top, idx), (3, k))


def test_same_set_excludes_self_not_duplicates():
  x = np.array([[0.], [0.], [5.]], np.float32)
  y = np.array([0, 0, 1])
  got = R.retrieval_metrics(x, y, x, y, same_set=True, k=1)
  # Queries 0 and 1 find each other (a duplicate, not themselves); query 2 is lone.
  assert_metrics_close(got, dict.fromkeys(NAMES, 1.0))
  got = R.retrieval_metrics(x, y, x, y, same_set=False, k=1)  # each finds itself first
  assert_metrics_close(got, {"precision_at_1": 1.0, "r_precision": 1.0, "map_at_r": 1.0,
                             "knn_accuracy": 1.0})


def test_lone_queries_are_excluded_and_all_lone_is_nan():
  rx = np.array([[0.], [1.]], np.float32)
  got = R.retrieval_metrics(np.array([[0.], [0.]], np.float32), np.array([0, 7]), rx,
                            np.array([0, 1]), k=1)
  assert_metrics_close(got, dict.fromkeys(NAMES, 1.0))  # the label-7 query does not count
  got = R.retrieval_metrics(rx, np.array([0, 1]), rx, np.array([0, 1]), same_set=True, k=1)
  assert all(np.isnan(v) for v in got.values())


def test_map_at_r_does_not_depend_on_k():
  x, y = cosine_case(SEED)
  runs = [R.retrieval_metrics(x, y, x, y, same_set=True, k=k) for k in (1, 5, 30)]
  for run in runs[1:]:
    for name in ("precision_at_1", "r_precision", "map_at_r"):
      assert run[name] == pytest.approx(runs[0][name], abs=1e-7)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("same_set", [True, False])
def test_blocked_equals_one_block(distance, same_set):
  rng = np.random.default_rng(SEED)
  x = rng.normal(size=(103, 6)).astype(np.float32)
  y = rng.integers(0, 6, size=103)
  rx, rl = (x, y) if same_set else (x[::-1] + 0.5, y[::-1])
  kw = dict(same_set=same_set, k=5, distance=distance)
  one = R._per_query(x, y, rx, rl, block_size=103, **kw)
  for block_size in (1, 10):
    chex.assert_trees_all_close(R._per_query(x, y, rx, rl, block_size=block_size, **kw), one,
                                atol=1e-6, rtol=0)


def test_block_function_compiles_once():
  x, y = cosine_case(SEED, n=50)
  before = R._block_stats._cache_size()
  R.retrieval_metrics(x, y, x, y, same_set=True, k=3, block_size=7)  # 8 blocks, one padded
  assert R._block_stats._cache_size() - before == 1


@pytest.mark.parametrize("same_set", [True, False])
def test_block_temporaries_match_the_docstring_formula(same_set):
  n, d, block, num_neighbors = 20_000, 16, 64, 3_000
  shapes = [jax.ShapeDtypeStruct(s, t) for s, t in
            [((n, d), jnp.float32), ((n,), jnp.int32), ((n,), jnp.int32),
             ((n, d), jnp.float32), ((n,), jnp.float32), ((n,), jnp.int32)]]
  compiled = R._block_stats.lower(jnp.int32(0), *shapes, block=block,
                                  num_neighbors=num_neighbors, k=10, same_set=same_set,
                                  distance="euclidean").compile()
  temp = compiled.memory_analysis().temp_size_in_bytes
  assert temp <= block * (4 * n + 8 * num_neighbors) + 64 * 1024


def test_input_errors():
  x = np.zeros((4, 2), np.float32)
  y = np.arange(4)
  with pytest.raises(ValueError, match="`k`=4 exceeds the 3"):
    R.retrieval_metrics(x, y, x, y, same_set=True, k=4)
  with pytest.raises(ValueError, match="same_set=True"):
    R.retrieval_metrics(x[:3], y[:3], x, y, same_set=True, k=1)
  with pytest.raises(ValueError, match="distance"):
    R.retrieval_metrics(x, y, x, y, distance="manhattan", k=1)
  with pytest.raises(ValueError, match="dimensions"):
    R.retrieval_metrics(x, y, x[:, :1], y, k=1)
  with pytest.raises(ValueError, match="integer"):
    R.retrieval_metrics(x, y.astype(np.float32), x, y, k=1)
  with pytest.raises(ValueError, match="NaN"):
    R.retrieval_metrics(x, y, np.full((4, 2), np.nan, np.float32), y, k=1)


def test_large_10k_by_60k():
  """10k queries x 60k references at D = 84 (100 classes, R ~ 600): bounded memory, and the
  per-query results equal a run with another block size and the NumPy loop on a subset."""
  rng = np.random.default_rng(SEED)
  num_classes, d = 100, 84
  centres = rng.normal(size=(num_classes, d)).astype(np.float32) * 0.3
  rl, ql = rng.integers(0, num_classes, 60_000), rng.integers(0, num_classes, 10_000)
  rx = centres[rl] + rng.normal(size=(60_000, d)).astype(np.float32)
  qx = centres[ql] + rng.normal(size=(10_000, d)).astype(np.float32)
  kw = dict(same_set=False, k=10, distance="euclidean")
  full = R._per_query(qx, ql, rx, rl, block_size=512, **kw)
  chex.assert_shape(list(full.values()), (10_000,))
  assert full["evaluated"].all()
  assert 0 < full["map_at_r"].mean() < full["r_precision"].mean() < 1
  sub = R._per_query(qx[:300], ql[:300], rx, rl, block_size=128, **kw)
  chex.assert_trees_all_close(sub, {name: v[:300] for name, v in full.items()}, atol=1e-6,
                              rtol=0)
  # float32 distances may order near-equal float64 distances either way among 60k references.
  assert_metrics_close(R.retrieval_metrics(qx[:40], ql[:40], rx, rl, **kw),
                       np_retrieval(qx[:40], ql[:40], rx, rl, **kw), atol=1e-3)


def test_reexported_from_metrics():
  assert M.retrieval_metrics is R.retrieval_metrics
  assert M.clustering_metrics is R.clustering_metrics


def test_benchmark_script_runs_on_tiny_cases(monkeypatch):
  from experiments import benchmark_retrieval as B
  monkeypatch.setattr(B, "CASES", {"tiny": (50, 50, 4, 3, True, 2.0),
                                   B.PROJECTED: (200, 60, 4, 2, True, 2.0)})
  tiny = B.run_case("tiny", block_size=16, fraction_queries=20)
  assert tiny["block_temp_mib"] <= tiny["formula_temp_mib"] + 0.1
  projected = B.run_case(B.PROJECTED, block_size=16, fraction_queries=20)
  assert projected["measured_queries"] == 20 and projected["projected_wall_s"] >= 0
  assert "projected" in B._markdown([tiny, projected], None)


def test_doctests():
  failures, tried = doctest.testmod(R, optionflags=doctest.NORMALIZE_WHITESPACE)
  assert tried >= 5 and failures == 0


# ------------------------------------------------------------------------------- clustering


def blobs(seed, num_classes=4, per_class=30, d=5, spread=50.0):
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(num_classes, d)) * spread
  y = np.repeat(np.arange(num_classes), per_class)
  return (centres[y] + rng.normal(size=(len(y), d))).astype(np.float32), y


def test_kmeans_recovers_separated_blobs():
  x, y = blobs(SEED)
  got = R.clustering_metrics(x, y * 3 + 1, seed=SEED)
  assert got == {"nmi": 1.0, "ami": 1.0}


def test_kmeans_deterministic_for_a_seed():
  x, _ = blobs(SEED, spread=1.0)  # overlapping: the result depends on the initialisation
  a1, c1 = R.kmeans(x, 4, seed=3)
  a2, c2 = R.kmeans(x, 4, seed=3)
  chex.assert_shape((a1, c1), ((120,), (4, 5)))
  chex.assert_trees_all_equal((a1, c1), (a2, c2))
  assert a1.dtype == jnp.int32 and int(a1.min()) >= 0 and int(a1.max()) < 4


def test_kmeans_centres_are_cluster_means():
  x, _ = blobs(SEED, spread=2.0)
  assign, centres = R.kmeans(x, 3, seed=SEED, num_init=1)
  a, c = np.asarray(assign), np.asarray(centres)
  for j in range(3):
    if (a == j).any():
      np.testing.assert_allclose(c[j], x[a == j].mean(0), atol=1e-4)
  d = ((x[:, None] - c[None]) ** 2).sum(-1)
  np.testing.assert_array_equal(a, d.argmin(1))  # a fixed point of Lloyd's iteration


@pytest.mark.parametrize("num_clusters", [None, 2, 6])
def test_clustering_metrics_match_sklearn_on_the_clustering(num_clusters):
  x, y = blobs(SEED, spread=1.5)
  got = R.clustering_metrics(x, y, num_clusters=num_clusters, seed=1)
  assign = np.asarray(R.kmeans(x, num_clusters or 4, seed=1)[0])
  assert_metrics_close(got, {"nmi": normalized_mutual_info_score(y, assign),
                             "ami": adjusted_mutual_info_score(y, assign)}, atol=1e-12)


def test_sklearn_scores_on_given_clusterings():
  # The sklearn calls of clustering_metrics, checked on hand-made partitions.
  y = np.array([0, 0, 0, 1, 1, 1])
  perfect, swapped, merged = np.array([2, 2, 2, 0, 0, 0]), y[::-1], np.zeros(6, int)
  assert normalized_mutual_info_score(y, perfect) == pytest.approx(1.0)
  assert normalized_mutual_info_score(y, swapped) == pytest.approx(1.0)
  assert normalized_mutual_info_score(y, merged) == pytest.approx(0.0)
  x = np.array([[0.], [0.1], [0.2], [9.], [9.1], [9.2]], np.float32)
  assert R.clustering_metrics(x, y) == {"nmi": 1.0, "ami": 1.0}
  assert R.clustering_metrics(x, y, num_clusters=1)["nmi"] == 0.0


def test_clustering_import_error_names_the_extra(monkeypatch):
  import builtins
  real_import = builtins.__import__

  def no_sklearn(name, *args, **kwargs):
    if name.startswith("sklearn"):
      raise ImportError("No module named 'sklearn'")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_sklearn)
  with pytest.raises(ImportError, match=r"pip install 'disc_jax\[train\]'"):
    R.clustering_metrics(np.zeros((2, 1), np.float32), np.array([0, 1]))


def test_kmeans_input_errors():
  with pytest.raises(ValueError, match="exceeds the 2 points"):
    R.kmeans(np.zeros((2, 1), np.float32), 3)
  with pytest.raises(ValueError, match="num_init"):
    R.kmeans(np.zeros((2, 1), np.float32), 1, num_init=0)
