"""The training objective, in one place: config -> ``loss_fn(...) -> (loss, metrics)``.

``loss = classification loss + Σ_k w_k(epoch) · aux_k``. Every loss-specific rule lives
here: which model output a loss reads, the shapes, initialisation and optimizer of its
parameters, and the Wen center update. Adding a loss means its function in
:mod:`disc_jax.losses` and one branch in :func:`_classification` or :func:`_auxiliary`
(plus :func:`loss_param_shapes` if it has parameters).

The loss sees the model's outputs of the GLOBAL batch: ``logits`` [B, C], the sowed
``features`` [B, D] (the head's input) and ``last_conv`` [B, H, W, C]. An auxiliary term
reads the intermediate its ``input`` names; losses of feature vectors get 'last_conv'
average-pooled over H, W, while Gini/KL pool its magnitudes themselves. A config kwarg the
loss function does not take fails, naming the config entry, when
:func:`disc_jax.train.config.validate` traces the step.

* ``w_k(epoch) = weight_k`` from the ``start_epoch_k``-th epoch on, counting epochs from 1,
  and 0 before (Gini paper: "We set the starting epoch to 10"; the authors' loop runs
  ``for epoch in range(1, num_epochs + 1)`` and zeroes the terms while ``epoch_num <
  start_epoch``): 0 and 1 both mean "from the start". The switch is a ``jnp.where`` on
  the traced step, so it never recompiles.
* Loss parameters (σ²R centers [C, D] and growth rates w_K [C]; center-loss centers;
  intra-class variance centroids) start from N(0, 1) (σ²R: "We initialize them using a
  normal distribution"; the other papers leave it open) or zeros. They are trained by the
  model's optimizer (``param_optimizer`` 'shared'), by their own (σ²R's "second Adam"), or
  -- ``center_update='wen'`` -- by Wen et al.'s eq. 4 step instead of a gradient.
* Classification losses other than softmax cross-entropy read ``params['head']``.
* Metrics: ``cls_loss``, ``loss/<term>`` (unweighted), ``weight/<term>``, and for σ²R
  each class's ``w_K/<term>/<c>`` and ``K/<term>/<c>`` (eq. 9; its Fig. 5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from disc_jax import losses
from disc_jax.train.config import as_config_dicts

CLASSIFICATION_NAMES = ("softmax_ce", "group_softmax", "l_softmax", "noisy_softmax",
                         "sigsoftmax", "virtual_softmax", "feature_dropout",
                         "adversarial_dropout")
AUX_NAMES = ("gini", "kl", "group_softmax", "itra", "sigma2r", "center",
              "intra_class_variance", "snnl")
INPUTS = ("features", "last_conv")
PARAM_INITS = ("normal", "zeros")
CENTER_UPDATES = ("gradient", "wen")
MODEL, FROZEN = "model", "frozen"     # optimizer labels (see disc_jax.train.state)


def term_labels(entries: Sequence[Mapping[str, Any]]) -> list[str]:
  """A unique label per aux-loss entry: its name, then 'name_1', 'name_2' for repeats."""
  seen: dict[str, int] = {}
  out = []
  for e in entries:
    seen[e["name"]] = seen.get(e["name"], -1) + 1
    out.append(e["name"] if seen[e["name"]] == 0 else f"{e['name']}_{seen[e['name']]}")
  return out


def entries(config) -> list[ml_collections.ConfigDict]:
  """``config.aux_losses`` as ConfigDicts."""
  return as_config_dicts(config.aux_losses)


def _terms(config) -> list[tuple[str, ml_collections.ConfigDict]]:
  return list(zip(term_labels(entries(config)), entries(config)))


def check_entries(config) -> None:
  """The loss-specific rules of ``config.aux_losses`` and ``classification_loss``.

  Raises ValueError naming the entry and the valid choices; kwargs are checked when the
  step is traced (:func:`disc_jax.train.config.validate`).
  """
  if config.classification_loss.name not in CLASSIFICATION_NAMES:
    raise ValueError(f"config.classification_loss.name: unknown {config.classification_loss.name!r}"
                     f"; valid choices: {list(CLASSIFICATION_NAMES)}")
  if not 0.0 <= float(config.label_smoothing) < 1.0:
    raise ValueError(f"config.label_smoothing must lie in [0, 1), got {config.label_smoothing}")
  if config.label_smoothing and config.classification_loss.name != "softmax_ce":
    raise ValueError(f"config.label_smoothing={config.label_smoothing} applies to 'softmax_ce' "
                     f"only, not {config.classification_loss.name!r}; set it to 0")
  for i, e in enumerate(entries(config)):
    where = f"config.aux_losses[{i}] ({e.name})"
    if e.name not in AUX_NAMES:
      raise ValueError(f"config.aux_losses[{i}].name: unknown {e.name!r}; valid choices: "
                       f"{list(AUX_NAMES)}")
    valid_inputs = ("features",) if e.name == "group_softmax" else INPUTS
    if e.input not in valid_inputs:
      raise ValueError(f"{where}: input {e.input!r}; valid choices: {list(valid_inputs)}")
    if e.weight < 0 or e.start_epoch < 0:
      raise ValueError(f"{where}: weight and start_epoch must be >= 0, got {e.weight}, "
                       f"{e.start_epoch}")
    for field, valid in (("param_init", PARAM_INITS), ("center_update", CENTER_UPDATES)):
      if e[field] not in valid:
        raise ValueError(f"{where}: {field} {e[field]!r}; valid: {list(valid)}")
    own = e.param_optimizer.name != "shared"
    if e.center_update == "wen" and (e.name != "center" or own):
      raise ValueError(f"{where}: center_update='wen' is only for the 'center' loss, whose "
                       "centers it then updates without gradient (param_optimizer 'shared')")
    if own and e.name not in ("sigma2r", "center", "intra_class_variance"):
      raise ValueError(f"{where}: param_optimizer is set but {e.name} has no loss params")


def loss_param_shapes(config, num_classes: int, dims: Mapping[str, int]
                      ) -> dict[str, dict[str, tuple[int, ...]]]:
  """``{term label: {param name: shape}}``; ``dims`` maps an intermediate to its width."""
  out = {}
  for label, e in _terms(config):
    d = int(dims[e.input])
    if e.name == "sigma2r":
      out[label] = {"centers": (num_classes, d), "growth": (num_classes,)}
    elif e.name == "center":
      out[label] = {"centers": (num_classes, d)}
    elif e.name == "intra_class_variance":
      out[label] = {"centroids": (num_classes, d)}
  return out


def init_loss_params(config, rng: jax.Array, num_classes: int, dims: Mapping[str, int]
                     ) -> dict[str, dict[str, jax.Array]]:
  """The loss parameters: N(0, 1) or zeros (``param_init``), one key per term and param."""
  shapes = loss_param_shapes(config, num_classes, dims)
  out = {}
  for k, (label, e) in enumerate(_terms(config)):
    if label not in shapes:
      continue
    out[label] = {}
    for j, (name, shape) in enumerate(shapes[label].items()):
      key = jax.random.fold_in(jax.random.fold_in(rng, k), j)
      out[label][name] = (jax.random.normal(key, shape, jnp.float32)
                          if e.param_init == "normal" else jnp.zeros(shape, jnp.float32))
  return out


def param_labels(config) -> dict[str, str]:
  """The optimizer that trains each term's parameters: MODEL, 'aux:<label>' or FROZEN."""
  return {label: FROZEN if e.center_update == "wen" else
          MODEL if e.param_optimizer.name == "shared" else f"aux:{label}"
          for label, e in _terms(config)}


