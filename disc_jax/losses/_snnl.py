"""Soft nearest neighbour loss (Frosst, Papernot and Hinton, 2019).

As stated in the sigma^2R paper (La Grassa et al.), eq. 2:

  L_sn = -1/m sum_i log( sum_{j != i, y_j = y_i} exp(-||x_i - x_j||^2 / T)
                         / sum_{k != i} exp(-||x_i - x_k||^2 / T) )

Choices (fixed here and tested):

* A sample with no other sample of its class in the batch has an empty
  numerator (log 0 = -inf); such samples are left out of the mean, which runs
  over the samples that have a same-class partner (0 if there is none).
* Computed as logsumexp(denominator) - logsumexp(numerator) with masked,
  max-shifted exponentials, so neither far-apart points nor a tiny temperature
  underflow to log(0); self-pairs are excluded from both sums.
* With ``axis_name`` each device computes its rows against the gathered global
  batch and the mean is taken over the global batch.
* ``where`` masks rows out of everything (as neighbours in every sum, and out
  of the mean), as if sliced out of the batch.
* ``reduction="none"`` gives each row's term, 0 for rows without a partner and
  for masked rows; the default is their sum over the number of rows that have a
  partner (so it is not their plain mean when some row has none).
* NaN or inf in a selected feature gives NaN: the NaN distance survives the
  clip at 0 and the masked log-sum-exp (whose emptiness test uses the mask,
  not the sum).
* Features below float32 precision are computed in float32.
  The squared distances are fused (‖a‖² + ‖b‖² - 2 a·b), so in float32 features above
  about 1e19 in magnitude overflow them (NaN): use float64 features at such scales.

Memory: one [B, B] matrix of fused squared distances is stored; the softmax
weights and gradient temporaries are formed in blocks of rows (``_pairwise``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disc_jax.losses import _batch
from disc_jax.losses import _checks
from disc_jax.losses import _pairwise


def soft_nearest_neighbor_loss(features: ArrayLike, labels: ArrayLike, *,
                               temperature: float | ArrayLike = 1.0,
                               where: ArrayLike | None = None, reduction: str = "mean",
                               axis_name: _batch.AxisName = None) -> jax.Array:
  r"""Soft nearest neighbour loss (σ²R paper eq. 2; Frosst et al. 2019).

  .. math::
    \mathcal{L}_{sn} = -\frac{1}{|V|}\sum_{i \in V} \log
      \frac{\sum_{j \ne i,\, y_j = y_i} e^{-\|x_i - x_j\|^2 / T}}
           {\sum_{k \ne i} e^{-\|x_i - x_k\|^2 / T}}

  where V is the set of samples with at least one other sample of their class
  in the (global) batch; the others are left out of the mean. Low values mean
  each point's nearest neighbours (in the softmax sense) share its label.
  Labels may be any integers (there is no ``num_classes``).

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[0., 0.], [0., 1.], [5., 5.], [5., 6.]])
    >>> round(float(soft_nearest_neighbor_loss(x, jnp.array([0, 0, 1, 1]))), 6)
    0.0
    >>> round(float(soft_nearest_neighbor_loss(x, jnp.array([0, 1, 0, 1]))), 4)
    49.0
    >>> soft_nearest_neighbor_loss(x, jnp.array([0, 0, 1, 2]), reduction="none").tolist()
    [0.0, 0.0, 0.0, 0.0]

  Args:
    features: [B, D] float features.
    labels: [B] int class ids.
    temperature: T > 0 (not learned).
    where: [B] bool, the rows that take part (None: all), as if
      ``features[where]``, ``labels[where]`` had been passed.
    reduction: ``"mean"`` (the scalar above) or ``"none"`` (the [B] terms,
      0 for rows outside V and masked rows).
    axis_name: mapped axis of ``shard_map``/``pmap`` over which the batch is
      split; the pairs and the mean are then those of the global batch. Each
      device passes the mask of its own rows; ``"none"`` returns its own rows.

  Returns:
    The scalar loss (0 when no sample has a same-class partner), or [B] terms.

  References:
    Frosst, Papernot and Hinton, "Analyzing and improving representations with
    the soft nearest neighbor loss", ICML 2019. La Grassa et al., "σ²R loss: a
    weighted loss by multiplicative factors using sigmoidal functions", eq. 2.
  """
  features = _checks.float_array(features, "features", ndim=2)
  features = features.astype(jnp.promote_types(features.dtype, jnp.float32))
  where = _checks.where_array(where, features.shape[0])
  labels = _checks.label_array(labels, features.shape[0])
  reduction = _checks.reduction(reduction)
  _checks.positive_value(temperature, "temperature")
  if features.shape[0] == 0:
    return _batch.reduce(jnp.zeros((0,), features.dtype), reduction, axis_name=axis_name)
  valid = jnp.ones(features.shape[0], bool) if where is None else where
  features, labels = _batch.clean_rows(features, labels, where=where)
  terms, counted = _snnl(features, labels, valid, jnp.asarray(temperature, features.dtype),
                         axis_name)
  return _checks.nan_unless_valid(
      _batch.reduce(terms, reduction, where=counted, axis_name=axis_name), temperature)


@functools.partial(jax.jit, static_argnames=("axis_name",))
def _snnl(features: jax.Array, labels: jax.Array, valid: jax.Array, temperature: jax.Array,
          axis_name: _batch.AxisName) -> tuple[jax.Array, jax.Array]:
  """Per-row terms [b] and the rows in V (jitted: one compilation per shape, also eagerly)."""
  all_features, row_ids = _pairwise.global_rows(features, axis_name)
  all_labels = _batch.gather_batch(labels, axis_name)
  all_valid = _batch.gather_batch(valid, axis_name)

  raw = _pairwise.raw_sq_dists(features, all_features)               # [b, B]
  col_ids = jnp.arange(all_features.shape[0])

  def row_term(args):
    raw_row, row, row_id, label = args
    d = _pairwise.clip_dists(_pairwise.dist_row(raw_row, row, all_features))
    others = (col_ids != row_id) & all_valid
    log_den, _ = _pairwise.masked_logsumexp(-d / temperature, others)
    log_num, has_partner = _pairwise.masked_logsumexp(-d / temperature,
                                                      others & (all_labels == label))
    return log_den - log_num, has_partner

  terms, has_partner = _pairwise.map_rows(jax.checkpoint(row_term),
                                          (raw, features, row_ids, labels),
                                          all_features.shape[0])
  return terms, has_partner & valid
