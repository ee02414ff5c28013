r"""Retrieval and clustering metrics of learned features, in JAX without faiss.

:func:`retrieval_metrics` ranks reference features by distance to each query and scores the
ranking with the label of each neighbour: precision@1, R-precision, MAP@R (as defined in
Musgrave, Belongie & Lim, "A Metric Learning Reality Check", ECCV 2020) and k-NN majority-vote
accuracy. Queries are processed in fixed-size blocks by one compiled function, so memory grows
with ``block_size * num_references``, never with ``num_queries * num_references``.

:func:`clustering_metrics` clusters the features with :func:`kmeans` (k-means++ init, Lloyd
iterations) and compares the clusters with the labels by NMI and AMI (scikit-learn).

Notation, for one query q with label y_q: the references are ordered by increasing distance to
q, ties broken by lower reference index; rel(i) = 1 if the i-th neighbour has label y_q, else 0;
R = the number of references with label y_q (not counting q itself when ``same_set``).
"""

from __future__ import annotations

import functools

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from disc_jax.losses._checks import float_array, positive_int

_HI = lax.Precision.HIGHEST
_DISTANCES = ("euclidean", "cosine")
_SKLEARN_HINT = ("clustering_metrics needs scikit-learn for NMI/AMI: "
                 "pip install 'disc_jax[train]' (or pip install scikit-learn).")


def _features(x: ArrayLike, name: str) -> jax.Array:
  x = float_array(x, name, ndim=2)
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  if not bool(jnp.isfinite(x).all()):
    raise ValueError(f"`{name}` has NaN or infinite entries; distances to them are undefined.")
  return x


def _host_labels(labels: ArrayLike, n: int, name: str, rows: str) -> np.ndarray:
  arr = np.asarray(labels)
  if not np.issubdtype(arr.dtype, np.integer):
    raise ValueError(f"`{name}` must be integer class ids of shape [N], got dtype {arr.dtype}; "
                     f"for one-hot labels pass `{name}.argmax(-1)`.")
  if arr.shape != (n,):
    raise ValueError(f"`{name}` must have shape ({n},) to match the rows of `{rows}`, "
                     f"got {arr.shape}.")
  return arr


def _mean_or_nan(values: np.ndarray) -> float:
  return float(np.mean(values, dtype=np.float64)) if values.size else float("nan")


def retrieval_metrics(query_features: ArrayLike, query_labels: ArrayLike,
                      reference_features: ArrayLike, reference_labels: ArrayLike, *,
                      same_set: bool = False, k: int = 10, distance: str = "euclidean",
                      block_size: int = 256) -> dict[str, float]:
  r"""Precision@1, R-precision, MAP@R and k-NN accuracy of queries against references.

  Definitions follow Musgrave, Belongie & Lim, "A Metric Learning Reality Check" (ECCV
  2020), as implemented by pytorch-metric-learning's ``AccuracyCalculator``. For a query
  with R references of its class, neighbours i = 1, 2, ... in order of distance, and
  rel(i) = 1 when neighbour i has the query's label:

  * ``precision_at_1`` = rel(1).
  * ``r_precision`` = (1/R) Σ_{i=1..R} rel(i).
  * ``map_at_r`` = (1/R) Σ_{i=1..R} P(i)·rel(i), with P(i) = (1/i) Σ_{j=1..i} rel(j), the
    precision at i. It only looks at the first R neighbours, so it is computed exactly
    from the max-R nearest neighbours and does not depend on ``k``.
  * ``knn_accuracy`` = 1 when the majority label of the k nearest neighbours is the query's
    label. Vote ties go to the tied label whose nearest member ranks first among the k.

  Each is averaged over the queries with R >= 1. A query with R = 0 (its class is absent
  from the references, or under ``same_set`` it is its class's only member) has no correct
  neighbour to retrieve and is left out of all four averages, as pytorch-metric-learning
  leaves out such "lone" queries. A metric is NaN when no query has R >= 1.

  Neighbour order: increasing distance, equal distances broken by lower reference index
  (``jax.lax.top_k`` returns the lower index first among equal values), so results are
  deterministic. With ``same_set=True`` query i is reference i and is removed from its own
  neighbours by index (a duplicate of it elsewhere still counts as a neighbour).
  ``"euclidean"`` ranks by ‖q − r‖², computed as ‖r‖² − 2⟨q, r⟩ (the query's own norm does
  not change its ranking); ``"cosine"`` ranks by −⟨q/‖q‖, r/‖r‖⟩ (an all-zero row has
  similarity 0 to everything). Arithmetic is float32 (float64 for float64 inputs with x64
  enabled), so distances equal up to rounding may be ordered either way.

  Memory: queries go through one jitted function in blocks of ``block_size`` rows (the last
  block zero-padded), so one compilation serves every block. With N references and
  K = max(max_R, k) neighbours kept (max_R the largest R), the temporaries of a block are
  ``block_size * (4 * N + 8 * K)`` bytes in float32: the [block, N] distance block and the
  [block, K] values and indices of ``jax.lax.top_k`` (XLA's memory analysis of the block
  function on CPU agrees to within 1 KiB; other backends may add ``top_k`` workspace). The
  features stay on the device whole (4 * (Q + N) * D bytes). The time is dominated by the
  matmul (Q * N * D) and by ``top_k`` of K out of N per query, so many small classes are
  faster than a few large ones.

  Args:
    query_features: [Q, D] floating features of the queries.
    query_labels: [Q] integer labels (any integer values; they only need to be equal for
      the same class across queries and references).
    reference_features: [N, D] floating features searched for neighbours.
    reference_labels: [N] integer labels.
    same_set: the queries are the references (Q == N, query i is reference i); each query
      is excluded from its own neighbours and from its class count R.
    k: neighbours in the k-NN vote (>= 1, at most the number of candidate references).
    distance: ``"euclidean"`` or ``"cosine"``.
    block_size: queries per block; trades memory for per-block overhead.

  Returns:
    ``{'precision_at_1', 'r_precision', 'map_at_r', 'knn_accuracy'}`` as Python floats.

  >>> x = jnp.array([[0.], [1.], [5.], [6.], [7.]])
  >>> y = jnp.array([0, 0, 1, 1, 0])
  >>> m = retrieval_metrics(x, y, x, y, same_set=True, k=1)
  >>> m['precision_at_1'], m['r_precision'], m['map_at_r'], m['knn_accuracy']
  (0.8, 0.6, 0.6, 0.8)

  Here the query at 7. (R = 2) finds its class only at ranks 3 and 4, so it scores 0; the
  query at 6. has 5. (index 2) and 7. (index 4) at equal distance, and index 2 comes first.
  """
  stats = _per_query(query_features, query_labels, reference_features, reference_labels,
                     same_set=same_set, k=k, distance=distance, block_size=block_size)
  keep = stats.pop("evaluated")
  return {name: _mean_or_nan(values[keep]) for name, values in stats.items()}