def needs_second_batch(config) -> bool:
  """Whether the step needs ITRA's second mini-batch S_(2)."""
  return any(e.name == "itra" for e in entries(config))


def learned_centers(config, loss_params: Mapping[str, Any]) -> dict[str, Any]:
  """``{term label: [C, D]}``: the learned centers/centroids of terms reading 'features'."""
  return {label: loss_params[label][name] for label, e in _terms(config)
          if e.input == "features" for name in ("centers", "centroids")
          if name in loss_params.get(label, {})}


def _pooled(x: jax.Array) -> jax.Array:
  """[B, ..., C] -> [B, C]: global average over the spatial axes (identity on [B, D])."""
  return x if x.ndim == 2 else jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))


def _active(step: jax.Array, steps_per_epoch: int, start_epoch: int) -> jax.Array:
  """Whether a term starting at ``start_epoch`` (counted from 1) is on at ``step``."""
  return step // steps_per_epoch + 1 >= start_epoch


def _head(head: Mapping[str, jax.Array] | None, what: str) -> tuple[jax.Array, jax.Array | None]:
  if head is None:
    raise ValueError(f"{what} needs the classifier params['head'], but the model has no "
                     "'head' Dense layer (e.g. resnet17); choose another model or loss")
  return head["kernel"], head.get("bias")


