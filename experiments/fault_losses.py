r"""Hostile-user fuzz of the public losses of :mod:`disc_jax.losses`.

  python -m experiments.fault_losses --out results/reliability_losses.md

Calls every public loss function directly (not through a config or the training loop)
with a battery of bad or edge inputs, eagerly and under ``jax.jit``, judges each call
*clean* or not against the contract the library states (``disc_jax/losses/__init__.py``
and each loss's docstring), writes a markdown report and prints
``N of M direct loss calls clean``.

Losses covered: the 15 functions of ``__all__`` that return a loss (``*_loss`` and
``mmd``). The other public functions (logits, masks, schedules, scores, S̄, the center
update) are building blocks with other return shapes and are not fuzzed here.

The fuzz is a table: each loss is a :class:`LossSpec` (how to build a small valid batch,
B = 6 rows, D = 4, C = 3, and which argument plays which role), each input case a
:class:`Case` (a name, a builder that turns the valid call into the hostile one, and an
:class:`Expect`), and one function, :func:`judge`, decides. In ``jit`` mode every array
argument of the call is traced (``jax.jit(lambda arrays: loss(**arrays, **static))``);
hyperparameters are closed over as Python values unless a case passes one as an array
(``*_array`` cases), which is then traced too. Cases whose answer is a static check
(a dtype, a rank, a length, a Python-valued hyperparameter that must raise) run eagerly
only: under jit the same Python code sees tracers of the same shapes and dtypes, so the
jit call repeats the eager one (``--every_mode`` runs them under jit too; when this fuzz
was written all 175 such pairs gave the same verdict and exception).

What counts as clean (the rules of :func:`judge`)
-------------------------------------------------

* **Clear error**: a ``ValueError`` or ``TypeError`` whose *first line* names the
  offending argument (word match, e.g. ``labels``, ``where``, ``temperature``; for a
  PRNG key argument ``rng`` or ``key``). Any other exception type (``IndexError``,
  ``ZeroDivisionError``, XLA errors, ...) or a message that does not name the argument
  is not clean, even when it is "correct" that the call failed.
* **NaN in, NaN out** (NaN, +inf or -inf in one entry of a float input that takes part:
  row 0 of the features, the center / kernel column / bias / growth of row 0's class,
  row 0 of the second batch): the result must be NaN. ``inf`` is not clean (the library
  itself says an inf loss looks like a large valid value), nor is a finite value, nor any
  error.
* **Poison in a masked row** (NaN in a row that ``where`` leaves out): the value must
  equal the masked call on clean inputs.
* **Out-of-range labels** (-1, C; and labels that exceed a smaller ``num_classes`` /
  fewer centers / a narrower head): under ``jit`` NaN only; eagerly NaN or a clear
  error naming the labels. The soft nearest neighbour loss documents "labels may be any
  integers": there these must give a valid value.
* **Empty batch** (0 rows): 0 of the right shape (``()``, or ``(0,)`` with
  ``reduction="none"``), or a clear error naming the argument. NaN is never clean.
* **``where`` all False**: 0 (``[B]`` zeros with ``reduction="none"``).
* **``reduction="none"``**: finite float values of shape ``[B]`` whose mean equals the
  ``"mean"`` call. On the batch-level losses (no per-example form) passing
  ``reduction`` must be a clear error naming it.
* **Valid edge cases** (batch of 1, one class, identical rows, 1e-30 features, float16,
  bfloat16, float64 with x64 off, signed activations, ...): a finite value of a float
  dtype and the expected shape; where the case has a reference call (float64 input,
  a rank-3 view of 4-D activations, ``bias=None`` vs zeros, python lists) the value
  must equal it (rtol 1e-5).
* **1e30 features**: finite, or +inf only where the loss's exact value exceeds the
  float32 range -- decided by evaluating the same call with x64 enabled and float64
  inputs: if that value is finite and larger than float32's max, +inf is the correctly
  rounded float32 result (IEEE overflow) and counts as clean; such calls are listed
  separately in the report, since no docstring mentions the overflow. NaN from finite
  inputs is never clean.
* **Wrong shapes / dtypes / python lists / scalars**: a clear error, or -- for lists,
  which a docstring's ``ArrayLike`` admits -- the value of the same call with arrays.
* **Bad hyperparameters** (<= 0 or NaN or inf where the docstring asks for > 0 or a
  range; an unknown choice string): a clear error, or NaN. A finite number is not clean
  (it looks like a loss), nor is inf. A hyperparameter the docstring accepts (e.g.
  ``n_neighbors`` larger than the class: "fewer than k members use those there are")
  must give a valid value.
* **jit agrees with eager**: a jitted call that should give a value must give the eager
  call's value (rtol 1e-4, atol 1e-6).

Judgement calls made here: inf is treated like a finite garbage value wherever NaN is
required; a non-finite hyperparameter (``temperature=inf``, ``sigma=inf``) is a bad one
even when the docstring only says "> 0"; ``z <= 0`` and ``epsilon < 0`` in
:func:`~disc_jax.losses.sigma2r_loss` are bad (Z is "the range of beta", epsilon "the
lower bound of K", both positive in the paper) though the docstring states no range.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import re
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from disc_jax import losses

B, D, C, B2 = 6, 4, 3, 5
LABELS = np.array([0, 1, 2, 0, 1, 2], np.int32)   # every class twice: every row has a partner
LABELS_2 = np.array([0, 1, 2, 0, 1], np.int32)
MASK = np.array([True, True, False, True, True, True])   # row 2 is padding
KEY = jax.random.key(0)
MODES = ("eager", "jit")
EAGER = ("eager",)   # static checks: decided by Python before any trace (module docstring)
RTOL, ATOL = 1e-5, 1e-7             # a value that must equal a reference call
JIT_RTOL, JIT_ATOL = 1e-4, 1e-6     # jit against eager


# ---------------------------------------------------------------- calls and specs
@dataclasses.dataclass(frozen=True)
class Call:
  """One call of a loss: ``fn(**arrays, **static)``; under jit ``arrays`` are traced."""

  arrays: dict
  static: dict

  def set(self, **arrays) -> "Call":
    """These arguments as arrays (an argument is either traced or static, never both)."""
    return Call({**self.arrays, **arrays},
                {k: v for k, v in self.static.items() if k not in arrays})

  def kw(self, **static) -> "Call":
    """These arguments as Python values, closed over under jit."""
    return Call({k: v for k, v in self.arrays.items() if k not in static},
                {**self.static, **static})


@dataclasses.dataclass(frozen=True)
class LossSpec:
  """A loss and the roles of its arguments."""

  name: str
  fn: Callable[..., jax.Array]
  make: Callable[[np.random.Generator], Call]    # the valid call
  features: str                                  # the float input split along the batch
  labels: tuple[str, ...] = ()                   # label arguments; the first goes with `features`
  label_range: bool = True                       # labels must lie in [0, C)
  others: dict = dataclasses.field(default_factory=dict)   # other float input -> wrong shape
  fewer_classes: Callable[[Call], Call] | None = None      # the call with C - 1 classes
  per_example: bool = True                       # has reduction="none"
  where: str = "where"
  any_rank: bool = False                         # features [B, ..., C] of any rank >= 2
  extra: tuple = ()                              # loss-specific cases (hyperparameters)

  @property
  def rows(self) -> tuple[str, ...]:
    """The arguments that share the batch axis of ``features``."""
    return (self.features,) + self.labels[:1]

  def roles(self) -> dict:
    return dict(features=self.features, labels=(self.labels or ("labels",))[0],
                where=self.where)


@dataclasses.dataclass(frozen=True)
class Expect:
  """What a clean call does; ``names`` are the argument names a clear error may cite
  ("{features}", "{labels}", "{where}" stand for the spec's roles)."""

  kind: str    # nan | bad_label | empty | zero | per_example | valid | error |
               # error_or_nan | error_or_valid | finite_or_overflow
  names: tuple[str, ...] = ()
  ref: Callable[[LossSpec, Call], Call] | None = None   # a call this one must equal

  def resolve(self, spec: LossSpec) -> "Expect":
    return dataclasses.replace(self, names=tuple(n.format(**spec.roles()) for n in self.names))

  def describe(self) -> str:
    names = " or ".join(f"`{n}`" for n in self.names)
    return {
        "nan": "NaN",
        "bad_label": f"NaN (eagerly also a clear error naming {names})",
        "empty": f"0 of the right shape, or a clear error naming {names}",
        "zero": "0 (zeros [B] with reduction='none')",
        "per_example": "finite float [B] whose mean is the 'mean' value",
        "valid": "a finite float value" + (" equal to the reference call" if self.ref else ""),
        "error": f"a ValueError/TypeError naming {names}",
        "error_or_nan": f"a clear error naming {names}, or NaN",
        "error_or_valid": f"a clear error naming {names}, or the value of the array call",
        "finite_or_overflow": "finite (or +inf where the float64 value overflows float32)",
    }[self.kind]


@dataclasses.dataclass(frozen=True)
class Case:
  name: str
  build: Callable[[LossSpec, Call], Call | None]    # None: does not apply to this loss
  expect: Expect | Callable[[LossSpec], Expect]
  modes: tuple[str, ...] = MODES


# ---------------------------------------------------------------- input builders
def poison(call: Call, key: str, value: float, row: int = 0) -> Call:
  """``value`` at entry (row, 0, ...) of ``call.arrays[key]`` (a class/column in use)."""
  x = np.array(call.arrays[key], np.float32)
  x[(row,) + (0,) * (x.ndim - 1)] = value
  return call.set(**{key: x})


def with_labels(spec: LossSpec, call: Call, fn: Callable[[np.ndarray], Any],
                which: int = 0) -> Call | None:
  if len(spec.labels) <= which:
    return None
  key = spec.labels[which]
  return call.set(**{key: fn(np.array(call.arrays[key]))})


def rows(spec: LossSpec, call: Call, index) -> Call:
  """The call on ``index`` of the first batch's rows (features, labels, mask)."""
  keys = spec.rows + ((spec.where,) if spec.where in call.arrays else ())
  return call.set(**{k: np.asarray(call.arrays[k])[index] for k in keys})


def floats(call: Call, fn: Callable[[np.ndarray], Any]) -> Call:
  """Every float array argument mapped through ``fn``."""
  return call.set(**{k: fn(v) for k, v in call.arrays.items()
                     if isinstance(v, np.ndarray) and v.dtype.kind == "f"})


def as_lists(call: Call) -> Call:
  return call.set(**{k: v.tolist() for k, v in call.arrays.items()
                     if isinstance(v, np.ndarray)})


def masked(spec: LossSpec, call: Call) -> Call:
  return call.set(**{spec.where: MASK.copy()})


def _same(spec: LossSpec, call: Call) -> Call:        # reference: the valid call itself
  return spec.make(np.random.default_rng(0))


def _rank3(x):
  x = np.asarray(x)
  return x.reshape(x.shape[0], -1, x.shape[-1]) if x.ndim > 2 else x[:, None, :]


NAN = Expect("nan")
BAD_LABEL = Expect("bad_label", ("{labels}",))
VALID = Expect("valid")
SAME = Expect("valid", ref=_same)
ERR_FEATURES = Expect("error", ("{features}",))
ERR_LABELS = Expect("error", ("{labels}",))
ERR_WHERE = Expect("error", ("{where}",))


def _label_expect(spec: LossSpec) -> Expect:
  return BAD_LABEL if spec.label_range else VALID


def _error_or_nan(*names: str) -> Expect:
  return Expect("error_or_nan", names)


def _error(*names: str) -> Expect:
  return Expect("error", names)


def other_cases(spec: LossSpec) -> list[Case]:
  """NaN (and, for the first one, inf) in each other float input, and a wrong shape."""
  out = []
  for i, (key, wrong) in enumerate(spec.others.items()):
    out.append(Case(f"nan_{key}", lambda sp, c, k=key: poison(c, k, np.nan), NAN))
    if i == 0:
      out.append(Case(f"inf_{key}", lambda sp, c, k=key: poison(c, k, np.inf), NAN))
      out.append(Case(f"int_{key}", lambda sp, c, k=key: c.set(
          **{k: np.round(10 * c.arrays[k]).astype(np.int32)}), _error(key), EAGER))
    out.append(Case(f"wrong_shape_{key}", lambda sp, c, k=key, w=wrong: c.set(
        **{k: w(c.arrays[k])}), _error(key), EAGER))
  return out


GENERIC: tuple[Case, ...] = (
    Case("valid", lambda sp, c: c, VALID),
    # NaN in, NaN out
    Case("nan_features", lambda sp, c: poison(c, sp.features, np.nan), NAN),
    Case("inf_features", lambda sp, c: poison(c, sp.features, np.inf), NAN),
    Case("neginf_features", lambda sp, c: poison(c, sp.features, -np.inf), NAN),
    Case("nan_in_masked_row", lambda sp, c: poison(masked(sp, c), sp.features, np.nan, row=2),
         Expect("valid", ref=lambda sp, c: masked(sp, sp.make(np.random.default_rng(0))))),
    # labels out of range
    Case("label_negative", lambda sp, c: with_labels(sp, c, lambda y: np.where(
        np.arange(y.size) == 0, -1, y).astype(y.dtype)), _label_expect),
    Case("label_equals_num_classes", lambda sp, c: with_labels(sp, c, lambda y: np.where(
        np.arange(y.size) == 0, C, y).astype(y.dtype)), _label_expect),
    Case("labels_beyond_fewer_classes",
         lambda sp, c: sp.fewer_classes(c) if sp.fewer_classes else None, BAD_LABEL),
    # nothing to average
    Case("empty_batch", lambda sp, c: rows(sp, c, slice(0, 0)),
         Expect("empty", ("{features}", "{labels}"))),
    Case("where_all_false", lambda sp, c: c.set(**{sp.where: np.zeros(B, bool)}),
         Expect("zero")),
    Case("where_all_false_none", lambda sp, c: c.set(**{sp.where: np.zeros(B, bool)}).kw(
        reduction="none") if sp.per_example else None, Expect("zero")),
    # reduction
    Case("reduction_none", lambda sp, c: c.kw(reduction="none") if sp.per_example else None,
         Expect("per_example", ref=_same)),
    Case("reduction_sum", lambda sp, c: c.kw(reduction="sum"), _error("reduction"), EAGER),
    # masks
    Case("where_int", lambda sp, c: c.set(**{sp.where: MASK.astype(np.int32)}), ERR_WHERE,
         EAGER),
    Case("where_wrong_length", lambda sp, c: c.set(**{sp.where: np.ones(B + 1, bool)}),
         ERR_WHERE, EAGER),
    # shapes
    Case("labels_short", lambda sp, c: with_labels(sp, c, lambda y: y[:-1]),
         Expect("error", ("{labels}", "{features}")), EAGER),
    Case("labels_one_hot", lambda sp, c: with_labels(sp, c, lambda y: np.eye(
        C, dtype=np.int32)[y]), ERR_LABELS, EAGER),
    Case("features_1d", lambda sp, c: c.set(**{sp.features: np.asarray(
        c.arrays[sp.features]).reshape(B, -1)[:, 0]}), ERR_FEATURES, EAGER),
    Case("features_3d", lambda sp, c: c.set(**{sp.features: _rank3(c.arrays[sp.features])}),
         lambda sp: SAME if sp.any_rank else ERR_FEATURES),
    Case("features_scalar", lambda sp, c: c.set(**{sp.features: 1.0}), ERR_FEATURES),
    # dtypes and containers
    Case("features_int", lambda sp, c: c.set(**{sp.features: np.round(
        10 * c.arrays[sp.features]).astype(np.int32)}), ERR_FEATURES, EAGER),
    Case("labels_float", lambda sp, c: with_labels(sp, c, lambda y: y.astype(np.float32)),
         ERR_LABELS, EAGER),
    Case("labels_bool", lambda sp, c: with_labels(sp, c, lambda y: y > 0), ERR_LABELS, EAGER),
    Case("python_lists", lambda sp, c: as_lists(c),
         Expect("error_or_valid", ("{features}",), ref=_same)),
    Case("float16", lambda sp, c: floats(c, lambda x: x.astype(np.float16)), VALID),
    Case("bfloat16", lambda sp, c: floats(c, lambda x: x.astype(jnp.bfloat16)), VALID),
    Case("float64_x64_off", lambda sp, c: floats(c, lambda x: x.astype(np.float64)), SAME),
    # valid edge cases
    Case("batch_of_1", lambda sp, c: rows(sp, c, slice(0, 1)), VALID),
    Case("one_class", lambda sp, c: c.set(**{k: np.zeros_like(c.arrays[k]) for k in sp.labels})
         if sp.labels else None, VALID),
    Case("identical_rows", lambda sp, c: c.set(**{sp.features: np.repeat(
        np.asarray(c.arrays[sp.features])[:1], B, axis=0)}), VALID),
    Case("features_1e30", lambda sp, c: c.set(**{sp.features: np.float32(1e30)
                                                 * c.arrays[sp.features]}),
         Expect("finite_or_overflow")),
    Case("features_1e-30", lambda sp, c: c.set(**{sp.features: np.float32(1e-30)
                                                  * c.arrays[sp.features]}), VALID),
)


def cases_for(spec: LossSpec) -> list[Case]:
  """The generic cases (with the per-argument ones after ``valid``'s NaN group) + extras."""
  generic = list(GENERIC)
  at = [c.name for c in generic].index("nan_in_masked_row")
  return generic[:at] + other_cases(spec) + generic[at:] + list(spec.extra)


# ---------------------------------------------------------------- the losses
def _head(rng: np.random.Generator) -> Call:
  return Call(dict(features=rng.normal(size=(B, D)).astype(np.float32), labels=LABELS.copy(),
                   kernel=rng.normal(size=(D, C)).astype(np.float32),
                   bias=(0.3 * rng.normal(size=C)).astype(np.float32)), {})


def _centers(key: str):
  def make(rng: np.random.Generator) -> Call:
    return Call({"features": rng.normal(size=(B, D)).astype(np.float32),
                 "labels": LABELS.copy(), key: rng.normal(size=(C, D)).astype(np.float32)}, {})
  return make


def _sigma2r(rng: np.random.Generator) -> Call:
  call = _centers("centers")(rng)
  return call.set(growth=rng.normal(size=C).astype(np.float32)).kw(n_neighbors=2, z=3.0,
                                                                   epsilon=0.1)


def _acts(rng: np.random.Generator) -> Call:
  acts = rng.uniform(0.0, 2.0, (B, 2, 2, D)) * (rng.uniform(size=(B, 2, 2, D)) > 0.3)
  return Call(dict(activations=acts.astype(np.float32), labels=LABELS.copy()),
              dict(num_classes=C))


def _pair(rng: np.random.Generator) -> Call:
  return Call(dict(features_1=rng.normal(size=(B, D)).astype(np.float32),
                   labels_1=LABELS.copy(),
                   features_2=(rng.normal(size=(B2, D)) * 1.3 + 0.4).astype(np.float32),
                   labels_2=LABELS_2.copy()), dict(num_classes=C))


def _mmd(rng: np.random.Generator) -> Call:
  a = _pair(rng).arrays
  return Call(dict(x=a["features_1"], y=a["features_2"]), {})


def _wider(x):
  """One more entry on the last axis (a feature size or class count that does not match)."""
  x = np.asarray(x)
  return np.concatenate([x, x[..., :1]], axis=-1)


def _head_fewer(c: Call) -> Call:
  return c.set(kernel=c.arrays["kernel"][:, :C - 1], bias=c.arrays["bias"][:C - 1])


HEAD_OTHERS = {"kernel": lambda w: np.asarray(w).T, "bias": _wider}


def _head_spec(name: str, fn, extra=(), **static) -> LossSpec:
  make = _head if not static else (lambda rng: _head(rng).kw(**static))
  return LossSpec(name, fn, make, "features", ("labels",), others=HEAD_OTHERS,
                  fewer_classes=_head_fewer, extra=tuple(extra))


def _hyper(name: str, expect: Expect, **static) -> Case:
  """A case that changes hyperparameters passed as Python values: an expected error is
  decided by Python before any trace (eager only); a value is checked in both modes."""
  return Case(name, lambda sp, c: c.kw(**static), expect,
              EAGER if expect.kind == "error" else MODES)


def _traced(name: str, expect: Expect, **arrays) -> Case:
  """A case that passes hyperparameters as arrays (traced under jit)."""
  return Case(name, lambda sp, c: c.set(**{k: np.asarray(v, np.float32)
                                           for k, v in arrays.items()}), expect)


def _bias_none_ref(sp: LossSpec, c: Call) -> Call:
  return c.set(bias=np.zeros(C, np.float32))


BIAS_NONE = Case("bias_none", lambda sp, c: c.set(bias=None),
                 Expect("valid", ref=_bias_none_ref))


def _bad_numbers(arg: str, bad: Sequence[tuple[str, Any]]) -> list[Case]:
  return [_hyper(f"{arg}_{label}", _error_or_nan(arg), **{arg: v}) for label, v in bad]


NONPOSITIVE = (("zero", 0.0), ("negative", -1.0), ("nan", np.nan), ("inf", np.inf))
NEGATIVE = (("negative", -1.0), ("nan", np.nan), ("inf", np.inf))


def _empty_second(keys: tuple[str, ...]) -> Case:
  return Case("empty_second_batch", lambda sp, c: c.set(**{k: np.asarray(c.arrays[k])[:0]
                                                           for k in keys}),
              Expect("empty", keys))


def specs() -> dict[str, LossSpec]:
  """Every public loss of ``disc_jax.losses`` with its battery."""
  head = [
      _head_spec("l_softmax_loss", losses.l_softmax_loss, [
          _hyper("margin_0", _error("margin"), margin=0),
          _hyper("margin_5", _error("margin"), margin=5),
          _hyper("margin_float", _error("margin"), margin=2.0),
          _hyper("margin_4", VALID, margin=4),
          *_bad_numbers("lam", NEGATIVE),
          _traced("lam_array_negative", _error_or_nan("lam"), lam=-1.0),
          BIAS_NONE], margin=2, lam=0.5),
      _head_spec("sigsoftmax_loss", losses.sigsoftmax_loss, [BIAS_NONE]),
      _head_spec("noisy_softmax_loss", losses.noisy_softmax_loss, [
          _hyper("rng_none", _error("rng"), rng=None),
          _hyper("rng_int", _error("rng", "key"), rng=0),
          *_bad_numbers("alpha", NEGATIVE),
          _traced("alpha_array_negative", _error_or_nan("alpha"), alpha=-1.0)],
          rng=KEY, alpha=0.3),
      _head_spec("virtual_softmax_loss", losses.virtual_softmax_loss, [BIAS_NONE]),
      _head_spec("feature_dropout_loss", losses.feature_dropout_loss, [
          _hyper("rate_1", _error("rate"), rate=1.0),
          _hyper("rate_negative", _error("rate"), rate=-0.1),
          _hyper("rate_nan", _error("rate"), rate=np.nan),
          _hyper("rate_without_rng", _error("rng"), rng=None),
          _traced("rate_array", Expect("error_or_valid", ("rate",)), rate=0.5)],
          rate=0.5, rng=KEY),
      _head_spec("adversarial_dropout_loss", losses.adversarial_dropout_loss, [
          _hyper("delta_1.5", _error("delta"), delta=1.5),
          _hyper("delta_negative", _error("delta"), delta=-0.1),
          _hyper("rate_1", _error("rate"), rate=1.0),
          *_bad_numbers("weight", NEGATIVE),
          _traced("weight_array_negative", _error_or_nan("weight"), weight=-1.0)],
          delta=0.25, weight=0.7),
      _head_spec("group_softmax_loss", losses.group_softmax_loss, [
          _hyper("groups_not_divisor", _error("groups"), groups=(1, 3)),
          _hyper("groups_0", _error("groups"), groups=0),
          _hyper("groups_empty", _error("groups"), groups=()),
          _hyper("loss_type_bad", _error("loss_type"), loss_type="III"),
          _hyper("grouping_bad", _error("grouping"), grouping="sorted"),
          _hyper("grouping_random_without_rng", _error("rng"), grouping="random"),
          _hyper("grouping_random", VALID, grouping="random", rng=KEY),
          _hyper("loss_type_I", VALID, loss_type="I", groups=(1, 2)),
          Case("kernel_one_class", lambda sp, c: c.set(
              kernel=c.arrays["kernel"][:, :1], bias=c.arrays["bias"][:1],
              labels=np.zeros(B, np.int32)), _error("kernel"))], groups=(1, 2, 4)),
  ]
  center_others = {"centers": _wider}
  fewer_centers = lambda c: c.set(centers=c.arrays["centers"][:C - 1])   # noqa: E731
  out = [
      LossSpec("center_loss", losses.center_loss, _centers("centers"), "features",
               ("labels",), others=center_others, fewer_classes=fewer_centers),
      LossSpec("intra_class_variance_loss", losses.intra_class_variance_loss,
               _centers("centroids"), "features", ("labels",), others={"centroids": _wider},
               fewer_classes=lambda c: c.set(centroids=c.arrays["centroids"][:C - 1])),
      LossSpec("sigma2r_loss", losses.sigma2r_loss, _sigma2r, "features", ("labels",),
               others={"centers": _wider, "growth": _wider},
               fewer_classes=lambda c: c.set(centers=c.arrays["centers"][:C - 1],
                                             growth=c.arrays["growth"][:C - 1]),
               extra=(
                   Case("inf_growth", lambda sp, c: poison(c, "growth", np.inf), NAN),
                   _hyper("n_neighbors_0", _error("n_neighbors"), n_neighbors=0),
                   _hyper("n_neighbors_float", _error("n_neighbors"), n_neighbors=2.5),
                   _hyper("n_neighbors_above_class_size", VALID, n_neighbors=50),
                   *_bad_numbers("z", (("zero", 0.0), ("negative", -1.0), ("nan", np.nan))),
                   *_bad_numbers("epsilon", (("negative", -1.0), ("nan", np.nan))),
                   _hyper("spread_bad", _error("spread"), spread="var"),
                   _hyper("spread_vector_std", VALID, spread="vector_std"),
                   _hyper("spread_rms_distance", VALID, spread="rms_distance"))),
      LossSpec("soft_nearest_neighbor_loss", losses.soft_nearest_neighbor_loss,
               lambda rng: Call(dict(features=rng.normal(size=(B, D)).astype(np.float32),
                                     labels=LABELS.copy()), dict(temperature=0.7)),
               "features", ("labels",), label_range=False, extra=(
                   *_bad_numbers("temperature", NONPOSITIVE),
                   _traced("temperature_array_negative", _error_or_nan("temperature"),
                           temperature=-1.0))),
      LossSpec("gini_loss", losses.gini_loss, _acts, "activations", ("labels",),
               fewer_classes=lambda c: c.kw(num_classes=C - 1), per_example=False,
               any_rank=True, extra=(
                   _hyper("num_classes_0", _error("num_classes"), num_classes=0),
                   _hyper("num_classes_float", _error("num_classes"), num_classes=2.5),
                   _hyper("num_classes_none", _error("num_classes"), num_classes=None),
                   Case("signed_activations", lambda sp, c: c.set(
                       activations=c.arrays["activations"] - 1.0), VALID))),
      LossSpec("kl_loss", losses.kl_loss, _acts, "activations", ("labels",),
               fewer_classes=lambda c: c.kw(num_classes=C - 1), per_example=False,
               any_rank=True, extra=(
                   _hyper("num_classes_0", _error("num_classes"), num_classes=0),
                   _hyper("direction_bad", _error("direction"), direction="x||y"),
                   _hyper("direction_channels_labels", VALID, direction="channels||labels"),
                   *_bad_numbers("epsilon", (("negative", -1.0), ("nan", np.nan))))),
      LossSpec("itra_loss", losses.itra_loss, _pair, "features_1", ("labels_1", "labels_2"),
               others={"features_2": _wider}, where="where_1",
               fewer_classes=lambda c: c.kw(num_classes=C - 1), per_example=False, extra=(
                   Case("label_2_equals_num_classes", lambda sp, c: with_labels(
                       sp, c, lambda y: np.where(np.arange(y.size) == 0, C, y).astype(
                           y.dtype), which=1), Expect("bad_label", ("labels_2",))),
                   _empty_second(("features_2", "labels_2")),
                   _hyper("num_classes_0", _error("num_classes"), num_classes=0),
                   _hyper("class_conditional_false", VALID, class_conditional=False),
                   *_bad_numbers("sigma", NONPOSITIVE),
                   _traced("sigma_array_negative", _error_or_nan("sigma"), sigma=-1.0))),
      LossSpec("mmd", losses.mmd, _mmd, "x", others={"y": _wider}, where="where_1",
               per_example=False, extra=(
                   _empty_second(("y",)),
                   *_bad_numbers("sigma", NONPOSITIVE),
                   _traced("sigma_array_negative", _error_or_nan("sigma"), sigma=-1.0))),
  ]
  return {s.name: s for s in out + head}


# ---------------------------------------------------------------- running one call
@dataclasses.dataclass(frozen=True)
class Outcome:
  """What a call did: a value (as NumPy) or an exception (type and first line)."""

  value: np.ndarray | None = None
  error: str | None = None
  message: str = ""

  @property
  def raised(self) -> bool:
    return self.error is not None

  def describe(self) -> str:
    if self.raised:
      return f"raised {self.error}: {self.message}"
    v = self.value
    if v.ndim == 0:
      return f"returned {float(v)!r} ({v.dtype})"
    flat = ", ".join(f"{float(e):.4g}" for e in v.reshape(-1)[:4])
    return f"returned {v.dtype}{list(v.shape)} [{flat}{', ...' if v.size > 4 else ''}]"


def invoke(fn: Callable[..., jax.Array], call: Call, mode: str) -> Outcome:
  """``fn(**call.arrays, **call.static)`` eagerly or jitted, never raising."""
  def f(arrays):
    return fn(**arrays, **call.static)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      out = f(call.arrays) if mode == "eager" else jax.jit(f)(call.arrays)
      return Outcome(value=np.asarray(jax.block_until_ready(out)))
  except Exception as e:  # noqa: BLE001 -- every failure is an outcome to judge
    lines = str(e).strip().splitlines()
    first = lines[0] if lines else ""
    return Outcome(error=type(e).__name__,
                   message=first if len(first) <= 200 else first[:200] + " ...")


def wide_outcome(fn: Callable[..., jax.Array], call: Call) -> Outcome:
  """The same call eagerly with x64 enabled and float64 inputs (the overflow check)."""
  with jax.enable_x64(True):
    return invoke(fn, floats(call, lambda x: x.astype(np.float64)), "eager")


# ---------------------------------------------------------------- the judge
def _clear_error(out: Outcome, names: Sequence[str]) -> bool:
  return out.error in ("ValueError", "TypeError") and any(
      re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", out.message) for n in names)


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))


