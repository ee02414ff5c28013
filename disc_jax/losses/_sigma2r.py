"""The σ²R loss: a center loss re-weighted by learned sigmoids of local spread.

La Grassa, Gallo and Landro, "σ²R loss: a weighted loss by multiplicative
factors using sigmoidal functions", eq. 8-10 and Algorithm 1:

  beta_i = Z / (1 + exp(-K_{y_i} (sigma(n, x_i) - sigma(n, C_{y_i}))))    (8)
  K(w_K) = epsilon + Z / (1 + exp(-w_K))                                 (9)
  L = 1/m sum_i beta_i ||x_i - C_{y_i}||^2                               (10)

with one learned growth rate w_K and one learned center C per class.

The spread sigma(n, p). Algorithm 1 gives sigma(n, C_y) as the "standard deviation
computed on the n points closest to C_y" (line 3) and sigma(n, x_i) likewise for the n
points closest to x_i (line 5): the spread *of those n points*, not their distance to
p. N is the min(n, available) same-class samples of the batch nearest to p, p itself
never among them (so for x_i the other samples of its class). Three spreads of N:

* ``spread="std"`` (default): the standard deviation of the |N| x D numbers that are
  the points' coordinates, as ``np.std(points, ddof=1)`` or ``torch.std(points)``
  computes it on the [|N|, D] array -- the literal "standard deviation computed on the
  n points", with the Bessel correction of the paper's eq. 12:
  sigma = sqrt( sum_{q in N, d} (q_d - m)^2 / (|N| D - 1) ), m the mean of all |N| D
  coordinates. It is the default because it is the reading under which centers drawn
  from N(0, 1) far from fixed classes come back to them (with w_K falling, as in the
  paper's Fig. 5), where the two readings below stall (tested). It is not translation
  invariant (the spread of the coordinate means across d adds to it), which keeps the
  difference sigma(n, x_i) - sigma(n, C_y) small next to K's range.
* ``spread="vector_std"``: the translation- and rotation-invariant vector standard
  deviation of eq. 12, sqrt( sum_{q in N} ||q - mean(N)||^2 / (|N| - 1) ). Under it
  the n points nearest to a center outside its class are a wide "cap" of the class,
  wider than the neighbourhoods of its samples, so every sigma(n, x_i) - sigma(n, C_y)
  is negative, w_K rises to make K ~ Z, beta collapses and the centers stall outside
  their classes.
* ``spread="rms_distance"``: sqrt(mean ||q - p||^2) over N, the root mean square
  distance *from p*. With it, sigma(n, C_y) grows with the distance of the center from
  its class, beta underflows to 0 for centers far from their classes and the loss
  switches itself off.

Both std forms give 0 for |N| < 2 (a spread needs two points).

Other choices the paper leaves open (fixed here and tested):

* Gradients flow through beta (the spreads and K) to the features, the centers and
  w_K. The choice of the n nearest (``top_k``) is not differentiated, so with
  ``spread="std"`` a center gets its gradient from ||x_i - C_y||^2 only. The square
  roots use a double ``where`` so a zero spread has a zero, not infinite, gradient.
* Neighbourhoods come from ``top_k`` on fused distances with the other classes (and
  self) masked to +inf, block by block of rows (no [B, B] matrix is ever stored, no
  sort, no loop over classes); only the selected points are then used, exactly. With
  ``axis_name`` the neighbours are searched in the gathered global batch and the mean
  is over the global batch.
* ``where`` leaves rows out of every neighbourhood (of samples and of centers) and out
  of the mean, as if sliced out; ``reduction="none"`` returns the per-sample terms
  beta_i ||x_i - C_{y_i}||^2 [B] (0 at masked rows).
* NaN or inf in a selected feature gives NaN (its own term, and the spread of every
  neighbourhood it is in), and an infinite center or growth rate w_K gives NaN for the
  rows of its class (the sigmoid would otherwise hide an infinite w_K); a label outside
  [0, C) gives NaN (a ValueError when the
  labels are concrete); an empty or all-masked batch gives 0.
* Features below float32 precision are computed in float32.
  The squared distances are fused (‖a‖² + ‖b‖² - 2 a·b), so in float32 features above
  about 1e19 in magnitude overflow them (an inf loss): use float64 features at such scales.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disc_jax.losses import _batch
from disc_jax.losses import _checks
from disc_jax.losses import _pairwise


SPREADS = ("std", "vector_std", "rms_distance")


def _neighbourhood_spread(points: jax.Array, point_ids: jax.Array, all_features: jax.Array,
                          member: Callable[[jax.Array], jax.Array], k: int,
                          spread: str) -> jax.Array:
  """sigma(n, p) for each row p of ``points`` over its k nearest members (module docstring).

  ``member(point_id)`` -> [B] bool marks the samples of ``all_features`` that may
  be neighbours of that point. The k nearest are selected on the fused distances
  (``top_k`` with non-members at +inf; not differentiated); fewer than k members use
  those there are. ``spread``: 'std', 'vector_std' or 'rms_distance' (module docstring).
  """
  inf = jnp.asarray(jnp.inf, points.dtype)
  fixed = jax.lax.stop_gradient(all_features)
  sq_norms = jnp.sum(fixed * fixed, axis=-1)

  def select(args):
    point, point_id = args
    raw = _pairwise.raw_sq_dist_row(point, fixed, sq_norms)          # [B]
    values, index = jax.lax.top_k(jnp.where(member(point_id), -raw, -inf), k)
    return index, jnp.isfinite(values)

  index, valid = _pairwise.map_rows(select, (jax.lax.stop_gradient(points), point_ids),
                                    all_features.shape[0])

  dim = all_features.shape[1]

  def std_of_neighbours(args):
    _, nb_index, nb_valid = args
    w = nb_valid.astype(all_features.dtype)[:, None]
    count = jnp.sum(w)
    nb = all_features[nb_index]                                      # [k, D]
    if spread == "std":      # all |N| D coordinates as one sample
      mean = jnp.sum(w * nb) / jnp.maximum(count * dim, 1)
      dof = count * dim - 1
    else:                    # vector_std: deviations from the mean point
      mean = jnp.sum(w * nb, axis=0) / jnp.maximum(count, 1)
      dof = count - 1
    sum_sq = jnp.sum(w * jnp.square(nb - mean))
    return jnp.where(count >= 2, _pairwise.safe_sqrt(sum_sq / jnp.maximum(dof, 1)), 0.0)

  def rms_distance(args):
    point, nb_index, nb_valid = args
    sq = jnp.sum(jnp.square(point[None, :] - all_features[nb_index]), axis=-1)  # [k]
    mean = jnp.sum(jnp.where(nb_valid, sq, 0)) / jnp.maximum(jnp.sum(nb_valid), 1)
    return _pairwise.safe_sqrt(mean)

  fn = rms_distance if spread == "rms_distance" else std_of_neighbours
  return _pairwise.map_rows(jax.checkpoint(fn), (points, index, valid),
                            k * all_features.shape[1])


def sigma2r_loss(features: ArrayLike, labels: ArrayLike, centers: ArrayLike,
                 growth: ArrayLike, *, n_neighbors: int = 7, z: float = 40.0,
                 epsilon: float = 1e-3, spread: str = "std",
                 where: ArrayLike | None = None, reduction: str = "mean",
                 axis_name: _batch.AxisName = None) -> jax.Array:
  r"""σ²R loss (La Grassa et al., eq. 8-10, Algorithm 1).

  .. math::
    \mathcal{L}_{\sigma^2R} = \frac{1}{m}\sum_{i=1}^{m}
      \frac{Z}{1 + e^{-K_{y_i}(\sigma(n, x_i) - \sigma(n, C_{y_i}))}}
      \|x_i - C_{y_i}\|^2, \qquad K_y = \epsilon + \frac{Z}{1 + e^{-w_{K,y}}}

  with sigma(n, p) the standard deviation of the n same-class samples of the batch
  nearest to p (Algorithm 1, lines 3 and 5; ``spread`` and the module docstring
  define it exactly).
  Samples in sparser neighbourhoods than their class center get weights near
  Z; samples in denser ones near 0.

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[0., 0.], [2., 0.], [0., 2.], [2., 2.]])
    >>> loss = sigma2r_loss(x, jnp.zeros(4, jnp.int32), jnp.ones((1, 2)), jnp.zeros(1),
    ...                     n_neighbors=2, z=2.0)
    >>> # x_0's 2 neighbours (2, 0), (0, 2): coordinates {2, 0, 0, 2}, sigma = sqrt(4/3);
    >>> # C's nearest 2 (0, 0), (2, 0): {0, 0, 2, 0}, sigma = 1 (likewise for every x_i);
    >>> # beta = 2 sigmoid(1.001 (sqrt(4/3) - 1)), times ||x - C||^2 = 2
    >>> round(float(loss), 4)
    2.1545

  Args:
    features: [B, D] float features x_i.
    labels: [B] int class ids in [0, C).
    centers: [C, D] learned class centers C_y.
    growth: [C] learned growth-rate parameters w_K (one sigmoid per class).
    n_neighbors: n >= 1, the neighbourhood size (paper: 7).
    z: Z > 0, the range of beta and the scale of K (paper: 40).
    epsilon: the lower bound of K (eq. 9), >= 0.
    spread: ``"std"`` (default: the standard deviation of the n nearest points'
      coordinates, Algorithm 1), ``"vector_std"`` (their eq. 12 vector standard
      deviation) or ``"rms_distance"`` (their RMS distance from p); see the module
      docstring for the definitions and why ``"std"`` is the default.
    where: [B] bool, the rows that take part (None: all), as if
      ``features[where]``, ``labels[where]`` had been passed: they are nobody's
      neighbours and are left out of the mean.
    reduction: ``"mean"`` (the scalar above) or ``"none"`` (the per-sample terms
      beta_i ||x_i - C_{y_i}||^2 [B], 0 at masked rows).
    axis_name: mapped axis of ``shard_map``/``pmap`` over which the batch is
      split; neighbourhoods and the mean are then those of the global batch. Each
      device passes the mask of its own rows; ``"none"`` returns its own rows.

  Returns:
    The scalar loss, or the [B] per-sample terms.

  References:
    La Grassa, Gallo and Landro, "σ²R loss: a weighted loss by multiplicative
    factors using sigmoidal functions", eq. 8-10 and Algorithm 1.
  """
  features = _checks.float_array(features, "features", ndim=2)
  centers = _checks.float_array(centers, "centers", ndim=2)
  growth = _checks.float_array(growth, "growth", ndim=1)
  num_classes, dim = centers.shape
  if dim != features.shape[1]:
    raise ValueError(f"`centers` must have shape [num_classes, D={features.shape[1]}] to "
                     f"match `features` {features.shape}, got {centers.shape}.")
  if growth.shape != (num_classes,):
    raise ValueError(f"`growth` must have shape [num_classes={num_classes}] (one w_K per "
                     f"row of `centers`), got {growth.shape}.")
  n = _checks.positive_int(n_neighbors, "n_neighbors")
  _checks.positive_value(z, "z", hint="Z is the range of beta and the scale of K (paper: 40).")
  _checks.nonnegative_value(epsilon, "epsilon", hint="epsilon is the lower bound of K.")
  if spread not in SPREADS:
    raise ValueError(f"`spread` must be one of {SPREADS}, got {spread!r}.")
  where = _checks.where_array(where, features.shape[0])
  labels = _checks.label_array(labels, features.shape[0], num_classes=num_classes,
                               where=where)
  reduction = _checks.reduction(reduction)
  dtype = jnp.promote_types(jnp.promote_types(features.dtype, centers.dtype),
                            jnp.promote_types(growth.dtype, jnp.float32))
  features, centers, growth = (a.astype(dtype) for a in (features, centers, growth))
  if features.shape[0] == 0:  # no sample, no neighbourhood (static shapes)
    return _batch.reduce(jnp.zeros((0,), dtype), reduction, axis_name=axis_name)
  valid = jnp.ones(features.shape[0], bool) if where is None else where
  features, labels = _batch.clean_rows(features, labels, where=where,
                                       num_classes=num_classes)
  per_sample = _sigma2r(features, labels, valid, centers, growth, jnp.asarray(z, dtype),
                        jnp.asarray(epsilon, dtype), n, spread, axis_name)
  loss = _batch.reduce(per_sample, reduction, where=where, axis_name=axis_name)  # eq. 10
  return _batch.nan_for_infinite(loss, labels, centers, growth[:, None], reduction=reduction,
                                 where=where, axis_name=axis_name)


@functools.partial(jax.jit, static_argnames=("n", "spread", "axis_name"))
def _sigma2r(features: jax.Array, labels: jax.Array, valid: jax.Array, centers: jax.Array,
             growth: jax.Array, z: jax.Array, epsilon: jax.Array, n: int, spread: str,
             axis_name: _batch.AxisName) -> jax.Array:
  """Per-sample terms beta_i ||x_i - C_{y_i}||^2 on checked inputs (jitted: one
  compilation per shape, also eagerly)."""
  num_classes = centers.shape[0]
  all_features, row_ids = _pairwise.global_rows(features, axis_name)
  all_labels = _batch.gather_batch(labels, axis_name)
  all_valid = _batch.gather_batch(valid, axis_name)
  batch = all_features.shape[0]
  k = min(n, batch)
  col_ids = jnp.arange(batch)
  # sigma(n, x_i): the n nearest other (selected) samples of the same class.
  labels_and_ids = jnp.stack([labels, row_ids], axis=-1)
  sigma_x = _neighbourhood_spread(
      features, labels_and_ids, all_features,
      lambda li: (all_labels == li[0]) & (col_ids != li[1]) & all_valid, k, spread)
  # sigma(n, C_y): the min(n, n_y) (selected) samples of class y nearest to C_y.
  sigma_c = _neighbourhood_spread(centers, jnp.arange(num_classes), all_features,
                                  lambda y: (all_labels == y) & all_valid, k, spread)

  growth_rate = epsilon + z * jax.nn.sigmoid(growth[labels])          # eq. 9
  beta = z * jax.nn.sigmoid(growth_rate * (sigma_x - sigma_c[labels]))  # eq. 8
  dist = jnp.sum(jnp.square(features - centers[labels]), axis=-1)
  return beta * dist
