"""Pairwise building blocks shared by the pairwise losses (MMD/ITRA, sigma2R, SNNL).

Layout. A pairwise loss is written per *row*: the rows are this device's local
samples and the columns are the whole (gathered) global batch. Each row knows
its index in the global batch (``row_ids``), so self-pairs are recognised, and
the per-row results are reduced with ``psum``. Without an ``axis_name`` the rows
are the whole batch. This splits the quadratic work across devices and gives
the exact global-batch gradient under ``jax.shard_map`` (the transpose of
``all_gather`` sums each device's column cotangents back onto the owner's rows).

Memory. Rows are processed in blocks of about ``_BLOCK_ELEMS`` pair entries
(:func:`map_rows`: ``lax.map`` over blocks, ``vmap`` inside a block), so the
elementwise temporaries of a loss (kernel values, masks, softmax weights, their
gradients) are [block, N], never [R, N]. The distances themselves are either
recomputed per block from one matmul, or -- when a loss needs all of them at
once, like the median bandwidth of MMD -- stored once as the only [R, N] array
(:func:`raw_sq_dists`) and differentiated through :func:`dist_row`, whose
derivative is that of the fused distance, so the backward pass needs two
matmuls per block and no second [R, N] array.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from disc_jax.losses import _batch

_BLOCK_ELEMS = 1 << 22  # pair entries per block: 16 MiB per float32 temporary
# Counts of pairs are int32: N (N - 1) must stay below 2**31.
_MAX_MEDIAN_POINTS = 46_340


def _block_size(num_rows: int, row_elems: int) -> int:
  """Rows per block: a divisor of ``num_rows`` near ``_BLOCK_ELEMS / row_elems``.

  A divisor avoids ``lax.map``'s remainder (whose concatenation would copy the
  output); if the best divisor is under half the target, the target is used.
  """
  target = max(1, _BLOCK_ELEMS // max(row_elems, 1))
  if num_rows <= target:
    return num_rows
  for block in range(target, target // 2, -1):
    if num_rows % block == 0:
      return block
  return target


def map_rows(fn: Callable[..., Any], xs: Any, row_elems: int) -> Any:
  """``fn`` applied to every row of the pytree ``xs`` (leading axis), block by block.

  ``fn`` is written for one row; each block of rows runs as one ``vmap`` (so
  matmuls stay matmuls) and the blocks run in a ``lax.map`` loop, keeping the
  temporaries to [block, row_elems].
  """
  num_rows = jax.tree.leaves(xs)[0].shape[0]
  block = _block_size(num_rows, row_elems)
  if block >= num_rows:
    return jax.vmap(fn)(xs)
  return jax.lax.map(fn, xs, batch_size=block)


def raw_sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
  """``||a_i||^2 + ||b_j||^2 - 2 a_i.b_j`` [Ra, Rb], unclipped (may round below 0).

  Fused form: one matmul per block of rows, no [Ra, Rb, D] intermediate. Not
  differentiated (``stop_gradient``): differentiate a row through :func:`dist_row`.
  """
  a, b = jax.lax.stop_gradient(a), jax.lax.stop_gradient(b)
  b2 = jnp.sum(b * b, axis=-1)
  return map_rows(lambda row: raw_sq_dist_row(row, b, b2), a, b.shape[0])


def raw_sq_dist_row(a: jax.Array, b: jax.Array, b_sq_norms: jax.Array) -> jax.Array:
  """One row of :func:`raw_sq_dists`: ``||a||^2 + ||b_j||^2 - 2 a.b_j`` [N] for ``a`` [D].

  ``b_sq_norms`` [N] is ``sum(b * b, -1)``, computed once by the caller. Under
  ``vmap`` over a block of rows the product becomes one matmul, at HIGHEST
  precision: the fused form cancels, so reduced-precision matmul passes (TF32,
  bf16 on accelerators) would swamp small distances.
  """
  ab = jnp.matmul(b, a, precision=jax.lax.Precision.HIGHEST)
  return jnp.sum(a * a) + b_sq_norms - 2.0 * ab


def clip_dists(raw: jax.Array) -> jax.Array:
  """``raw`` clipped at 0 with ``where`` (no -0.0; gradient 0 below 0); NaN stays NaN.

  The test is ``raw <= 0`` rather than ``raw > 0``: NaN compares False either
  way, so this form keeps a NaN distance (from a NaN or inf feature) NaN
  instead of turning it into a plausible 0.
  """
  return jnp.where(raw <= 0, jnp.zeros_like(raw), raw)


@jax.custom_jvp
def dist_row(raw_row: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  """``raw_row`` (precomputed ``||a - b_j||^2`` [N]) with the derivative of that distance.

  The value is taken as given (no recomputation); the derivative with respect
  to ``a`` [D] and ``b`` [N, D] is that of the fused form, so the backward pass
  of a block of rows is two matmuls -- one when ``b`` is not differentiated
  (e.g. under ``stop_gradient``): its terms are skipped, not computed on zeros.
  ``raw_row`` itself is not differentiated.
  """
  del a, b
  return raw_row


def _dist_row_jvp(primals, tangents):
  raw_row, a, b = primals
  _, da, db = tangents
  hi = jax.lax.Precision.HIGHEST
  tangent = jnp.zeros_like(raw_row)
  if not isinstance(da, SymbolicZero):   # d/da: 2 (a - b_j) . da
    tangent = tangent + 2.0 * (jnp.dot(a, da, precision=hi) - jnp.matmul(b, da, precision=hi))
  if not isinstance(db, SymbolicZero):   # d/db: 2 (b_j - a) . db_j
    tangent = tangent + 2.0 * (jnp.sum(b * db, axis=-1) - jnp.matmul(db, a, precision=hi))
  return raw_row, tangent


dist_row.defjvp(_dist_row_jvp, symbolic_zeros=True)


def safe_sqrt(x: jax.Array) -> jax.Array:
  """``sqrt(max(x, 0))`` with gradient 0 (not inf/NaN) where ``x <= 0``; NaN stays NaN.

  The double ``where`` keeps the unselected branch finite: the derivative of
  ``sqrt`` is evaluated at 1 instead of at 0, and its cotangent is masked out.
  The branch test is ``x <= 0`` so that a NaN (which compares False) takes the
  ``sqrt`` branch and propagates.
  """
  nonpos = x <= 0
  return jnp.where(nonpos, jnp.zeros_like(x), jnp.sqrt(jnp.where(nonpos, jnp.ones_like(x), x)))


def global_rows(x: jax.Array, axis_name: _batch.AxisName) -> tuple[jax.Array, jax.Array]:
  """The gathered global batch of ``x`` and the global indices [b_local] of the local rows."""
  offset = _batch.local_row_offset(x, axis_name)
  return _batch.gather_batch(x, axis_name), offset + jnp.arange(x.shape[0])


def masked_logsumexp(logits: jax.Array, mask: jax.Array, axis: int = -1
                     ) -> tuple[jax.Array, jax.Array]:
  """Stable ``log sum exp`` of ``logits`` over the entries where ``mask`` is True.

  Returns ``(lse, nonempty)``; rows with no selected entry get ``lse = 0`` and
  ``nonempty = False``. Unselected entries enter ``exp`` as ``-inf``, so neither
  the value nor the gradient can overflow to inf/NaN. ``nonempty`` is decided by
  the mask alone, so a NaN among the selected logits gives a NaN ``lse`` (it is
  not mistaken for an empty row).
  """
  neg_inf = jnp.asarray(-jnp.inf, logits.dtype)
  masked = jnp.where(mask, logits, neg_inf)
  peak = jax.lax.stop_gradient(jnp.max(masked, axis=axis, keepdims=True))
  peak = jnp.where(jnp.isfinite(peak), peak, jnp.zeros_like(peak))
  total = jnp.sum(jnp.exp(masked - peak), axis=axis)
  nonempty = jnp.any(mask, axis=axis)
  lse = jnp.log(jnp.where(nonempty, total, jnp.ones_like(total))) + jnp.squeeze(peak, axis)
  return jnp.where(nonempty, lse, jnp.zeros_like(lse)), nonempty


def median_off_diagonal(d: jax.Array, row_ids: jax.Array, num_points: int,
                        axis_name: _batch.AxisName = None, *,
                        row_valid: jax.Array | None = None,
                        col_valid: jax.Array | None = None) -> jax.Array:
  """Exact median of the off-diagonal entries of a distance matrix given as row blocks.

  ``d`` [R, N] holds the rows ``row_ids`` of a symmetric [N, N] distance matrix
  (the other rows live on the other devices of ``axis_name``); negative entries
  count as 0, so the unclipped :func:`raw_sq_dists` may be passed. The median is
  over the ordered pairs ``i != j``; each unordered pair appears twice there,
  which leaves the median unchanged, so it is also the median over the
  N (N - 1) / 2 distinct pairs.

  ``row_valid`` [R] and ``col_valid`` [N] (both or neither) restrict it to the
  pairs of valid points (the rows a loss's mask selects): the other entries are
  left out of every count (inside the per-row passes, so no second [R, N] array
  is formed), and the number of pairs is that of the valid points, counted
  globally. With fewer than 2 valid points there is no pair and the result is 0
  (the callers' fallback then applies).

  No sort of the N^2 values: the k-th smallest value is found by bisection on the
  bit pattern of non-negative floats (which orders like the values), one
  counting pass over ``d`` per bit (32 passes in float32, 64 in float64), with
  the counts ``psum``-ed over ``axis_name``. With an even number of pairs the
  median is the mean of the two middle values, as in ``numpy.median``. A NaN
  entry is never counted; the callers' values are NaN in that case anyway.
  """
  if num_points > _MAX_MEDIAN_POINTS:
    raise ValueError(f"the default `sigma` (median of pairwise distances) supports at most "
                     f"{_MAX_MEDIAN_POINTS} points, got {num_points}; pass `sigma` explicitly.")
  d = jax.lax.stop_gradient(d)
  cols = jnp.arange(d.shape[1])
  inf = jnp.asarray(jnp.inf, d.dtype)
  if row_valid is None:
    num_valid = num_points
    row_valid = jnp.ones(d.shape[0], bool)
    col_valid = jnp.ones(d.shape[1], bool)
  else:
    num_valid = _batch.psum(jnp.sum(row_valid, dtype=jnp.int32), axis_name)
  # Self-pairs are left out by subtracting the diagonal's own counts. Comparisons
  # treat -0.0 as 0, and negative entries fall below every t >= 0.
  diag = jnp.take_along_axis(d, row_ids[:, None], axis=1)[:, 0]      # [R]
  num_pairs = num_valid * (num_valid - 1)
  k_lo = num_pairs // 2  # 1-indexed rank of the lower middle value
  int_dtype = jnp.int64 if d.dtype == jnp.float64 else jnp.int32
  bits = 64 if d.dtype == jnp.float64 else 32

  def count_le(t):
    per_row = map_rows(lambda a: jnp.sum((a[0] <= t) & col_valid & a[1], dtype=jnp.int32),
                       (d, row_valid), d.shape[1])
    on_diag = jnp.sum((diag <= t) & row_valid, dtype=jnp.int32)
    return _batch.psum(jnp.sum(per_row) - on_diag, axis_name)

  def as_float(i):
    return jax.lax.bitcast_convert_type(i.astype(int_dtype), d.dtype)

  def body(_, lohi):
    lo, hi = lohi
    mid = lo + (hi - lo) // 2
    enough = count_le(as_float(mid)) >= k_lo
    return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

  max_bits = jax.lax.bitcast_convert_type(jnp.asarray(np.finfo(d.dtype).max, d.dtype),
                                          int_dtype)
  lo, _ = jax.lax.fori_loop(0, bits, body, (jnp.zeros((), int_dtype), max_bits))
  v_lo = as_float(lo)

  def next_above(args):
    row, row_id, valid = args
    above = (row > v_lo) & (cols != row_id) & col_valid & valid
    return jnp.min(jnp.where(above, row, inf), initial=inf)

  next_up = jnp.min(map_rows(next_above, (d, row_ids, row_valid), d.shape[1]), initial=inf)
  next_up = next_up if axis_name is None else jax.lax.pmin(next_up, axis_name)
  v_hi = jnp.where(count_le(v_lo) >= k_lo + 1, v_lo, next_up)
  median = 0.5 * (v_lo + v_hi)
  return jnp.where(num_pairs > 0, median, jnp.zeros_like(median))
