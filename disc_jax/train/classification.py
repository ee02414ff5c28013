"""The main classification loss: a registry selected by ``config.classification_loss``.

Every entry maps a name to a :class:`ClassificationLoss`: a function
``fn(inputs: LossInputs, **kwargs) -> scalar`` plus the keywords it accepts. The
function gets everything the step knows about the batch in one
:class:`LossInputs` -- ``logits`` [B, C], ``labels`` [B], ``features`` [B, D] (the
head's input), ``kernel`` [D, C] / ``bias`` [C] (``params['head']``), the global
``step`` and ``epoch`` (traced int32: schedules such as L-Softmax's annealing or
Noisy Softmax's noise read them without recompiling), a fresh per-step ``rng`` and
``num_classes`` -- and returns the mean loss over the (global) batch.

To add a method (issue 8: L-Softmax, SigSoftmax, Noisy/Virtual Softmax, feature
dropout, adversarial dropout), register one entry::

  register(ClassificationLoss(
      name="sigsoftmax", needs_head=True,
      fn=lambda inp, **kw: losses.sigsoftmax_loss(inp.features, inp.labels, inp.kernel,
                                                  inp.bias, **kw),
      kwargs=loss_kwargs(losses.sigsoftmax_loss)))

``kwargs`` (name -> default) is what ``config.classification_loss.kwargs`` may set;
:func:`loss_kwargs` reads it from a loss function's signature. Entries with
``needs_head=True`` need a model whose final Dense is named 'head' (not resnet17);
``label_smoothing=True`` marks the entries that honour ``config.label_smoothing``.
Evaluation always reports the plain cross-entropy of the logits, whatever the loss.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from disc_jax import losses


@dataclasses.dataclass(frozen=True)
class LossInputs:
  """What a loss may read about the current batch (built inside the jitted step)."""

  logits: jax.Array
  labels: jax.Array
  intermediates: Mapping[str, jax.Array]
  head: Mapping[str, jax.Array] | None
  num_classes: int
  step: jax.Array
  epoch: jax.Array
  rng: jax.Array
  intermediates2: Mapping[str, jax.Array] | None = None
  labels2: jax.Array | None = None
  steps_per_epoch: int = 1                       # static: fractional epoch = step / this

  @property
  def features(self) -> jax.Array:
    return self.intermediates["features"]

  @property
  def kernel(self) -> jax.Array:
    if self.head is None:
      raise ValueError("this loss needs the classifier weights params['head'], but the model "
                       "has no 'head' Dense layer (e.g. resnet17); choose another model or loss")
    return self.head["kernel"]

  @property
  def bias(self) -> jax.Array | None:
    return None if self.head is None else self.head.get("bias")


@dataclasses.dataclass(frozen=True)
class ClassificationLoss:
  """A registry entry (see the module docstring)."""

  name: str
  fn: Callable[..., jax.Array]
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  needs_head: bool = False
  label_smoothing: bool = False


_NOT_KWARGS = ("self", "axis_name", "rng")


def loss_kwargs(fn: Callable[..., Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
  """The keyword parameters of ``fn`` that have defaults (name -> default).

  ``axis_name`` and ``rng`` are supplied by the step, so they are never config kwargs.

  >>> sorted(loss_kwargs(losses.soft_nearest_neighbor_loss))
  ['temperature']
  """
  out = {}
  for p in inspect.signature(fn).parameters.values():
    if p.name in _NOT_KWARGS or p.name in exclude or p.default is inspect.Parameter.empty:
      continue
    if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
      out[p.name] = p.default
  return out


def softmax_cross_entropy(inputs: LossInputs, *, label_smoothing: float = 0.0) -> jax.Array:
  """Mean softmax cross-entropy of the logits, optionally with label smoothing.

  Targets are ``optax.smooth_labels(one_hot(y), label_smoothing)`` = (1-α)·onehot + α/C
  (Szegedy et al. 2016, as ITRA's baseline uses it), fed to
  ``optax.softmax_cross_entropy``.
  """
  onehot = jax.nn.one_hot(inputs.labels, inputs.logits.shape[-1], dtype=jnp.float32)
  if label_smoothing:
    onehot = optax.smooth_labels(onehot, label_smoothing)
  return jnp.mean(optax.softmax_cross_entropy(inputs.logits.astype(jnp.float32), onehot))


def _group_softmax(inputs: LossInputs, **kwargs) -> jax.Array:
  """Group softmax loss (Kobayashi 2021, eq. 12-13) replacing the softmax loss."""
  return losses.group_softmax_loss(inputs.features, inputs.labels, inputs.kernel, inputs.bias,
                                   rng=inputs.rng, **kwargs)


CLASSIFICATION_LOSSES: dict[str, ClassificationLoss] = {}


def register(entry: ClassificationLoss) -> ClassificationLoss:
  """Adds ``entry`` to :data:`CLASSIFICATION_LOSSES` (ValueError on a duplicate name)."""
  if entry.name in CLASSIFICATION_LOSSES:
    raise ValueError(f"classification loss {entry.name!r} is already registered")
  CLASSIFICATION_LOSSES[entry.name] = entry
  return entry


register(ClassificationLoss("softmax_ce", softmax_cross_entropy, label_smoothing=True))
register(ClassificationLoss("group_softmax", _group_softmax, needs_head=True,
                            kwargs=loss_kwargs(losses.group_softmax_loss)))


# --- issue 8: group softmax Tables 2/4 baselines (disc_jax/losses/_softmax_variants.py,
# _feature_dropout.py). Defaults: L-Softmax = the reference layer's CIFAR setting;
# rate/delta = the group softmax paper's p; see the loss docstrings for every choice.
def _l_softmax(inp: LossInputs, *, margin: int = 2, base: float = 1000.0, gamma: float = 2e-5,
               power: float = 45.0, lambda_min: float = 0.0) -> jax.Array:
  lam = losses.l_softmax_lambda(inp.step, base=base, gamma=gamma, power=power,
                                lambda_min=lambda_min)
  return losses.l_softmax_loss(inp.features, inp.labels, inp.kernel, inp.bias, margin=margin,
                               lam=lam)


def _noisy_softmax(inp: LossInputs, *, alpha: float = 0.1) -> jax.Array:
  return losses.noisy_softmax_loss(inp.features, inp.labels, inp.kernel, inp.bias,
                                   rng=inp.rng, alpha=alpha)


def _feature_dropout(inp: LossInputs, *, rate: float = 0.5) -> jax.Array:
  return losses.feature_dropout_loss(inp.features, inp.labels, inp.kernel, inp.bias,
                                     rate=rate, rng=inp.rng)


def _adversarial_dropout(inp: LossInputs, *, delta: float = 0.005, weight: float = 1.0,
                         rampup_epochs: float = 0.0, rate: float = 0.0) -> jax.Array:
  w = losses.adversarial_dropout_weight(inp.epoch, weight_max=weight, rampup_epochs=rampup_epochs)
  return losses.adversarial_dropout_loss(inp.features, inp.labels, inp.kernel, inp.bias,
                                         delta=delta, weight=w, rate=rate, rng=inp.rng)


for _name, _fn in (("l_softmax", _l_softmax), ("noisy_softmax", _noisy_softmax),
                   ("feature_dropout", _feature_dropout),
                   ("adversarial_dropout", _adversarial_dropout),
                   ("sigsoftmax", lambda inp: losses.sigsoftmax_loss(
                       inp.features, inp.labels, inp.kernel, inp.bias)),
                   ("virtual_softmax", lambda inp: losses.virtual_softmax_loss(
                       inp.features, inp.labels, inp.kernel, inp.bias))):
  register(ClassificationLoss(_name, _fn, kwargs=loss_kwargs(_fn), needs_head=True))


def get(name: str) -> ClassificationLoss:
  """The entry ``name`` (ValueError listing the registered names)."""
  if name not in CLASSIFICATION_LOSSES:
    raise ValueError(f"unknown classification_loss.name {name!r}; valid choices: "
                     f"{sorted(CLASSIFICATION_LOSSES)}")
  return CLASSIFICATION_LOSSES[name]


def check_kwargs(name: str, kwargs: Mapping[str, Any], label_smoothing: float) -> dict[str, Any]:
  """Validates ``classification_loss.kwargs`` and ``label_smoothing`` for entry ``name``."""
  entry = get(name)
  unknown = set(kwargs) - set(entry.kwargs)
  if unknown:
    raise ValueError(f"classification_loss {name!r}: unknown kwargs {sorted(unknown)}; "
                     f"valid: {sorted(entry.kwargs)}")
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing}")
  if label_smoothing and not entry.label_smoothing:
    smoothing = sorted(n for n, e in CLASSIFICATION_LOSSES.items() if e.label_smoothing)
    raise ValueError(f"label_smoothing={label_smoothing} is not supported by classification "
                     f"loss {name!r}; use one of {smoothing} or set label_smoothing=0")
  return dict(kwargs)


def classification_loss(name: str, kwargs: Mapping[str, Any], label_smoothing: float
                        ) -> Callable[[LossInputs], jax.Array]:
  """``inputs -> scalar`` for the configured main loss."""
  entry = get(name)
  kw = check_kwargs(name, kwargs, label_smoothing)
  if entry.label_smoothing:
    kw["label_smoothing"] = float(label_smoothing)
  return lambda inputs: entry.fn(inputs, **kw)