def _per_query(query_features, query_labels, reference_features, reference_labels, *,
               same_set, k, distance, block_size) -> dict[str, np.ndarray]:
  """Host arrays [Q] of each query's metrics, and ``evaluated`` (R >= 1)."""
  qx = _features(query_features, "query_features")
  rx = _features(reference_features, "reference_features")
  (q, d), (n, d_ref) = qx.shape, rx.shape
  if d != d_ref:
    raise ValueError(f"`query_features` has {d} dimensions but `reference_features` has "
                     f"{d_ref}; both must live in the same feature space.")
  ql = _host_labels(query_labels, q, "query_labels", "query_features")
  rl = _host_labels(reference_labels, n, "reference_labels", "reference_features")
  if distance not in _DISTANCES:
    raise ValueError(f"`distance` must be one of {_DISTANCES}, got {distance!r}.")
  k = positive_int(k, "k")
  block_size = positive_int(block_size, "block_size")
  self_match = int(bool(same_set))
  if same_set and q != n:
    raise ValueError(f"same_set=True needs the queries to be the references, got {q} queries "
                     f"and {n} references.")
  candidates = n - self_match
  if k > candidates:
    raise ValueError(f"`k`={k} exceeds the {candidates} references each query can have as "
                     "neighbours; lower `k`.")
  names = ("precision_at_1", "r_precision", "map_at_r", "knn_accuracy")
  if q == 0:
    return {**{name: np.zeros(0) for name in names}, "evaluated": np.zeros(0, bool)}

  # Labels -> dense ids; R per query from the reference class counts.
  _, ids = np.unique(np.concatenate([ql, rl]), return_inverse=True)
  q_ids, r_ids = ids[:q].astype(np.int32), ids[q:].astype(np.int32)
  r_count = np.bincount(r_ids, minlength=int(ids.max()) + 1)[q_ids] - self_match
  r_count = r_count.astype(np.int32)
  num_neighbors = max(int(r_count.max()), k)

  block = min(block_size, q)
  num_blocks = -(-q // block)
  pad = num_blocks * block - q
  qx = jnp.pad(qx, ((0, pad), (0, 0)))
  q_ids_dev = jnp.asarray(np.pad(q_ids, (0, pad), constant_values=-1))
  r_count_dev = jnp.asarray(np.pad(r_count, (0, pad)))
  ref, ref_sq = _reference_side(rx, distance)
  r_ids_dev = jnp.asarray(r_ids)
  stats = [_block_stats(jnp.int32(i * block), qx, q_ids_dev, r_count_dev, ref, ref_sq,
                        r_ids_dev, block=block, num_neighbors=num_neighbors, k=k,
                        same_set=bool(same_set), distance=distance)
           for i in range(num_blocks)]
  columns = (np.concatenate(s)[:q] for s in zip(*jax.device_get(stats)))
  return {**dict(zip(names, columns)), "evaluated": r_count > 0}


@functools.partial(jax.jit, static_argnames=("distance",))
def _reference_side(rx, distance):
  """References as used by the ranking key: raw with ‖r‖² (euclidean) or unit rows (cosine)."""
  if distance == "cosine":
    return _unit(rx), jnp.zeros(rx.shape[:1], rx.dtype)
  return rx, jnp.sum(rx * rx, axis=1)


def _unit(x):
  norm = jnp.sqrt(jnp.sum(x * x, axis=1, keepdims=True))
  return x / jnp.where(norm > 0, norm, 1)


@functools.partial(jax.jit,
                   static_argnames=("block", "num_neighbors", "k", "same_set", "distance"))
def _block_stats(start, qx, q_ids, r_count, ref, ref_sq, r_ids, *, block, num_neighbors, k,
                 same_set, distance):
  """Per-query (rel(1), R-precision, AP@R, k-NN correct) of queries [start, start + block)."""
  q = lax.dynamic_slice_in_dim(qx, start, block)
  y = lax.dynamic_slice_in_dim(q_ids, start, block)
  r = lax.dynamic_slice_in_dim(r_count, start, block)
  if distance == "cosine":
    q = _unit(q)
  dots = jnp.matmul(q, ref.T, precision=_HI)                      # [block, N]
  key = ref_sq[None, :] - 2 * dots if distance == "euclidean" else -dots
  # top_k orders -0.0 below +0.0; make equal distances equal keys.
  key = jnp.where(key == 0, jnp.zeros_like(key), key)
  if same_set:  # query i is reference i (padded rows match no column)
    self_col = jnp.arange(key.shape[1])[None, :] == (start + jnp.arange(block))[:, None]
    key = jnp.where(self_col, jnp.inf, key)
  _, idx = lax.top_k(-key, num_neighbors)                          # [block, K], nearest first
  labels = r_ids[idx]
  rel = labels == y[:, None]
  rank = jnp.arange(1, num_neighbors + 1)
  rel_r = rel & (rank[None, :] <= r[:, None])
  hits = jnp.cumsum(rel_r.astype(jnp.int32), axis=1)
  r_safe = jnp.maximum(r, 1).astype(jnp.float32)
  r_prec = hits[:, -1] / r_safe
  ap = jnp.sum(jnp.where(rel_r, hits / rank.astype(jnp.float32), 0), axis=1) / r_safe
  top = labels[:, :k]
  votes = jnp.sum(top[:, :, None] == top[:, None, :], axis=2)      # votes for each slot's label
  pred = jnp.take_along_axis(top, jnp.argmax(votes, axis=1)[:, None], axis=1)[:, 0]
  return rel[:, 0], r_prec, ap, pred == y


# ----------------------------------------------------------------------------- clustering


def kmeans(features: ArrayLike, num_clusters: int, *, seed: int = 0, num_iters: int = 100,
           num_init: int = 3) -> tuple[jax.Array, jax.Array]:
  """k-means (Lloyd) from k-means++ initialisations; the lowest-inertia run is returned.

  Each of the ``num_init`` runs picks its first centre uniformly and each next centre with
  probability proportional to the squared distance to the nearest chosen centre (Arthur &
  Vassilvitskii, 2007), then alternates nearest-centre assignment (ties to the lower centre
  index) and mean update (an empty cluster keeps its centre) for ``num_iters`` iterations,
  stopping early once the assignment no longer changes (a fixed point, so the result equals
  that of running all iterations). The same ``seed`` gives the same clustering. Memory:
  [N, num_clusters] distances per run.

  Args:
    features: [N, D] floating features.
    num_clusters: number of clusters, 1 <= num_clusters <= N.
    seed: seed of the initialisations.
    num_iters: maximum Lloyd iterations per run.
    num_init: number of k-means++ initialisations.

  Returns:
    (assignment [N] int32, centres [num_clusters, D]).

  >>> x = jnp.array([[0., 0.], [0., 1.], [10., 0.], [10., 1.]])
  >>> assignment, centres = kmeans(x, 2)
  >>> bool(assignment[0] == assignment[1]) and bool(assignment[2] == assignment[3])
  True
  """
  x = _features(features, "features")
  num_clusters = positive_int(num_clusters, "num_clusters")
  if num_clusters > x.shape[0]:
    raise ValueError(f"`num_clusters`={num_clusters} exceeds the {x.shape[0]} points.")
  keys = jax.random.split(jax.random.key(seed), positive_int(num_init, "num_init"))
  return _kmeans(x, keys, num_clusters=num_clusters, num_iters=positive_int(num_iters,
                                                                             "num_iters"))


def _sq_dists(x, x_sq, c):  # [N, k] squared distances, clipped at 0
  d = x_sq[:, None] - 2 * jnp.matmul(x, c.T, precision=_HI) + jnp.sum(c * c, axis=1)[None]
  return jnp.maximum(d, 0)


@functools.partial(jax.jit, static_argnames=("num_clusters", "num_iters"))
def _kmeans(x, keys, *, num_clusters, num_iters):
  n = x.shape[0]
  x_sq = jnp.sum(x * x, axis=1)

  def init(key):
    k0, key = jax.random.split(key)
    first = x[jax.random.randint(k0, (), 0, n)]
    centres = jnp.zeros((num_clusters, x.shape[1]), x.dtype).at[0].set(first)
    d2 = _sq_dists(x, x_sq, first[None])[:, 0]

    def pick(j, carry):
      centres, d2 = carry
      total = jnp.sum(d2)
      p = jnp.where(total > 0, d2 / jnp.where(total > 0, total, 1), 1.0 / n)
      i = jax.random.choice(jax.random.fold_in(key, j), n, p=p)
      centres = centres.at[j].set(x[i])
      return centres, jnp.minimum(d2, _sq_dists(x, x_sq, x[i][None])[:, 0])

    return lax.fori_loop(1, num_clusters, pick, (centres, d2))[0]

  def lloyd(centres):
    def step(carry):
      it, centres, assign, _ = carry
      new = jnp.argmin(_sq_dists(x, x_sq, centres), axis=1).astype(jnp.int32)
      one_hot = jax.nn.one_hot(new, num_clusters, dtype=x.dtype)
      counts = one_hot.sum(0)
      sums = jnp.matmul(one_hot.T, x, precision=_HI)
      centres = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], centres)
      return it + 1, centres, new, jnp.any(new != assign)

    start = (0, centres, jnp.full((n,), -1, jnp.int32), True)
    _, centres, _, _ = lax.while_loop(lambda c: (c[0] < num_iters) & c[3], step, start)
    d = _sq_dists(x, x_sq, centres)
    assign = jnp.argmin(d, axis=1).astype(jnp.int32)
    return assign, centres, jnp.sum(jnp.min(d, axis=1))

  assign, centres, inertia = lax.map(lambda key: lloyd(init(key)), keys)
  best = jnp.argmin(inertia)
  return assign[best], centres[best]