def judge(expect: Expect, out: Outcome, *, mode: str, shape: tuple,
          reference: Outcome | None = None, wide: Callable[[], Outcome] | None = None
          ) -> tuple[bool, str]:
  """(clean, note) for one call against ``expect`` (the rules of the module docstring).

  ``shape``: the result shape a value must have; ``reference``: the outcome this value
  must equal (a reference call, or under jit the eager call; for ``per_example`` the
  ``"mean"`` call, which the values' mean must equal); ``wide``: the float64
  evaluation of the same call, for the overflow rule. ``note`` is "" or why it is
  clean anyway (an overflow).
  """
  kind = expect.kind
  if out.raised:
    if kind in ("error", "error_or_nan", "error_or_valid"):
      return _clear_error(out, expect.names), ""
    if kind == "empty" or (kind == "bad_label" and mode == "eager"):
      return _clear_error(out, expect.names), ""
    return False, ""
  v = out.value
  floating = np.issubdtype(v.dtype, np.floating) or v.dtype == jnp.bfloat16
  if not floating:
    return False, ""
  x = np.asarray(v, np.float64)
  nan = bool(np.isnan(x).any())
  if kind in ("nan", "bad_label", "error_or_nan"):
    return v.shape == shape and bool(np.isnan(x).all() if v.ndim == 0 else nan), ""
  if kind in ("error",):
    return False, ""
  if v.shape != shape:
    return False, ""
  if kind in ("empty", "zero"):
    return bool(np.all(x == 0)), ""
  if kind == "finite_or_overflow":
    if np.all(np.isfinite(x)):
      return _agrees(v, reference, mode)
    w = wide() if wide is not None else None
    if w is None or w.raised:
      return False, "" if w is None else f"float64 call {w.describe()}"
    big = np.asarray(w.value, np.float64)
    note = f"float64 value {float(big.reshape(-1)[0]):.4g}"
    overflow = (np.isfinite(big) & (np.abs(big) > float(jnp.finfo(v.dtype).max))
                & (np.sign(big) == np.sign(x)))
    ok = not nan and bool(np.all(np.isfinite(x) | (np.isinf(x) & overflow)))
    return ok, note + (f", beyond {v.dtype}'s range: IEEE overflow" if ok else "")
  # valid, error_or_valid, per_example: finite, and equal to the reference if any
  if not np.all(np.isfinite(x)):
    return False, ""
  if kind == "per_example":   # the reference is the "mean" call
    if reference is None or reference.raised or _close(np.mean(x), reference.value,
                                                       JIT_RTOL, JIT_ATOL):
      return True, ""
    return False, f"their mean is {np.mean(x):.6g}; the 'mean' call {reference.describe()}"
  return _agrees(v, reference, mode)


