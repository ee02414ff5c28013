"""Global-batch statistics shared by every loss.

Every loss in ``disc_jax.losses`` is defined on the *global* batch. When a loss is
called per device inside ``jax.shard_map`` or ``jax.pmap``, it passes its
``axis_name`` here and the helpers below turn each local reduction into a global
one with collectives (``psum`` for sums and counts, ``all_gather`` for the pairs
of pairwise losses). With ``axis_name=None`` they are plain reductions, so the
same loss code serves the single-device and the data-parallel case and gives the
same value on the concatenated batch.

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


def one_hot(labels: jax.Array, num_classes: int, dtype) -> jax.Array:
  """[B] int -> [B, num_classes] one-hot in ``dtype`` (out-of-range ids give 0 rows)."""
  return jax.nn.one_hot(labels, num_classes, dtype=dtype)


def class_counts(labels: jax.Array, num_classes: int, *, axis_name: AxisName = None,
                 dtype=jnp.float32) -> jax.Array:
  """Samples of each class in the global batch: [num_classes] in ``dtype``."""
  return psum(one_hot(labels, num_classes, dtype).sum(axis=0), axis_name)


def class_sums(values: jax.Array, labels: jax.Array, num_classes: int, *,
               axis_name: AxisName = None) -> jax.Array:
  """Per-class sums of ``values`` [B, ...] over the global batch: [num_classes, ...]."""
  oh = one_hot(labels, num_classes, values.dtype)
  sums = jnp.tensordot(oh, values, axes=((0,), (0,)))
  return psum(sums, axis_name)


def class_means(values: jax.Array, labels: jax.Array, num_classes: int, *,
                axis_name: AxisName = None) -> tuple[jax.Array, jax.Array]:
  """Per-class means [num_classes, ...] and counts [num_classes] of the global batch.

  A class absent from the batch has a mean of 0 (and a count of 0).
  """
  sums = class_sums(values, labels, num_classes, axis_name=axis_name)
  counts = class_counts(labels, num_classes, axis_name=axis_name, dtype=values.dtype)
  denom = jnp.maximum(counts, 1).reshape((-1,) + (1,) * (sums.ndim - 1))
  return sums / denom, counts


def batch_mean(per_sample: jax.Array, *, where: jax.Array | None = None,
               axis_name: AxisName = None) -> jax.Array:
  """Mean of per-sample values [B] over the global batch (only rows where ``where``).

  With a mask that selects no row anywhere, the mean is 0 (not NaN), so a loss
  with nothing to average contributes nothing and its gradient stays finite.
  """
  per_sample = jnp.asarray(per_sample)
  if where is None:
    total = psum(per_sample.sum(), axis_name)
    return total / global_batch_size(per_sample, axis_name)
  mask = where.astype(per_sample.dtype)
  total = psum(jnp.sum(jnp.where(where, per_sample, 0)), axis_name)
  count = psum(mask.sum(), axis_name)
  return total / jnp.maximum(count, 1)


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