def clustering_metrics(features: ArrayLike, labels: ArrayLike, *,
                       num_clusters: int | None = None, seed: int = 0, num_iters: int = 100,
                       num_init: int = 3) -> dict[str, float]:
  """NMI and AMI between the labels and a k-means clustering of the features.

  Clusters with :func:`kmeans` (k = the number of distinct labels unless ``num_clusters``
  is given) and scores the clusters against the labels with scikit-learn's
  ``normalized_mutual_info_score`` and ``adjusted_mutual_info_score``, both with the
  arithmetic-mean normalisation, the protocol of pytorch-metric-learning's
  ``AccuracyCalculator``:

  * NMI = MI(Y, C) / ((H(Y) + H(C)) / 2),
  * AMI = (MI − E[MI]) / ((H(Y) + H(C)) / 2 − E[MI]), E[MI] under random labelings with
    the same cluster sizes (1 for identical partitions, about 0 for chance).

  scikit-learn is imported here, not at module import: it is part of the ``train`` extra.

  Args:
    features: [N, D] floating features.
    labels: [N] integer labels.
    num_clusters: number of k-means clusters; default the number of distinct labels.
    seed, num_iters, num_init: passed to :func:`kmeans`.

  Returns:
    ``{'nmi', 'ami'}`` as Python floats.

  >>> x = jnp.array([[0., 0.], [0., 1.], [10., 0.], [10., 1.]])
  >>> clustering_metrics(x, jnp.array([3, 3, 7, 7]))
  {'nmi': 1.0, 'ami': 1.0}
  """
  try:
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score
  except ImportError as err:
    raise ImportError(_SKLEARN_HINT) from err
  x = _features(features, "features")
  y = _host_labels(labels, x.shape[0], "labels", "features")
  if num_clusters is None:
    num_clusters = max(len(np.unique(y)), 1)
  assign = np.asarray(kmeans(x, num_clusters, seed=seed, num_iters=num_iters,
                             num_init=num_init)[0])
  return {"nmi": float(normalized_mutual_info_score(y, assign, average_method="arithmetic")),
          "ami": float(adjusted_mutual_info_score(y, assign, average_method="arithmetic"))}