def _agrees(v: np.ndarray, reference: Outcome | None, mode: str) -> tuple[bool, str]:
  """(``v`` equals the reference value, under jit to a few ulps of its dtype; a note)."""
  if reference is None or reference.raised:   # nothing to compare against
    return True, ""
  rtol, atol = RTOL, ATOL
  if mode == "jit":
    rtol, atol = max(JIT_RTOL, 4 * float(jnp.finfo(v.dtype).eps)), JIT_ATOL
  if _close(v, reference.value, rtol, atol):
    return True, ""
  return False, f"the reference {reference.describe()}"


# ---------------------------------------------------------------- the run
@dataclasses.dataclass(frozen=True)
class Result:
  loss: str
  case: str
  mode: str
  clean: bool
  got: str
  want: str
  note: str = ""


def _result_shape(spec: LossSpec, call: Call) -> tuple:
  if call.static.get("reduction") == "none":
    return (int(np.shape(call.arrays[spec.features])[0]),)
  return ()


def run_loss(spec: LossSpec, *, modes: Sequence[str] = MODES,
             cases: Sequence[str] | None = None, every_mode: bool = False) -> list[Result]:
  """Every case of ``spec`` in its modes (``every_mode``: in all of ``modes``, also the
  eager-only static checks; ``cases``: only those names)."""
  base = spec.make(np.random.default_rng(0))
  results = []
  for case in cases_for(spec):
    if cases is not None and case.name not in cases:
      continue
    call = case.build(spec, base)
    if call is None:
      continue
    expect = case.expect(spec) if callable(case.expect) else case.expect
    expect = expect.resolve(spec)
    ref = invoke(spec.fn, expect.ref(spec, base), "eager") if expect.ref else None
    eager = None
    for mode in (modes if every_mode else [m for m in case.modes if m in modes]):
      out = invoke(spec.fn, call, mode)
      if mode == "eager":
        eager = out
      reference = ref
      if reference is None and mode == "jit" and eager is not None and not eager.raised:
        reference = eager   # jit must agree with eager
      clean, note = judge(expect, out, mode=mode, shape=_result_shape(spec, call),
                          reference=reference, wide=lambda: wide_outcome(spec.fn, call))
      want = expect.describe()
      if reference is eager and reference is not None:
        want += " (under jit: the eager value)"
      results.append(Result(spec.name, case.name, mode, clean, out.describe(), want, note))
  return results


