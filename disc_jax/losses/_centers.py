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
Features below float32 precision are computed in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disc_jax.losses import _batch
from disc_jax.losses import _checks


def _checked(features: ArrayLike, labels: ArrayLike, centers: ArrayLike,
             centers_name: str) -> tuple[jax.Array, jax.Array, jax.Array]:
  features = _checks.float_array(features, "features", ndim=2)
  centers = _checks.float_array(centers, centers_name, ndim=2)
  if centers.shape[1] != features.shape[1]:
    raise ValueError(f"`{centers_name}` must have shape [num_classes, D={features.shape[1]}] "
                     f"to match `features` {features.shape}, got {centers.shape}.")
  labels = _checks.label_array(labels, features.shape[0], num_classes=centers.shape[0])
  dtype = jnp.promote_types(jnp.promote_types(features.dtype, centers.dtype), jnp.float32)
  return features.astype(dtype), labels, centers.astype(dtype)


def _mean_sq_dist_to_center(features: jax.Array, labels: jax.Array, centers: jax.Array,
                            axis_name: _batch.AxisName) -> jax.Array:
  per_sample = jnp.sum(jnp.square(features - centers[labels]), axis=-1)
  return _batch.batch_mean(per_sample, axis_name=axis_name)


def center_loss(features: ArrayLike, labels: ArrayLike, centers: ArrayLike, *,
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

  Args:
    features: [B, D] float features x_i.
    labels: [B] int class ids in [0, C).
    centers: [C, D] class centers c_j.
    axis_name: mapped axis of ``shard_map``/``pmap``; the mean is then over the
      global batch.

  Returns:
    The scalar loss.

  References:
    Wen, Zhang, Li and Qiao, "A discriminative feature learning approach for
    deep face recognition", ECCV 2016, eq. 2.
  """
  features, labels, centers = _checked(features, labels, centers, "centers")
  return 0.5 * _mean_sq_dist_to_center(features, labels, centers, axis_name)


def update_centers(centers: ArrayLike, features: ArrayLike, labels: ArrayLike,
                   alpha: float | ArrayLike, *, axis_name: _batch.AxisName = None
                   ) -> jax.Array:
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
    axis_name: mapped axis of ``shard_map``/``pmap``; the class sums and counts
      are then those of the global batch, so every device gets the same centers.

  Returns:
    The new centers [C, D], in the dtype of the computation.

  References:
    Wen, Zhang, Li and Qiao, "A discriminative feature learning approach for
    deep face recognition", ECCV 2016, eq. 4 and Algorithm 1.
  """
  features, labels, centers = _checked(features, labels, centers, "centers")
  num_classes = centers.shape[0]
  sums = _batch.class_sums(features, labels, num_classes, axis_name=axis_name)
  counts = _batch.class_counts(labels, num_classes, axis_name=axis_name, dtype=features.dtype)
  delta = (counts[:, None] * centers - sums) / (1.0 + counts[:, None])
  return centers - jnp.asarray(alpha, centers.dtype) * delta


def intra_class_variance_loss(features: ArrayLike, labels: ArrayLike, centroids: ArrayLike,
                              *, axis_name: _batch.AxisName = None) -> jax.Array:
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
    axis_name: mapped axis of ``shard_map``/``pmap``; the mean is then over the
      global batch.

  Returns:
    The scalar loss.

  References:
    Pilarczyk and Skarbek, "On intra-class variance for deep learning of
    classifiers" (Hadamard layer), eq. 5.
  """
  features, labels, centroids = _checked(features, labels, centroids, "centroids")
  return _mean_sq_dist_to_center(features, labels, centroids, axis_name)
