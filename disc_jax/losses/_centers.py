"""Center-based losses: Wen et al.'s center loss and update, and intra-class variance.

* Center loss (Wen, Zhang, Li and Qiao, ECCV 2016, eq. 2; σ²R paper eq. 1):
  L_C = 1/2 * 1/m sum_i ||x_i - c_{y_i}||^2 -- the batch *mean* (the paper's
  sum; the weight lambda is applied by the caller).
* Wen et al.'s center update (eq. 4): outside the gradient, after each step,
  c_j <- c_j - alpha * sum_{i: y_i = j} (c_j - x_i) / (1 + n_j).
* Intra-class variance (Pilarczyk and Skarbek, eq. 5): L_var = 1/N_b sum_j
  ||x_j - C_{y_j}||^2 with the centroids C trained by gradient like any weight
  (their "Hadamard layer").

With ``axis_name`` the means, counts and sums are those of the global batch.
``where`` ([B] bool) leaves rows out of the mean and of the center update's
class sums and counts, as if sliced out; ``reduction="none"`` returns the
per-sample terms [B] (0 at masked rows) whose mean over the selected rows is the
default ``"mean"``. NaN or inf in a selected feature gives a NaN term, and so does an
infinite center (centroid) for the rows of its class; a label
outside [0, C) gives NaN (a ValueError when the labels are concrete). Features
below float32 precision are computed in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disc_jax.losses import _batch
from disc_jax.losses import _checks


def _checked(features: ArrayLike, labels: ArrayLike, centers: ArrayLike,
             centers_name: str, where: ArrayLike | None
             ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
  features = _checks.float_array(features, "features", ndim=2)
  centers = _checks.float_array(centers, centers_name, ndim=2)
  if centers.shape[1] != features.shape[1]:
    raise ValueError(f"`{centers_name}` must have shape [num_classes, D={features.shape[1]}] "
                     f"to match `features` {features.shape}, got {centers.shape}.")
  where = _checks.where_array(where, features.shape[0])
  labels = _checks.label_array(labels, features.shape[0], num_classes=centers.shape[0],
                               where=where)
  dtype = jnp.promote_types(jnp.promote_types(features.dtype, centers.dtype), jnp.float32)
  features, labels = _batch.clean_rows(features.astype(dtype), labels, where=where,
                                       num_classes=centers.shape[0])
  return features, labels, centers.astype(dtype), where


def _sq_dist_to_center(features: jax.Array, labels: jax.Array, centers: jax.Array
                       ) -> jax.Array:
  return jnp.sum(jnp.square(features - centers[labels]), axis=-1)


def center_loss(features: ArrayLike, labels: ArrayLike, centers: ArrayLike, *,
                where: ArrayLike | None = None, reduction: str = "mean",
                axis_name: _batch.AxisName = None) -> jax.Array:
  r"""Center loss of Wen et al. (2016): half the mean squared distance to the class center.

  .. math::
    \mathcal{L}_C = \frac{1}{2m}\sum_{i=1}^{m} \|x_i - c_{y_i}\|_2^2

  Wen et al. keep the centers out of the optimiser and move them with
  :func:`update_centers`; this function does not stop their gradient, so pass
  them as a non-differentiated argument (e.g. from the train state).

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1., 0.], [3., 0.]])
    >>> float(center_loss(x, jnp.array([0, 0]), jnp.array([[2., 0.]])))
    0.5
    >>> center_loss(x, jnp.array([0, 0]), jnp.array([[2., 0.]]), reduction="none").tolist()
    [0.5, 0.5]

  Args:
    features: [B, D] float features x_i.
    labels: [B] int class ids in [0, C).
    centers: [C, D] class centers c_j.
    where: [B] bool, the rows that take part (None: all), as if
      ``features[where]``, ``labels[where]`` had been passed.
    reduction: ``"mean"`` (the scalar above) or ``"none"`` (the [B] terms
      1/2 ||x_i - c_{y_i}||^2, 0 at masked rows).
    axis_name: mapped axis of ``shard_map``/``pmap``; the mean is then over the
      global batch (each device passes the mask of its own rows).

  Returns:
    The scalar loss, or the [B] per-sample terms.

  References:
    Wen, Zhang, Li and Qiao, "A discriminative feature learning approach for
    deep face recognition", ECCV 2016, eq. 2.
  """
  features, labels, centers, where = _checked(features, labels, centers, "centers", where)
  reduction = _checks.reduction(reduction)
  per_sample = 0.5 * _sq_dist_to_center(features, labels, centers)
  loss = _batch.reduce(per_sample, reduction, where=where, axis_name=axis_name)
  return _batch.nan_for_infinite(loss, labels, centers, reduction=reduction, where=where,
                                 axis_name=axis_name)


def update_centers(centers: ArrayLike, features: ArrayLike, labels: ArrayLike,
                   alpha: float | ArrayLike, *, where: ArrayLike | None = None,
                   axis_name: _batch.AxisName = None) -> jax.Array:
  r"""Wen et al.'s center update: one step of each center towards its class mean.

  .. math::
    \Delta c_j = \frac{\sum_{i: y_i = j} (c_j - x_i)}{1 + n_j},\qquad
    c_j \leftarrow c_j - \alpha\,\Delta c_j

  where n_j is the number of samples of class j in the (global) batch; centers
  of classes absent from the batch do not move.

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1., 0.], [3., 0.]])
    >>> update_centers(jnp.zeros((1, 2)), x, jnp.array([0, 0]), alpha=0.5).tolist()
    [[0.6666666865348816, 0.0]]

  Args:
    centers: [C, D] current centers.
    features: [B, D] float features (treat as constants: the update is not a
      gradient step).
    labels: [B] int class ids in [0, C).
    alpha: the center learning rate in [0, 1].
    where: [B] bool, the rows that take part (None: all); masked rows are left
      out of the class sums and counts n_j.
    axis_name: mapped axis of ``shard_map``/``pmap``; the class sums and counts
      are then those of the global batch, so every device gets the same centers.

  Returns:
    The new centers [C, D], in the dtype of the computation.

  References:
    Wen, Zhang, Li and Qiao, "A discriminative feature learning approach for
    deep face recognition", ECCV 2016, eq. 4 and Algorithm 1.
  """
  features, labels, centers, where = _checked(features, labels, centers, "centers", where)
  num_classes = centers.shape[0]
  sums = _batch.class_sums(features, labels, num_classes, axis_name=axis_name, where=where)
  counts = _batch.class_counts(labels, num_classes, axis_name=axis_name, dtype=features.dtype,
                               where=where)
  delta = (counts[:, None] * centers - sums) / (1.0 + counts[:, None])
  return centers - jnp.asarray(alpha, centers.dtype) * delta


def intra_class_variance_loss(features: ArrayLike, labels: ArrayLike, centroids: ArrayLike,
                              *, where: ArrayLike | None = None, reduction: str = "mean",
                              axis_name: _batch.AxisName = None) -> jax.Array:
  r"""Intra-class variance against learned centroids (Pilarczyk and Skarbek, eq. 5).

  .. math::
    \mathcal{L}_{var} = \frac{1}{N_b}\sum_{j} \|x_j - C_{y_j}\|^2

  The centroids are ordinary trainable parameters (the paper's Hadamard layer):
  the gradient flows to both the features and ``centroids``; minimising over C
  alone drives each C_k to its class mean (the value then being the within-class
  variance).

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1., 0.], [3., 0.]])
    >>> float(intra_class_variance_loss(x, jnp.array([0, 0]), jnp.array([[2., 0.]])))
    1.0

  Args:
    features: [B, D] float features x_j.
    labels: [B] int class ids in [0, K).
    centroids: [K, D] learned centroids C_k.
    where: [B] bool, the rows that take part (None: all), as if
      ``features[where]``, ``labels[where]`` had been passed.
    reduction: ``"mean"`` (the scalar above) or ``"none"`` (the [B] terms
      ||x_j - C_{y_j}||^2, 0 at masked rows).
    axis_name: mapped axis of ``shard_map``/``pmap``; the mean is then over the
      global batch (each device passes the mask of its own rows).

  Returns:
    The scalar loss, or the [B] per-sample terms.

  References:
    Pilarczyk and Skarbek, "On intra-class variance for deep learning of
    classifiers" (Hadamard layer), eq. 5.
  """
  features, labels, centroids, where = _checked(features, labels, centroids, "centroids",
                                                where)
  reduction = _checks.reduction(reduction)
  per_sample = _sq_dist_to_center(features, labels, centroids)
  loss = _batch.reduce(per_sample, reduction, where=where, axis_name=axis_name)
  return _batch.nan_for_infinite(loss, labels, centroids, reduction=reduction, where=where,
                                 axis_name=axis_name)