def run(names: Sequence[str] | None = None, *, modes: Sequence[str] = MODES,
        cases: Sequence[str] | None = None, every_mode: bool = False,
        progress: bool = False) -> list[Result]:
  table = specs()
  out = []
  for name in names or sorted(table):
    got = run_loss(table[name], modes=modes, cases=cases, every_mode=every_mode)
    if progress:
      print(f"{name}: {sum(r.clean for r in got)} of {len(got)} clean", file=sys.stderr,
            flush=True)
    out += got
  return out


# ---------------------------------------------------------------- the report
def summary(results: Sequence[Result]) -> str:
  return f"{sum(r.clean for r in results)} of {len(results)} direct loss calls clean"


def _cell(text: str) -> str:
  return text.replace("|", "\\|").replace("\n", " ")


# Causes of the unclean calls seen when this fuzz was written, and the fix each needs:
# (loss regex, case regex, mode regex, diagnosis). Matched against the unclean calls only,
# so an entry whose calls became clean drops out of the report.
DIAGNOSES = (
    (r"l_softmax_loss|noisy_softmax_loss|virtual_softmax_loss", r"features_1e30", "",
     "||x||^2 = 1e60 overflows float32 in `_safe_norm`, so ||W_y|| ||x|| is inf (L-/Noisy "
     "Softmax: an inf target logit, loss inf; Virtual Softmax: inf - inf = NaN) while the "
     "exact loss (~1e30) is representable. Documented limit (the module docstring): |x| "
     "below ~1e19 in float32. A fix would be overflow-safe norms (scale by max|v| under "
     "stop_gradient before squaring), which changes the rounding of every valid input."),
    (r"soft_nearest_neighbor_loss|itra_loss|mmd|sigma2r_loss", r"features_1e30", "",
     "The fused squared distances ||a||^2 + ||b||^2 - 2 a.b overflow float32 and "
     "inf - inf gives NaN (SNNL, ITRA, MMD) or an inf loss (sigma2R), where the exact "
     "value is finite (ITRA, MMD, sigma2R) or beyond float32 (SNNL: NaN instead of inf). "
     "Documented limit (each docstring): |x| below ~1e19 in float32. A fix would divide "
     "the features by a stop-gradient max-abs scale (exact for MMD/ITRA with the median "
     "bandwidth, which is scale-invariant), which changes the rounding of valid inputs."),
    (r"group_softmax_loss", r"identical_rows", "jit",
     "Identical rows with balanced labels make every discriminativity score 0 in exact "
     "arithmetic; the float scores are rounding noise (~1e-9) that differs between eager "
     "and jit, so the two sort the components differently and pick different groupings "
     "(\"ties keep index order\" holds only for bitwise ties). Documented in "
     "`group_softmax_loss`; a fix would round the scores to a relative grid before the "
     "stable argsort, which changes the grouping of near-tied valid inputs."),
)


