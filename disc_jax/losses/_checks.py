"""Input validation for the losses: errors that name the argument and the fix.

Shape and dtype checks are static, so they also run (once, at trace time) under
``jit``. The label-range check needs values and so runs only on concrete inputs
(NumPy arrays or committed ``jax.Array`` outside a trace); on traced labels the
losses turn the rows with an out-of-range label into NaN instead
(:func:`disc_jax.losses._batch.clean_rows`), so a bad label can never pass as a
plausible value. Hyperparameters likewise: concrete ones are range-checked with a
ValueError, traced ones (under jit) make the loss NaN when out of range
(:func:`nan_unless_valid`).
"""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def is_concrete(x) -> bool:
  """True when ``x`` holds values (not an abstract tracer inside jit/grad/vmap)."""
  return not isinstance(x, jax.core.Tracer)


def not_a_sequence(x, name: str) -> None:
  """A TypeError naming ``name`` for a Python list or tuple (JAX takes no lists as arrays:
  without this, ``jnp.result_type`` fails with a message that prints the values instead)."""
  if isinstance(x, (list, tuple)):
    raise TypeError(f"`{name}` must be an array, got a Python {type(x).__name__}; pass "
                    f"`jnp.asarray({name})` (JAX functions take no lists as arrays).")


def float_array(x: ArrayLike, name: str, *, ndim: int | None = None,
                min_ndim: int | None = None) -> jax.Array:
  """``x`` as a floating jax.Array of the expected rank, or a ValueError."""
  not_a_sequence(x, name)
  if not jnp.issubdtype(jnp.result_type(x), jnp.floating):
    raise ValueError(
        f"`{name}` must be a floating-point array, got dtype {jnp.result_type(x)}; "
        f"cast it first, e.g. `{name}.astype(jnp.float32)`.")
  x = jnp.asarray(x)
  if ndim is not None and x.ndim != ndim:
    raise ValueError(f"`{name}` must have rank {ndim}, got shape {x.shape}.")
  if min_ndim is not None and x.ndim < min_ndim:
    raise ValueError(f"`{name}` must have rank >= {min_ndim}, got shape {x.shape}.")
  return x


REDUCTIONS = ("mean", "none")


def reduction(value) -> str:
  """``value`` if it is one of :data:`REDUCTIONS`, else a ValueError naming them."""
  if not isinstance(value, str) or value not in REDUCTIONS:
    raise ValueError(f"`reduction` must be one of {REDUCTIONS}, got {value!r}: \"mean\" for "
                     f"the scalar batch mean, \"none\" for the per-example values [B].")
  return value


def where_array(where: ArrayLike | None, batch_size: int, *, name: str = "where",
                batch_name: str = "features") -> jax.Array | None:
  """``where`` as a bool jax.Array of shape [batch_size] (``None`` stays ``None``).

  A mask must be boolean: an integer 0/1 array would silently index or weight
  rows instead, so it is refused with the fix.
  """
  if where is None:
    return None
  not_a_sequence(where, name)
  dtype = jnp.result_type(where)
  if dtype != jnp.bool_:
    raise ValueError(f"`{name}` must be a bool array of shape [B] (True = row takes part), "
                     f"got dtype {dtype}; pass e.g. `{name}.astype(bool)`.")
  arr = jnp.asarray(where)
  if arr.shape != (batch_size,):
    raise ValueError(f"`{name}` must have shape [B] = ({batch_size},) to match "
                     f"`{batch_name}`, got shape {arr.shape}.")
  return arr


def label_array(labels: ArrayLike, batch_size: int, *, name: str = "labels",
                num_classes: int | None = None, batch_name: str = "features",
                where: ArrayLike | None = None) -> jax.Array:
  """``labels`` as an int jax.Array of shape [batch_size], or a ValueError.

  When ``labels`` are concrete and ``num_classes`` is given, also checks that
  every label lies in [0, num_classes) -- only on the rows selected by
  ``where`` (masked rows are padding, whose labels may be anything), and only
  when ``where`` is concrete too.
  """
  not_a_sequence(labels, name)
  dtype = jnp.result_type(labels)
  if not jnp.issubdtype(dtype, jnp.integer):
    raise ValueError(
        f"`{name}` must be integer class ids of shape [B], got dtype {dtype}; "
        f"for one-hot labels pass `{name}.argmax(-1)`.")
  concrete = is_concrete(labels)
  arr = jnp.asarray(labels)
  if arr.ndim != 1:
    raise ValueError(
        f"`{name}` must have rank 1 (shape [B]), got shape {arr.shape}; "
        f"for one-hot labels pass `{name}.argmax(-1)`.")
  if arr.shape[0] != batch_size:
    raise ValueError(
        f"`{name}` has {arr.shape[0]} entries but `{batch_name}` has batch size "
        f"{batch_size}; pass one label per row of `{batch_name}`.")
  if num_classes is not None and concrete and is_concrete(where) and arr.size:
    host = np.asarray(labels)
    if where is not None:
      host = host[np.asarray(where, bool)]
    if not host.size:
      return arr
    lo, hi = int(host.min()), int(host.max())
    if lo < 0 or hi >= num_classes:
      raise ValueError(
          f"`{name}` must lie in [0, num_classes={num_classes}), got values in "
          f"[{lo}, {hi}]; raise `num_classes` or remap the labels.")
  return arr


def positive_int(value, name: str) -> int:
  """A Python int >= 1, or a ValueError naming ``name`` (also for None, a string, NaN)."""
  try:
    ok = not isinstance(value, bool) and int(value) == value and int(value) >= 1
  except (TypeError, ValueError, OverflowError):
    ok = False
  if not ok:
    raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
  return int(value)


def positive_value(value, name: str, *, hint: str = "") -> None:
  """ValueError naming ``name`` unless every entry of a concrete ``value`` is finite and > 0.

  Traced values (inside jit/grad) cannot be checked and pass through; the
  check uses NumPy so it never stages an operation into a trace.
  """
  if value is None or not is_concrete(value):
    return
  v = np.asarray(value)
  if not np.all(np.isfinite(v) & (v > 0)):
    raise ValueError(f"`{name}` must be > 0 and finite, got {value!r}."
                     f"{' ' + hint if hint else ''}")


def nan_unless_valid(loss: jax.Array, value, *, positive: bool = True) -> jax.Array:
  """``loss``, or NaN if a *traced* hyperparameter ``value`` is not finite and > 0
  (>= 0 with ``positive=False``).

  Concrete values are checked eagerly with a ValueError (:func:`positive_value`,
  :func:`nonnegative_value`) and return ``loss`` unchanged: a hyperparameter given as a
  Python number adds nothing to the computation. A traced one (an argument of a jitted
  function, a schedule) cannot raise, so an invalid value makes the loss NaN instead of
  a plausible number.
  """
  if value is None or is_concrete(value):
    return loss
  v = jnp.asarray(value)
  ok = jnp.all(jnp.isfinite(v) & ((v > 0) if positive else (v >= 0)))
  return jnp.where(ok, loss, jnp.asarray(jnp.nan, loss.dtype))


def nonnegative_value(value, name: str, *, hint: str = "") -> None:
  """ValueError naming ``name`` unless every entry of a concrete ``value`` is finite and >= 0
  (traced values pass through, as in :func:`positive_value`)."""
  if value is None or not is_concrete(value):
    return
  v = np.asarray(value)
  if not np.all(np.isfinite(v) & (v >= 0)):
    raise ValueError(f"`{name}` must be >= 0 and finite, got {value!r}."
                     f"{' ' + hint if hint else ''}")