def _classification(name: str, kw: dict[str, Any], label_smoothing: float, out, labels,
                    head, step, epoch, rng) -> jax.Array:
  """The main loss of the batch (mean over the global batch)."""
  if name == "softmax_ce":   # optax.smooth_labels: (1 - α) one-hot + α / C
    if kw:
      raise TypeError(f"softmax_ce got an unexpected keyword argument {sorted(kw)[0]!r}")
    onehot = jax.nn.one_hot(labels, out["logits"].shape[-1], dtype=jnp.float32)
    if label_smoothing:
      onehot = optax.smooth_labels(onehot, label_smoothing)
    return jnp.mean(optax.softmax_cross_entropy(out["logits"].astype(jnp.float32), onehot))
  kernel, bias = _head(head, f"classification_loss {name!r}")
  x = out["features"]
  if name == "group_softmax":
    return losses.group_softmax_loss(x, labels, kernel, bias, rng=rng, **kw)
  if name == "l_softmax":    # λ anneals with the step: lambda_min + base (1 + γ step)^-power
    sched = {k: kw.pop(k) for k in ("base", "gamma", "power", "lambda_min") if k in kw}
    lam = losses.l_softmax_lambda(step, **sched)
    return losses.l_softmax_loss(x, labels, kernel, bias, lam=lam, **kw)
  if name == "noisy_softmax":
    return losses.noisy_softmax_loss(x, labels, kernel, bias, rng=rng, **kw)
  if name == "sigsoftmax":
    return losses.sigsoftmax_loss(x, labels, kernel, bias, **kw)
  if name == "virtual_softmax":
    return losses.virtual_softmax_loss(x, labels, kernel, bias, **kw)
  if name == "feature_dropout":   # rate: the group softmax paper's p = 0.5 by default
    return losses.feature_dropout_loss(x, labels, kernel, bias, rng=rng, **{"rate": 0.5, **kw})
  # adversarial_dropout: its weight ramps up over ``rampup_epochs`` (default 0: none) to
  # ``weight`` (default 1).
  ramp = {"weight_max": kw.pop("weight", 1.0), "rampup_epochs": kw.pop("rampup_epochs", 0.0)}
  w = losses.adversarial_dropout_weight(epoch, **ramp)
  return losses.adversarial_dropout_loss(x, labels, kernel, bias, weight=w, rng=rng, **kw)


def _auxiliary(e, kw: dict[str, Any], x, labels, params, head, num_classes: int, rng,
               x2=None, labels2=None) -> jax.Array:
  """One auxiliary term's (unweighted) value."""
  if e.name == "gini":
    return losses.gini_loss(x, labels, num_classes, **kw)
  if e.name == "kl":
    return losses.kl_loss(x, labels, num_classes, **kw)
  if e.name == "group_softmax":
    kernel, bias = _head(head, "aux loss 'group_softmax'")
    return losses.group_softmax_loss(x, labels, kernel, bias, rng=rng, **kw)
  if e.name == "itra":
    return losses.itra_loss(_pooled(x), labels, _pooled(x2), labels2, num_classes, **kw)
  if e.name == "sigma2r":
    return losses.sigma2r_loss(_pooled(x), labels, params["centers"], params["growth"], **kw)
  if e.name == "center":
    return losses.center_loss(_pooled(x), labels, params["centers"], **kw)
  if e.name == "intra_class_variance":
    return losses.intra_class_variance_loss(_pooled(x), labels, params["centroids"], **kw)
  return losses.soft_nearest_neighbor_loss(_pooled(x), labels, **kw)   # snnl


