"""Global-batch statistics shared by every loss.

Every loss in ``disc_jax.losses`` is defined on the *global* batch. When a loss is
called per device inside ``jax.shard_map`` or ``jax.pmap``, it passes its
``axis_name`` here and the helpers below turn each local reduction into a global
one with collectives (``psum`` for sums and counts, ``all_gather`` for the pairs
of pairwise losses). With ``axis_name=None`` they are plain reductions, so the
same loss code serves the single-device and the data-parallel case and gives the
same value on the concatenated batch.

Masks. Every loss takes ``where`` ([B] bool, one per device under ``axis_name``):
unselected rows take part in no statistic (counts, sums, pairs, medians) and in
no mean, exactly as if they had been sliced out of the batch -- but the shapes
stay static, so padded or ragged batches need no recompilation.

Conventions: the batch axis is axis 0; ``labels`` are integer class ids.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Union

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

AxisName = Union[Hashable, Sequence[Hashable], None]


def psum(x: ArrayLike, axis_name: AxisName) -> jax.Array:
  """``jax.lax.psum`` over ``axis_name``, or ``x`` itself when it is ``None``."""
  x = jnp.asarray(x)
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def global_batch_size(x: jax.Array, axis_name: AxisName) -> int | jax.Array:
  """Number of rows of the global batch that ``x`` (local rows on axis 0) is part of."""
  return x.shape[0] if axis_name is None else jax.lax.psum(x.shape[0], axis_name)


def valid_count(x: jax.Array, where: jax.Array | None,
                axis_name: AxisName) -> int | jax.Array:
  """Rows of the global batch that take part: all of them, or those where ``where``."""
  if where is None:
    return global_batch_size(x, axis_name)
  return psum(jnp.sum(where, dtype=jnp.int32), axis_name)


def nan_for_infinite(loss: jax.Array, labels: jax.Array, *params: jax.Array, reduction: str,
                     where: jax.Array | None = None, axis_name: AxisName = None) -> jax.Array:
  """``loss`` made NaN where a selected row's class has an infinite entry in one of
  ``params``, learned per-class parameters [C, ...] (centers, growth rates).

  :func:`clean_rows` turns infinite features into NaN; an infinite learned parameter
  gets the same outcome here, so it never surfaces as an inf that looks like a large
  valid value, or as a finite loss (the sigmoid of an infinite growth rate is 1).
  ``loss`` is the reduced value (NaN when any selected row of the global batch is of
  such a class) or, for ``reduction="none"``, the [B] terms (NaN at those rows). It is
  applied to the finished loss, so the loss's own arithmetic, and its rounding, stay as
  they are.
  """
  bad = jnp.zeros(params[0].shape[0], bool)
  for p in params:
    bad = bad | jnp.any(jnp.isinf(p).reshape(p.shape[0], -1), axis=1)
  rows = bad[labels] if where is None else bad[labels] & where
  nan = jnp.asarray(jnp.nan, loss.dtype)
  if reduction == "none":
    return jnp.where(rows, nan, loss)
  return jnp.where(psum(jnp.sum(rows, dtype=jnp.int32), axis_name) > 0, nan, loss)


def clean_rows(x: jax.Array, labels: jax.Array | None = None, *,
               where: jax.Array | None = None, num_classes: int | None = None
               ) -> tuple[jax.Array, jax.Array | None]:
  """``(x, labels)`` made safe for batch statistics; every loss calls it first.

  * ``inf`` and ``-inf`` in ``x`` become NaN. A non-finite feature has no
    meaningful loss, and left as inf it would surface as an inf loss (which
    looks like a large but valid value), or vanish in a clip or a ``where``;
    as NaN it propagates to the loss (NaN in, NaN out).
  * Selected rows whose label lies outside [0, num_classes) get NaN features
    and label 0: a traced label cannot be range-checked (concrete ones raise a
    ValueError in ``_checks.label_array``), and the NaN row then makes the loss
    NaN like any NaN input, instead of a plausible value from a clamped gather
    or a zero one-hot row.
  * Rows masked out by ``where`` get zero features and label 0, so nothing in
    them (padding, NaN garbage, a bad label) can reach a statistic through a
    product with a zero weight (0 * NaN = NaN), and their gradient is exactly 0.
  """
  x = jnp.where(jnp.isinf(x), jnp.asarray(jnp.nan, x.dtype), x)
  if labels is not None and num_classes is not None:
    bad = (labels < 0) | (labels >= num_classes)
    if where is not None:
      bad = bad & where
    labels = jnp.where(bad, jnp.zeros_like(labels), labels)
    bad = bad.reshape(bad.shape + (1,) * (x.ndim - 1))
    x = jnp.where(bad, jnp.asarray(jnp.nan, x.dtype), x)
  if where is not None:
    keep = where.reshape(where.shape + (1,) * (x.ndim - 1))
    x = jnp.where(keep, x, jnp.zeros_like(x))
    if labels is not None:
      labels = jnp.where(where, labels, jnp.zeros_like(labels))
  return x, labels


def one_hot(labels: jax.Array, num_classes: int, dtype,
            where: jax.Array | None = None) -> jax.Array:
  """[B] int -> [B, num_classes] one-hot in ``dtype``; zero rows where ``where`` is False.

  Out-of-range ids also give zero rows (callers turn those rows' values into
  NaN first, see :func:`clean_rows`).
  """
  oh = jax.nn.one_hot(labels, num_classes, dtype=dtype)
  return oh if where is None else oh * where[:, None].astype(dtype)


def class_counts(labels: jax.Array, num_classes: int, *, axis_name: AxisName = None,
                 dtype=jnp.float32, where: jax.Array | None = None) -> jax.Array:
  """Samples of each class in the global batch (rows where ``where``): [num_classes]."""
  return psum(one_hot(labels, num_classes, dtype, where).sum(axis=0), axis_name)


def class_sums(values: jax.Array, labels: jax.Array, num_classes: int, *,
               axis_name: AxisName = None, where: jax.Array | None = None) -> jax.Array:
  """Per-class sums of ``values`` [B, ...] over the global batch: [num_classes, ...]."""
  oh = one_hot(labels, num_classes, values.dtype, where)
  sums = jnp.tensordot(oh, values, axes=((0,), (0,)))
  return psum(sums, axis_name)


def batch_mean(per_sample: jax.Array, *, where: jax.Array | None = None,
               axis_name: AxisName = None) -> jax.Array:
  """Mean of per-sample values [B] over the global batch (only rows where ``where``).

  With no row to average (an empty batch, or a mask that selects no row
  anywhere) the mean is 0, not 0/0 = NaN, so a loss with nothing to average
  contributes nothing and its gradient stays finite. Unselected rows enter
  through a ``where``, so even a NaN there reaches neither value nor gradient.
  """
  per_sample = jnp.asarray(per_sample)
  if where is not None:
    per_sample = jnp.where(where, per_sample, jnp.zeros_like(per_sample))
  total = psum(per_sample.sum(), axis_name)
  count = valid_count(per_sample, where, axis_name)
  return total / jnp.maximum(count, 1).astype(total.dtype)


def reduce(per_sample: jax.Array, reduction: str, *, where: jax.Array | None = None,
           axis_name: AxisName = None) -> jax.Array:
  """``reduction="mean"``: :func:`batch_mean`; ``"none"``: the values [B], 0 where masked.

  ``"none"`` returns the local rows under ``axis_name`` (their mean over the
  selected rows of all devices is the ``"mean"`` value).
  """
  if reduction == "none":
    per_sample = jnp.asarray(per_sample)
    return per_sample if where is None else jnp.where(where, per_sample,
                                                      jnp.zeros_like(per_sample))
  return batch_mean(per_sample, where=where, axis_name=axis_name)


def gather_batch(x: jax.Array, axis_name: AxisName) -> jax.Array:
  """The global batch [B_global, ...] from the local rows (identity without an axis).

  Rows are ordered by device index, matching the order of the concatenated batch.
  """
  if axis_name is None:
    return x
  return jax.lax.all_gather(x, axis_name, axis=0, tiled=True)


def local_row_offset(x: jax.Array, axis_name: AxisName) -> int | jax.Array:
  """Index, in the gathered global batch, of this device's first local row."""
  if axis_name is None:
    return 0
  return jax.lax.axis_index(axis_name) * x.shape[0]