def diagnose(results: Sequence[Result]) -> list[tuple[str, list[Result]]]:
  """(diagnosis, its unclean calls) for each :data:`DIAGNOSES` entry that matches, then
  ("no diagnosis", the rest) if any unclean call is unexplained."""
  out, seen = [], set()
  for loss, case, mode, text in DIAGNOSES:
    hits = [r for r in results if not r.clean and id(r) not in seen
            and re.fullmatch(loss, r.loss) and re.fullmatch(case, r.case)
            and (not mode or r.mode == mode)]
    seen.update(id(r) for r in hits)
    if hits:
      out.append((text, hits))
  rest = [r for r in results if not r.clean and id(r) not in seen]
  if rest:
    out.append(("No diagnosis yet.", rest))
  return out


def _calls(hits: Sequence[Result]) -> str:
  modes: dict[tuple[str, str], list[str]] = {}
  for r in hits:
    modes.setdefault((r.loss, r.case), []).append(r.mode)
  return "; ".join(f"`{loss}` `{case}` ({', '.join(m)})" for (loss, case), m in modes.items())


def report(results: Sequence[Result], *, command: str, commit: str, wall_s: float) -> str:
  by_loss: dict[str, list[Result]] = {}
  for r in results:
    by_loss.setdefault(r.loss, []).append(r)
  lines = [
      "# Reliability of the losses: a hostile-user fuzz of every public loss", "",
      f"- command: `{command}`",
      f"- git commit: `{commit}`",
      f"- jax {jax.__version__}, backend {jax.default_backend()}, x64 "
      f"{'on' if jax.config.jax_enable_x64 else 'off'}",
      f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
      f"- wall time: {wall_s:.0f} s", "",
      f"**{summary(results)}.** Each loss is called directly (eagerly and under "
      "`jax.jit`) on a batch of B = 6 rows, D = 4, C = 3, with one input made bad or "
      "extreme per call; the rules that decide *clean* are in the docstring of "
      "`experiments/fault_losses.py`.", "",
      "| loss | calls | clean | unclean |", "|---|---:|---:|---:|"]
  for name, rs in by_loss.items():
    n_clean = sum(r.clean for r in rs)
    lines.append(f"| `{name}` | {len(rs)} | {n_clean} | {len(rs) - n_clean} |")
  n_clean = sum(r.clean for r in results)
  lines += [f"| **all** | **{len(results)}** | **{n_clean}** | **{len(results) - n_clean}** |",
            "", "## Unclean calls", ""]
  for name, rs in by_loss.items():
    bad = [r for r in rs if not r.clean]
    lines.append(f"### `{name}`: {len(bad)} unclean of {len(rs)}")
    lines.append("")
    if not bad:
      lines += ["None.", ""]
      continue
    lines += ["| case | mode | got | wanted |", "|---|---|---|---|"]
    lines += [f"| `{r.case}` | {r.mode} | {_cell(r.got + (f' ({r.note})' if r.note else ''))} "
              f"| {_cell(r.want)} |" for r in bad]
    lines.append("")
  causes = diagnose(results)
  if causes:
    lines += ["## Causes and suggested fixes", ""]
    for i, (text, hits) in enumerate(causes, 1):
      lines += [f"{i}. {text}", f"   Calls ({len(hits)}): {_calls(hits)}.", ""]
  notes = [r for r in results if r.clean and r.note]
  if notes:
    lines += ["## Clean, but worth knowing", "",
              "Counted clean by the overflow rule (the exact value exceeds float32), though "
              "no docstring mentions it:", ""]
    lines += [f"- `{r.loss}` `{r.case}` ({r.mode}): {r.got}; {r.note}" for r in notes]
    lines.append("")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="results/reliability_losses.md",
                      help="where to write the markdown report")
  parser.add_argument("--losses", default="",
                      help="comma-separated loss names (default: all)")
  parser.add_argument("--modes", default=",".join(MODES), help="eager, jit or both")
  parser.add_argument("--every_mode", action="store_true",
                      help="run the eager-only static checks under jit too")
  parser.add_argument("--progress", action="store_true", help="one line per loss on stderr")
  args = parser.parse_args(argv)
  names = [n for n in args.losses.split(",") if n] or None
  unknown = set(names or ()) - set(specs())
  if unknown:
    parser.error(f"unknown losses {sorted(unknown)}; known: {sorted(specs())}")
  modes = [m for m in args.modes.split(",") if m]
  if set(modes) - set(MODES):
    parser.error(f"--modes must name {MODES}, got {args.modes!r}")
  start = time.time()
  results = run(names, modes=modes, every_mode=args.every_mode, progress=args.progress)
  wall = time.time() - start
  command = "python -m experiments.fault_losses " + shlex.join(
      sys.argv[1:] if argv is None else list(argv))
  out = Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  from experiments.reproduce import git_commit  # noqa: PLC0415
  out.write_text(report(results, command=command.strip(), commit=git_commit(), wall_s=wall))
  print(f"{summary(results)} (report: {out}, {wall:.0f} s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