def _call(where: str, fn: Callable[[], jax.Array]) -> jax.Array:
  try:   # a wrong config kwarg is reported as the config entry's error
    return fn()
  except TypeError as err:
    raise ValueError(f"{where}: {err}; set only keywords the loss function takes") from None


def make_loss_fn(config, *, num_classes: int, steps_per_epoch: int
                 ) -> Callable[..., tuple[jax.Array, dict[str, jax.Array]]]:
  """``loss_fn(outputs, labels, loss_params, head, step, rng, outputs2=None, labels2=None)``.

  ``outputs`` = ``{'logits', 'features', 'last_conv'}`` of the global batch (``outputs2``:
  of ITRA's second batch), ``head`` = ``params['head']`` or None, ``step`` the traced
  global step, ``rng`` this step's loss key. Returns ``(total loss, metrics)``.
  """
  cls = config.classification_loss
  cls_kwargs = dict(cls.kwargs.to_dict() if hasattr(cls.kwargs, "to_dict") else cls.kwargs)
  label_smoothing = float(config.label_smoothing)
  terms = [(label, e, dict(e.kwargs.to_dict() if hasattr(e.kwargs, "to_dict") else e.kwargs))
           for label, e in _terms(config)]
  wen = {label for label, e, _ in terms if e.center_update == "wen"}

  def loss_fn(outputs, labels, loss_params, head, step, rng, outputs2=None, labels2=None):
    epoch = step // steps_per_epoch
    cls_loss = _call("config.classification_loss", lambda: _classification(
        cls.name, dict(cls_kwargs), label_smoothing, outputs, labels, head, step, epoch,
        rng)).astype(jnp.float32)
    total = jnp.zeros((), jnp.float32)
    metrics = {"cls_loss": cls_loss}
    for k, (label, e, kw) in enumerate(terms):
      params = dict(loss_params.get(label, {}))
      if label in wen:   # Wen et al.: the centers get no gradient from the loss
        params = jax.tree.map(jax.lax.stop_gradient, params)
      x2 = None if outputs2 is None else outputs2[e.input]
      value = _call(f"config.aux_losses[{k}] ({e.name})", lambda: _auxiliary(
          e, dict(kw), outputs[e.input], labels, params, head, num_classes,
          jax.random.fold_in(rng, k + 1), x2, labels2)).astype(jnp.float32)
      weight = jnp.where(_active(step, steps_per_epoch, e.start_epoch), e.weight, 0.0)
      total = total + weight.astype(jnp.float32) * value
      metrics[f"loss/{label}"] = value
      metrics[f"weight/{label}"] = weight.astype(jnp.float32)
      if e.name == "sigma2r":   # σ²R Fig. 5: each class's learned sigmoid (eq. 9)
        z, eps = kw.get("z", 40.0), kw.get("epsilon", 1e-3)
        for c, w in enumerate(params["growth"]):
          metrics[f"w_K/{label}/{c}"] = w
          metrics[f"K/{label}/{c}"] = eps + z * jax.nn.sigmoid(w)
    return cls_loss + total, metrics

  return loss_fn


def wen_update(config, features: jax.Array, labels: jax.Array, loss_params: Mapping[str, Any],
               step: jax.Array, *, steps_per_epoch: int) -> dict[str, Any]:
  """``loss_params`` after Wen et al.'s center update (eq. 4, rate ``alpha``) of 'wen' terms.

  Uses this step's batch features (under ``stop_gradient``), and only once the term is on.
  """
  out = {k: dict(v) for k, v in loss_params.items()}
  for label, e in _terms(config):
    if e.center_update != "wen":
      continue
    old = loss_params[label]["centers"]
    new = losses.update_centers(old, jax.lax.stop_gradient(_pooled(features[e.input])), labels,
                                e.alpha)
    out[label]["centers"] = jnp.where(_active(step, steps_per_epoch, e.start_epoch), new, old)
  return out
