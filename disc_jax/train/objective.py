"""Config -> the training objective: the classification loss plus weighted auxiliary terms.

``total = cls_loss + Σ_k w_k(epoch) · aux_k``, where ``w_k(epoch) = weight_k`` from the
``start_epoch_k``-th epoch on, counting epochs from 1, and 0 before (Gini paper: "We set
the starting epoch to 10"; the authors' loop runs ``for epoch in range(1, num_epochs +
1)`` and zeroes the terms while ``epoch_num < start_epoch``). So 0 and 1 both mean
"from the start". The switch is a ``jnp.where`` on the traced step: it never recompiles. Every term
reads one sowed intermediate (``input``: 'features' [B, D] or 'last_conv'
[B, H, W, C]) of the GLOBAL batch; losses that take feature vectors get 'last_conv'
global-average-pooled over H, W (Gini/KL pool inside the loss themselves).

Gini and KL get their input as it is and pool its magnitudes |A| themselves, as the
authors' code does (see :mod:`disc_jax.losses._gini_kl`).

Auxiliary losses (``AUX_LOSSES``; their kwargs are the loss functions' keywords):

==========================  =========================================  ==================
name                        function (disc_jax.losses)                 loss params
==========================  =========================================  ==================
gini, kl                    gini_loss / kl_loss (Gini paper eq. 6, 7)   -
group_softmax               group_softmax_loss (reads params['head'])  -
itra                        itra_loss on the features of batch 1 and    -
                            ITRA's second batch (eq. 5-6)
sigma2r                     sigma2r_loss (σ²R eq. 8-10)                 centers [C, D],
                                                                        growth [C]
center                      center_loss (Wen et al.; σ²R eq. 1)         centers [C, D]
intra_class_variance        intra_class_variance_loss (Hadamard layer)  centroids [C, D]
snnl                        soft_nearest_neighbor_loss (Frosst et al.)  -
==========================  =========================================  ==================

Loss params are initialised from N(0, 1) (σ²R: "We initialize them using a normal
distribution (standard normal distribution)"; the same is used for the center loss
and the centroids, which their papers leave open) or zeros (``param_init='zeros'``).
They are trained by the model's optimizer, by their own (``param_optimizer``, e.g.
σ²R's second Adam at lr 0.1), or -- center loss with ``center_update='wen'`` -- not by
gradient at all: the step replaces them with ``update_centers`` (Wen et al. eq. 4,
rate ``alpha``) computed from the batch features after the gradient update.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from disc_jax import losses
from disc_jax.train.classification import LossInputs, loss_kwargs

INPUTS = ("features", "last_conv")
PARAM_INITS = ("normal", "zeros")
CENTER_UPDATES = ("gradient", "wen")


def _pooled(x: jax.Array) -> jax.Array:
  """[B, ..., C] -> [B, C]: global average over the spatial axes (identity on [B, D])."""
  return x if x.ndim == 2 else jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))


@dataclasses.dataclass(frozen=True)
class AuxLoss:
  """An auxiliary-loss registry entry.

  ``call(inputs, x, params, **kwargs)`` computes the loss from the chosen intermediate
  ``x``; ``params`` names its loss parameters, each of shape ``[C, D]`` ('centers',
  'centroids') or ``[C]`` ('growth').
  """

  name: str
  fn: Callable[..., jax.Array]
  call: Callable[..., jax.Array]
  params: tuple[str, ...] = ()
  inputs: tuple[str, ...] = INPUTS
  second_batch: bool = False
  exclude: tuple[str, ...] = ()

  @property
  def kwargs(self) -> dict[str, Any]:
    return loss_kwargs(self.fn, exclude=self.exclude)


def _itra(inp: LossInputs, x, p, *, input_name: str, **kw):
  x2 = _pooled(inp.intermediates2[input_name])
  return losses.itra_loss(_pooled(x), inp.labels, x2, inp.labels2, inp.num_classes, **kw)


AUX_LOSSES: dict[str, AuxLoss] = {a.name: a for a in (
    AuxLoss("gini", losses.gini_loss,
            lambda inp, x, p, **kw: losses.gini_loss(x, inp.labels, inp.num_classes, **kw)),
    AuxLoss("kl", losses.kl_loss,
            lambda inp, x, p, **kw: losses.kl_loss(x, inp.labels, inp.num_classes, **kw)),
    AuxLoss("group_softmax", losses.group_softmax_loss,
            lambda inp, x, p, **kw: losses.group_softmax_loss(
                x, inp.labels, inp.kernel, inp.bias, rng=inp.rng, **kw), inputs=("features",)),
    AuxLoss("itra", losses.itra_loss, _itra, second_batch=True, exclude=("num_classes",)),
    AuxLoss("sigma2r", losses.sigma2r_loss,
            lambda inp, x, p, **kw: losses.sigma2r_loss(
                _pooled(x), inp.labels, p["centers"], p["growth"], **kw),
            params=("centers", "growth")),
    AuxLoss("center", losses.center_loss,
            lambda inp, x, p, **kw: losses.center_loss(_pooled(x), inp.labels, p["centers"], **kw),
            params=("centers",)),
    AuxLoss("intra_class_variance", losses.intra_class_variance_loss,
            lambda inp, x, p, **kw: losses.intra_class_variance_loss(
                _pooled(x), inp.labels, p["centroids"], **kw), params=("centroids",)),
    AuxLoss("snnl", losses.soft_nearest_neighbor_loss,
            lambda inp, x, p, **kw: losses.soft_nearest_neighbor_loss(_pooled(x), inp.labels,
                                                                      **kw)),
)}


@dataclasses.dataclass(frozen=True)
class Term:
  """One active auxiliary term of a config (``label`` is unique: 'center', 'gini_1')."""

  label: str
  loss: AuxLoss
  weight: float
  input: str
  kwargs: Mapping[str, Any]
  start_epoch: int
  param_init: str
  param_optimizer: Mapping[str, Any]
  center_update: str
  alpha: float

  @property
  def own_optimizer(self) -> bool:
    return self.param_optimizer.get("name", "shared") != "shared"

  @property
  def wen(self) -> bool:
    return self.center_update == "wen"


def get_aux_loss(name: str) -> AuxLoss:
  if name not in AUX_LOSSES:
    raise ValueError(f"unknown aux loss name {name!r}; valid choices: {sorted(AUX_LOSSES)}")
  return AUX_LOSSES[name]


def build_terms(entries: Sequence[Mapping[str, Any]]) -> list[Term]:
  """Checks the ``config.aux_losses`` entries and returns their terms.

  Raises ValueError (naming the entry and the valid choices) for an unknown name,
  input, kwarg, param_init or center_update, a negative weight or start epoch, or a
  Wen update on a loss other than 'center'.
  """
  terms, seen = [], {}
  for i, e in enumerate(entries):
    where = f"aux_losses[{i}]"
    name = e.get("name", "")
    try:
      spec = get_aux_loss(name)
    except ValueError as err:
      raise ValueError(f"{where}: {err}") from None
    kwargs = dict(e.get("kwargs", {}) or {})
    unknown = set(kwargs) - set(spec.kwargs)
    if unknown:
      raise ValueError(f"{where} ({name}): unknown kwargs {sorted(unknown)}; valid: "
                       f"{sorted(spec.kwargs)}")
    inp = e.get("input", "features")
    if inp not in spec.inputs:
      raise ValueError(f"{where} ({name}): input {inp!r} is not valid; valid choices: "
                       f"{list(spec.inputs)}")
    weight, start = float(e.get("weight", 1.0)), int(e.get("start_epoch", 0))
    if weight < 0 or start < 0:
      raise ValueError(f"{where} ({name}): weight and start_epoch must be >= 0, got "
                       f"{weight}, {start}")
    init, update = e.get("param_init", "normal"), e.get("center_update", "gradient")
    if init not in PARAM_INITS:
      raise ValueError(f"{where} ({name}): param_init {init!r}; valid: {list(PARAM_INITS)}")
    if update not in CENTER_UPDATES:
      raise ValueError(f"{where} ({name}): center_update {update!r}; valid: "
                       f"{list(CENTER_UPDATES)}")
    if update == "wen" and name != "center":
      raise ValueError(f"{where} ({name}): center_update='wen' is only for the 'center' loss")
    popt = dict(e.get("param_optimizer", {}) or {"name": "shared"})
    if popt.get("name", "shared") != "shared" and not spec.params:
      raise ValueError(f"{where} ({name}): param_optimizer is set but {name} has no loss params")
    if update == "wen" and popt.get("name", "shared") != "shared":
      raise ValueError(f"{where} (center): center_update='wen' updates the centers without "
                       "gradient, so param_optimizer must be 'shared' (unused)")
    seen[name] = seen.get(name, -1) + 1
    label = name if seen[name] == 0 else f"{name}_{seen[name]}"
    terms.append(Term(label, spec, weight, inp, kwargs, start, init, popt, update,
                      float(e.get("alpha", 0.5))))
  return terms


def needs_second_batch(terms: Sequence[Term]) -> bool:
  return any(t.loss.second_batch for t in terms)


def init_loss_params(terms: Sequence[Term], rng: jax.Array, num_classes: int,
                     dims: Mapping[str, int]) -> dict[str, dict[str, jax.Array]]:
  """``{term label: {param name: array}}`` for the terms that have loss params.

  ``dims`` maps an intermediate name to its feature width (last axis).
  """
  out = {}
  for k, term in enumerate(terms):
    if not term.loss.params:
      continue
    d = int(dims[term.input])
    params = {}
    for j, pname in enumerate(term.loss.params):
      shape = (num_classes,) if pname == "growth" else (num_classes, d)
      key = jax.random.fold_in(jax.random.fold_in(rng, k), j)
      params[pname] = (jax.random.normal(key, shape, jnp.float32) if term.param_init == "normal"
                       else jnp.zeros(shape, jnp.float32))
    out[term.label] = params
  return out


def _active(epoch: jax.Array, term: Term) -> jax.Array:
  """Whether ``term`` is on in the 0-based ``epoch``: epoch number ``epoch + 1 >= start_epoch``."""
  return epoch + 1 >= term.start_epoch


def term_losses(terms: Sequence[Term], inputs: LossInputs,
                loss_params: Mapping[str, Mapping[str, jax.Array]]
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """``(Σ w_k(epoch) aux_k, metrics)`` with 'loss/<label>' (unweighted) and 'weight/<label>'."""
  total = jnp.zeros((), jnp.float32)
  metrics = {}
  for k, term in enumerate(terms):
    params = dict(loss_params.get(term.label, {}))
    if term.wen:  # Wen et al.: the centers get no gradient from the loss
      params = jax.tree.map(jax.lax.stop_gradient, params)
    term_inputs = dataclasses.replace(inputs, rng=jax.random.fold_in(inputs.rng, k + 1))
    x = inputs.intermediates[term.input]
    kwargs = dict(term.kwargs)
    if term.loss.name == "itra":
      kwargs["input_name"] = term.input
    value = term.loss.call(term_inputs, x, params, **kwargs).astype(jnp.float32)
    weight = jnp.where(_active(inputs.epoch, term), term.weight, 0.0).astype(jnp.float32)
    total = total + weight * value
    metrics[f"loss/{term.label}"] = value
    metrics[f"weight/{term.label}"] = weight
    if term.loss.name == "sigma2r":   # σ²R Fig. 5: each class's learned sigmoid
      z, eps = term.kwargs.get("z", 40.0), term.kwargs.get("epsilon", 1e-3)
      for c, w in enumerate(params["growth"]):
        metrics[f"w_K/{term.label}/{c}"] = w
        metrics[f"K/{term.label}/{c}"] = eps + z * jax.nn.sigmoid(w)    # eq. 9
  return total, metrics


def wen_center_updates(terms: Sequence[Term], inputs: LossInputs,
                       loss_params: Mapping[str, Mapping[str, jax.Array]]
                       ) -> dict[str, dict[str, jax.Array]]:
  """New loss params after the Wen center update of every 'wen' term (others unchanged).

  The update uses this step's batch features (under ``stop_gradient``) and only runs
  once the term is active.
  """
  out = {k: dict(v) for k, v in loss_params.items()}
  for term in terms:
    if not term.wen:
      continue
    x = jax.lax.stop_gradient(_pooled(inputs.intermediates[term.input]))
    old = loss_params[term.label]["centers"]
    new = losses.update_centers(old, x, inputs.labels, term.alpha)
    out[term.label]["centers"] = jnp.where(_active(inputs.epoch, term), new, old)
  return out
