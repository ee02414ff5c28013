"""Evaluation metrics on logits and features.

Pure ``jax.numpy`` functions (``num_classes`` static, so they run under ``jit``) plus
:class:`EvalAccumulator`, which sums accuracy/cross-entropy over padded eval batches on
the host and keeps the real rows' features for the feature metrics. Shapes: ``logits``
[N, C], ``features`` [N, D], ``labels`` [N] int, ``mask`` [N] (1 real, 0 padding).

A statistic without data (no real row, an absent class, a one-sample class for a std, no
same-class pair) is NaN, as in NumPy. Arithmetic is float32 or wider with HIGHEST-precision
matmuls (the TPU/GPU default would round to bf16/TF32).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import numpy as np
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disc_jax.losses._checks import float_array, is_concrete, positive_int
from disc_jax.retrieval import clustering_metrics, retrieval_metrics  # noqa: F401  (re-export)

_HI = jax.lax.Precision.HIGHEST


def _float(x: ArrayLike, name: str, ndim: int) -> jax.Array:
  x = float_array(x, name, ndim=ndim)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _valid(mask: ArrayLike | None, n: int, name: str = "mask") -> jax.Array:
  """Boolean [n]: rows that count (mask > 0), all rows when ``mask`` is None."""
  if mask is None:
    return jnp.ones((n,), bool)
  m = jnp.asarray(mask)
  if m.shape != (n,):
    raise ValueError(f"`{name}` must have shape ({n},), one entry per row, got {m.shape}; "
                     "pass the eval batch's 'mask' (1 real row, 0 padding).")
  return m > 0


def _labels(labels: ArrayLike, n: int, num_classes: int | None, valid: jax.Array, *,
            name: str = "labels", rows: str = "features") -> jax.Array:
  """Int [n] labels; on concrete inputs, valid rows must lie in [0, num_classes)."""
  dtype = jnp.result_type(labels)
  if not jnp.issubdtype(dtype, jnp.integer):
    raise ValueError(f"`{name}` must be integer class ids of shape [N], got dtype {dtype}; "
                     f"for one-hot labels pass `{name}.argmax(-1)`.")
  arr = jnp.asarray(labels)
  if arr.shape != (n,):
    raise ValueError(f"`{name}` must have shape ({n},) to match the rows of `{rows}`, "
                     f"got {arr.shape}.")
  if num_classes is not None and is_concrete(labels) and is_concrete(valid):
    host = np.asarray(labels)[np.asarray(valid)]
    if host.size and (host.min() < 0 or host.max() >= num_classes):
      raise ValueError(f"`{name}` of real rows must lie in [0, {num_classes}), got values in "
                       f"[{host.min()}, {host.max()}]; fix `num_classes` or remap the labels.")
  return arr


def _ratio(num: jax.Array, den: jax.Array) -> jax.Array:  # NaN where den == 0
  return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), jnp.nan)


def _prep(features, labels, num_classes, mask):
  """Validated (x [N, D] float, labels [N] int, valid [N] bool, k)."""
  x = _float(features, "features", 2)
  k = positive_int(num_classes, "num_classes")
  valid = _valid(mask, x.shape[0])
  return x, _labels(labels, x.shape[0], k, valid), valid, k


def _class_stats(x, labels, valid, k):
  """Masked one-hot [N, K], counts [K] and class means [K, D] (0 rows for absent classes)."""
  oh = jax.nn.one_hot(labels, k, dtype=x.dtype) * valid[:, None].astype(x.dtype)
  counts = oh.sum(0)
  return oh, counts, jnp.matmul(oh.T, x, precision=_HI) / jnp.maximum(counts, 1)[:, None]


def eval_sums(logits: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None
              ) -> dict[str, jax.Array]:
  """Batch sums over real rows: ``correct`` (arg-max logit, lowest index on ties, equals
  the label), ``ce_sum`` (of ``-log softmax(logits)[label]``) and ``count``; summed over
  batches they give the exact accuracy and cross-entropy of a whole set.

  >>> s = eval_sums(jnp.array([[2., 0.], [0., 1.]]), jnp.array([0, 0]))
  >>> float(s['correct']), float(s['count'])
  (1.0, 2.0)
  """
  logits = _float(logits, "logits", 2)
  valid = _valid(mask, logits.shape[0])
  return _eval_sums(logits, _labels(labels, len(valid), logits.shape[1], valid, rows="logits"),
                    valid)


@jax.jit
def _eval_sums(logits, labels, valid):
  safe = jnp.clip(labels, 0, logits.shape[1] - 1)  # padded rows may carry any label
  nll = -jnp.take_along_axis(jax.nn.log_softmax(logits, -1), safe[:, None], 1)[:, 0]
  correct = (jnp.argmax(logits, -1) == labels) & valid
  return {"correct": correct.sum().astype(logits.dtype), "ce_sum": jnp.where(valid, nll, 0).sum(),
          "count": valid.sum().astype(logits.dtype)}


def top1_accuracy(logits: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None
                  ) -> jax.Array:
  """Fraction of real rows whose arg-max logit equals the label (NaN with no real row).

  The intra-class-variance paper's "maximum score" accuracy (Sec. 4.2, Table 2).

  >>> float(top1_accuracy(jnp.array([[2., 0.], [0., 1.]]), jnp.array([0, 0])))
  0.5
  """
  s = eval_sums(logits, labels, mask)
  return _ratio(s["correct"], s["count"])


def cross_entropy(logits: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None
                  ) -> jax.Array:
  """Mean of ``-log softmax(logits)[label]`` over real rows (NaN with no real row).

  >>> round(float(cross_entropy(jnp.zeros((3, 4)), jnp.array([0, 1, 2]))), 4)  # log 4
  1.3863
  """
  s = eval_sums(logits, labels, mask)
  return _ratio(s["ce_sum"], s["count"])


def class_centroids(features: ArrayLike, labels: ArrayLike, num_classes: int,
                    mask: ArrayLike | None = None) -> jax.Array:
  """Class means [K, D] of the real rows; rows of absent classes are NaN.

  On the training features: the "centroid (class mean)" of the intra-class-variance
  paper's Table 1.

  >>> c = class_centroids(jnp.array([[0., 0.], [2., 0.]]), jnp.array([0, 0]), 2)
  >>> c[0].tolist(), bool(jnp.isnan(c[1]).all())
  ([1.0, 0.0], True)
  """
  return _centroids(*_prep(features, labels, num_classes, mask))


@functools.partial(jax.jit, static_argnums=3)
def _centroids(x, labels, valid, k):
  _, counts, means = _class_stats(x, labels, valid, k)
  return jnp.where(counts[:, None] > 0, means, jnp.nan)


def intra_class_std(features: ArrayLike, labels: ArrayLike, num_classes: int,
                    mask: ArrayLike | None = None) -> jax.Array:
  """Per-class intra-class standard deviation [K], σ²R paper eq. 12.

  Eq. 12: ``I_cj = sqrt( sum_{x_i in c_j} (x_i - mu)^2 / (n - 1) )``, ``mu`` the class
  mean, ``n = |c_j|``. For vectors we read ``(x_i - mu)^2`` as ``||x_i - mu||_2^2`` (the
  paper reports one scalar per class, Tables 1-2): ``I_k = sqrt(sum_{y_i=k} ||x_i -
  mu_k||^2 / (n_k - 1))`` = sqrt(trace of the unbiased class covariance); *not* the mean
  per-dimension std (about sqrt(D) smaller). The tables say "variance"; eq. 12 has the
  root, and we return eq. 12. An absent class (n_k = 0) and a one-sample class (n_k = 1,
  Bessel denominator 0) give NaN, like ``np.std(..., ddof=1)``.

  >>> x = jnp.array([[0., 0.], [2., 0.], [0., 0.], [0., 3.], [0., 6.]])
  >>> intra_class_std(x, jnp.array([0, 0, 1, 1, 1]), 2).tolist()  # sqrt(2/1), sqrt(18/2)
  [1.4142135381698608, 3.0]
  """
  return _intra_std(*_prep(features, labels, num_classes, mask))


@functools.partial(jax.jit, static_argnums=3)
def _intra_std(x, labels, valid, k):
  oh, counts, means = _class_stats(x, labels, valid, k)
  dev = x - jnp.take(means, labels, axis=0, mode="clip")
  ss = jnp.matmul(oh.T, jnp.sum(dev * dev, -1), precision=_HI)
  return jnp.where(counts >= 2, jnp.sqrt(ss / jnp.maximum(counts - 1, 1)), jnp.nan)


def nearest_centroid_predict(features: ArrayLike, centroids: ArrayLike) -> jax.Array:
  """Index [N] of the centroid nearest to each row in Euclidean distance.

  Uses ``argmin_k ||c_k||^2 - 2 <x, c_k>`` (the dropped ``||x||^2`` is the same for every
  k); ties go to the lowest index; non-finite centroid rows (absent classes) never win.
  """
  x, c = _float(features, "features", 2), _float(centroids, "centroids", 2)
  if c.shape[1] != x.shape[1]:
    raise ValueError(f"`centroids` must have shape [K, {x.shape[1]}] to match `features`, "
                     f"got {c.shape}.")
  return _nearest(x, c)


@jax.jit
def _nearest(x, c):
  ok = jnp.isfinite(c).all(-1)
  c = jnp.where(ok[:, None], c, 0)
  score = jnp.sum(c * c, -1) - 2 * jnp.matmul(x, c.T, precision=_HI)
  return jnp.argmin(jnp.where(ok, score, jnp.inf), axis=-1)


def nearest_centroid_accuracy(features: ArrayLike, labels: ArrayLike, centroids: ArrayLike,
                              mask: ArrayLike | None = None) -> jax.Array:
  """Fraction of real rows whose nearest centroid is their class (NaN with no real row).

  Intra-class-variance paper, Sec. 4.2 (b) "the nearest centroid in the embedding space"
  and Table 1. ``centroids`` [K, D]: the learned centroids (the Hadamard-layer parameters
  ``C`` of eq. 5, i.e. the loss parameters in the train state), or the training class
  means ``class_centroids(train_features, train_labels, K)`` (Table 1: "minimum distance
  to the centroid (class mean)"; an absent class, a NaN row, is never predicted).

  >>> cen = jnp.array([[0., 0.], [10., 0.]])
  >>> float(nearest_centroid_accuracy(jnp.array([[1., 0.], [4., 0.]]), jnp.array([0, 1]), cen))
  0.5
  """
  x, c = _float(features, "features", 2), _float(centroids, "centroids", 2)
  valid = _valid(mask, x.shape[0])
  labels = _labels(labels, x.shape[0], c.shape[0], valid)
  hit = (nearest_centroid_predict(x, c) == labels) & valid
  return _ratio(hit.sum().astype(x.dtype), valid.sum().astype(x.dtype))


def _tiny(x: jax.Array, valid: jax.Array) -> jax.Array:  # [D] variance of a constant column
  scale = jnp.max(jnp.where(valid[:, None], jnp.abs(x), 0), axis=0)
  return (64 * jnp.finfo(x.dtype).eps * scale) ** 2


def fisher_score(features: ArrayLike, labels: ArrayLike, num_classes: int,
                 mask: ArrayLike | None = None) -> jax.Array:
  """Per-dimension Fisher discriminant score [D] in [0, 1] (group softmax paper, Fig. 4a).

  "Fisher discriminant score [Fukunaga]; the score ranges from 0 to 1": between/within
  is unbounded, so we use the bounded between/total form. For dimension j, with
  ``P_k = n_k / N``, class means ``mu_kj`` and grand mean ``mu_j``,

    ``S_b = sum_k P_k (mu_kj - mu_j)^2``,  ``S_w = sum_k P_k var_kj`` (population),
    ``F_j = S_b / (S_b + S_w)``  (``S_b + S_w`` is the total variance of dimension j).

  A (numerically) constant dimension scores 0; no real row gives NaN.

  >>> x = jnp.array([[0., 1.], [0., -1.], [4., 1.], [4., -1.]])
  >>> fisher_score(x, jnp.array([0, 0, 1, 1]), 2).tolist()
  [1.0, 0.0]
  """
  return _fisher(*_prep(features, labels, num_classes, mask))


@functools.partial(jax.jit, static_argnums=3)
def _fisher(x, labels, valid, k):
  _, counts, means = _class_stats(x, labels, valid, k)
  n = counts.sum()
  p = counts / jnp.maximum(n, 1)
  grand = jnp.matmul(p, means, precision=_HI)
  s_b = jnp.matmul(p, (means - grand) ** 2, precision=_HI)
  dev = jnp.where(valid[:, None], x - jnp.take(means, labels, axis=0, mode="clip"), 0)
  s_w = jnp.sum(dev * dev, 0) / jnp.maximum(n, 1)
  s_t = s_b + s_w
  score = jnp.where(s_t > _tiny(x, valid), s_b / jnp.where(s_t > 0, s_t, 1), 0.0)
  return jnp.where(n > 0, score, jnp.nan)


def mean_abs_correlation(features: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
  """Mean absolute Pearson correlation of each dimension with the others [D].

  Group softmax paper, Fig. 4b: "redundant feature components exhibit higher correlation
  with the others". Per component j over the real rows: ``r_j = 1/(D-1) sum_{k != j}
  |corr(x_j, x_k)|``; a (numerically) constant dimension has correlation 0 with all
  others. Needs D >= 2.

  >>> x = jnp.array([[1., 2., 1.], [2., 4., -1.], [3., 6., 1.], [4., 8., -1.]])
  >>> [round(v, 4) for v in mean_abs_correlation(x).tolist()]
  [0.7236, 0.7236, 0.4472]
  """
  x = _float(features, "features", 2)
  n, d = x.shape
  if d < 2:
    raise ValueError(f"`features` needs at least 2 dimensions for correlations, got {d}.")
  return _mean_abs_corr(x, _valid(mask, n))


@jax.jit
def _mean_abs_corr(x, valid):
  d = x.shape[1]
  w = valid.astype(x.dtype)
  cnt = jnp.maximum(w.sum(), 1)
  xc = (x - jnp.matmul(w, x, precision=_HI) / cnt) * w[:, None]
  cov = jnp.matmul(xc.T, xc, precision=_HI) / cnt
  var = jnp.diagonal(cov)
  live = var > _tiny(x, valid)
  sd = jnp.sqrt(jnp.where(live, var, 1))
  corr = jnp.clip(cov / (sd[:, None] * sd[None, :]), -1, 1)
  corr = jnp.where(live[:, None] & live[None, :] & ~jnp.eye(d, dtype=bool), corr, 0)
  return jnp.where(w.sum() > 0, jnp.abs(corr).sum(-1) / (d - 1), jnp.nan)


@functools.partial(jax.jit, static_argnums=6)
def _itra(a, y1, v1, b, y2, v2, normalize):
  """Mean ||a_i - b_j|| over same-class real pairs (row by row, exact differences)."""
  if normalize:
    a = a / jnp.maximum(jnp.linalg.norm(a, axis=-1, keepdims=True), jnp.finfo(a.dtype).tiny)
    b = b / jnp.maximum(jnp.linalg.norm(b, axis=-1, keepdims=True), jnp.finfo(b.dtype).tiny)

  def row(args):
    ai, yi, vi = args
    dist = jnp.sqrt(jnp.sum((b - ai) ** 2, -1))
    same = (y2 == yi) & v2 & vi
    return jnp.where(same, dist, 0).sum(), same.sum()
  sums, counts = jax.lax.map(row, (a, y1, v1))
  return _ratio(sums.sum(), counts.sum().astype(sums.dtype))


def itra_normalized_distance(features_1: ArrayLike, labels_1: ArrayLike,
                             features_2: ArrayLike, labels_2: ArrayLike, *,
                             mask_1: ArrayLike | None = None,
                             mask_2: ArrayLike | None = None,
                             normalize: bool = True) -> jax.Array:
  """Mean distance between same-class samples of two mini-batches (ITRA Fig. 1, left).

  ITRA: "We calculate the distance between a pair of same-class samples from two
  mini-batches respectively and plot the normalized distance"; it does not say how it is
  normalised. We L2-normalise every row first, so the value is scale-free (in [0, 2]) and
  comparable over training while feature norms grow:

    ``d = mean_{(i, j): y1_i = y2_j} || x1_i/||x1_i|| - x2_j/||x2_j|| ||_2``

  over all same-class pairs of real rows (classes with more pairs weigh more); no pair
  gives NaN. ``normalize=False``: raw distance. A zero row stays zero. Differences are
  exact (no ``|a|^2 + |b|^2 - 2ab`` cancellation), one row of batch 1 at a time.

  >>> a, b = jnp.array([[2., 0.], [0., 1.]]), jnp.array([[0., 5.], [3., 0.]])
  >>> round(float(itra_normalized_distance(a, jnp.array([0, 1]), b, jnp.array([0, 0]))), 4)
  0.7071
  """
  a, b = _float(features_1, "features_1", 2), _float(features_2, "features_2", 2)
  if a.shape[1] != b.shape[1]:
    raise ValueError(f"`features_1` {a.shape} and `features_2` {b.shape} must have the same "
                     "feature dimension.")
  v1, v2 = _valid(mask_1, a.shape[0], "mask_1"), _valid(mask_2, b.shape[0], "mask_2")
  y1 = _labels(labels_1, a.shape[0], None, v1, name="labels_1", rows="features_1")
  y2 = _labels(labels_2, b.shape[0], None, v2, name="labels_2", rows="features_2")
  return _itra(a, y1, v1, b, y2, v2, bool(normalize))


def feature_metrics(features: ArrayLike, labels: ArrayLike, num_classes: int, *,
                    centroids: Mapping[str, ArrayLike] | None = None) -> dict[str, float]:
  """Scalars for logging: ``intra_class_std`` (NaN-mean over classes), ``fisher_score``,
  ``mean_abs_correlation`` (means over dimensions; D >= 2 only) and
  ``nearest_centroid_accuracy/<name>`` per ``centroids`` entry, e.g. ``{'train':
  class_centroids(train_feats, ...), 'learned': state_centroids}``."""
  x = np.asarray(features)
  std = np.asarray(intra_class_std(x, labels, num_classes))
  out = {"intra_class_std": float(np.nanmean(std)) if np.isfinite(std).any() else float("nan"),
         "fisher_score": float(jnp.mean(fisher_score(x, labels, num_classes)))}
  if x.shape[1] >= 2:
    out["mean_abs_correlation"] = float(jnp.mean(mean_abs_correlation(x)))
  for name, cen in (centroids or {}).items():
    out[f"nearest_centroid_accuracy/{name}"] = float(nearest_centroid_accuracy(x, labels, cen))
  return out


@dataclasses.dataclass
class EvalAccumulator:
  """Exact eval over padded batches: :func:`eval_sums` per batch, totals as Python floats
  (no float32 drift); keeps the real rows' ``features``/labels on host when given.

  >>> acc = EvalAccumulator()
  >>> acc.update(jnp.array([[2., 0.], [0., 1.]]), jnp.array([0, 1]), jnp.array([1., 0.]))
  >>> acc.result()['accuracy'], acc.result()['count']
  (1.0, 1.0)
  """
  correct: float = 0.0
  ce_sum: float = 0.0
  count: float = 0.0
  _feats: list = dataclasses.field(default_factory=list, repr=False)
  _labels: list = dataclasses.field(default_factory=list, repr=False)

  def update(self, logits: ArrayLike, labels: ArrayLike, mask: ArrayLike | None = None,
             features: ArrayLike | None = None) -> None:
    """Adds one batch; ``mask`` marks real rows (padding is excluded everywhere)."""
    mask = np.ones(np.shape(labels)[0], np.float32) if mask is None else mask
    sums = {k: float(v) for k, v in jax.device_get(eval_sums(logits, labels, mask)).items()}
    self.correct, self.ce_sum = self.correct + sums["correct"], self.ce_sum + sums["ce_sum"]
    self.count += sums["count"]
    if features is not None:
      keep = np.asarray(mask) > 0
      self._feats.append(np.asarray(features)[keep])
      self._labels.append(np.asarray(labels)[keep])

  def result(self) -> dict[str, float]:
    """``{'accuracy', 'cross_entropy', 'count'}`` over every real row seen (NaN if none)."""
    den = self.count or float("nan")
    return {"accuracy": self.correct / den, "cross_entropy": self.ce_sum / den,
            "count": self.count}

  def features(self) -> tuple[np.ndarray, np.ndarray]:
    """Collected real-row features [N, D] and labels [N] (ValueError if none were given)."""
    if not self._feats:
      raise ValueError("No features were collected: pass `features=` to `update`.")
    return np.concatenate(self._feats), np.concatenate(self._labels)
