"""The papers' optimisers and learning-rate schedules, built from optax.

Optimisers (``config.optimizer.name``):

* ``'adam'``   -- Adam (Gini ResNet-17/18, σ²R, intra-class variance, ITRA); a
  nonzero ``weight_decay`` is L2 added to the gradient first, as PyTorch's
  ``Adam(weight_decay=...)`` does (``optax.add_decayed_weights`` before ``adam``).
* ``'adamw'``  -- Adam with decoupled weight decay (``optax.adamw``).
* ``'adamax'`` -- AdaMax (Gini CvT-7: lr 2e-3).
* ``'sgd'``    -- SGD with momentum (``kwargs.momentum``, default 0.9) and weight
  decay added to the gradient before the momentum, as PyTorch's SGD does
  (Gini ResNet-50: lr 0.1, wd 5e-4; group softmax: lr 0.1, wd 1e-4).

Schedules (``config.schedule.name``, with ``config.schedule.kwargs``):

* ``'constant'``.
* ``'piecewise_constant'`` -- ``boundaries_epochs`` (tuple of epochs) and ``scale``
  (the factor applied at each boundary): Gini ResNet-50 multiplies by 0.2 at epochs
  60/120/160/200; group softmax divides by 10.
* ``'cosine'`` -- ``optax.cosine_decay_schedule`` to ``alpha`` · lr over the run
  (σ²R: "a cosine-like function to reduce the learning rate at each epoch", so
  ``per_epoch=True`` (default) holds the rate constant within an epoch).
* ``'reduce_on_plateau'`` -- ``optax.contrib.reduce_on_plateau``: the update is
  multiplied by a scale that drops by ``factor`` once ``patience`` epochs in a row
  brought no relative improvement of ``rtol`` over the best value (Gini ResNet-17/18:
  "reduced it by a factor of 0.5 after 10 epochs of no improvement, with a threshold of
  1e-2"; read as PyTorch's default relative threshold, hence rtol). Choice: optax
  scales at the ``patience``-th bad epoch, as the paper's sentence says; PyTorch's
  ReduceLROnPlateau(patience=10) would wait for the 11th. The
  loop feeds it one value per epoch: the mean training loss of the epoch
  (``metric='train_loss'``) or the evaluation loss (``metric='eval_loss'``); the
  transform's state lives in ``TrainState.plateau`` and its ``scale`` multiplies the
  model's updates inside the step. Scaling the update equals scaling the learning
  rate for every optimiser here, as in PyTorch's ReduceLROnPlateau.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS: dict[str, dict[str, Any]] = {
    # name -> accepted kwargs and their defaults
    "adam": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "adamw": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "adamax": {"b1": 0.9, "b2": 0.999, "eps": 1e-8},
    "sgd": {"momentum": 0.9, "nesterov": False},
}

SCHEDULES: dict[str, dict[str, Any]] = {
    "constant": {},
    "piecewise_constant": {"boundaries_epochs": (), "scale": 0.1},
    "cosine": {"alpha": 0.0, "per_epoch": True},
    "reduce_on_plateau": {"factor": 0.5, "patience": 10, "rtol": 1e-2, "atol": 0.0,
                          "cooldown": 0, "min_scale": 0.0, "metric": "train_loss"},
}
PLATEAU_METRICS = ("train_loss", "eval_loss")


def _check_kwargs(kind: str, name: str, kwargs: Mapping[str, Any],
                  table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
  if name not in table:
    raise ValueError(f"unknown {kind} {name!r}; valid choices: {sorted(table)}")
  unknown = set(kwargs) - set(table[name])
  if unknown:
    raise ValueError(f"{kind} {name!r}: unknown kwargs {sorted(unknown)}; valid: "
                     f"{sorted(table[name])}")
  return {**table[name], **dict(kwargs)}


def check_optimizer(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """Returns the optimizer's kwargs with defaults; ValueError on an unknown name/kwarg."""
  return _check_kwargs("optimizer", name, kwargs, OPTIMIZERS)


def check_schedule(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """Returns the schedule's kwargs with defaults; ValueError on an unknown name/kwarg."""
  full = _check_kwargs("schedule", name, kwargs, SCHEDULES)
  if name == "reduce_on_plateau" and full["metric"] not in PLATEAU_METRICS:
    raise ValueError(f"schedule.kwargs.metric must be one of {PLATEAU_METRICS}, "
                     f"got {full['metric']!r}")
  return full


def make_schedule(learning_rate: float, name: str, kwargs: Mapping[str, Any], *,
                  steps_per_epoch: int, total_steps: int) -> optax.Schedule:
  """The learning rate as a function of the global step.

  >>> s = make_schedule(0.1, "piecewise_constant", {"boundaries_epochs": (2,), "scale": 0.2},
  ...                   steps_per_epoch=10, total_steps=100)
  >>> round(float(s(19)), 4), round(float(s(20)), 4)
  (0.1, 0.02)
  """
  kw = check_schedule(name, kwargs)
  if name in ("constant", "reduce_on_plateau"):
    return optax.constant_schedule(learning_rate)
  if name == "piecewise_constant":
    bounds = {int(e) * steps_per_epoch: float(kw["scale"]) for e in kw["boundaries_epochs"]}
    return optax.piecewise_constant_schedule(learning_rate, bounds)
  # cosine
  if kw["per_epoch"]:
    num_epochs = max(1, -(-total_steps // steps_per_epoch))
    per_epoch = optax.cosine_decay_schedule(learning_rate, num_epochs, alpha=kw["alpha"])
    return lambda step: per_epoch(step // steps_per_epoch)
  return optax.cosine_decay_schedule(learning_rate, max(1, total_steps), alpha=kw["alpha"])


def make_optimizer(name: str, learning_rate: float | optax.Schedule, *,
                   weight_decay: float = 0.0,
                   kwargs: Mapping[str, Any] | None = None) -> optax.GradientTransformation:
  """One of the papers' optimisers (see the module docstring).

  >>> tx = make_optimizer("sgd", 0.1, weight_decay=5e-4, kwargs={"momentum": 0.9})
  >>> params = {"w": jnp.ones(2)}
  >>> updates, _ = tx.update({"w": jnp.ones(2)}, tx.init(params), params)
  >>> [round(float(u), 5) for u in updates["w"]]
  [-0.10005, -0.10005]
  """
  kw = check_optimizer(name, kwargs or {})
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
  if name == "adamw":
    return optax.adamw(learning_rate, weight_decay=weight_decay, **kw)
  if name == "sgd":
    base = optax.sgd(learning_rate, momentum=kw["momentum"] or None, nesterov=kw["nesterov"])
  elif name == "adam":
    base = optax.adam(learning_rate, **kw)
  else:
    base = optax.adamax(learning_rate, **kw)
  if weight_decay:
    return optax.chain(optax.add_decayed_weights(weight_decay), base)
  return base


def make_plateau(name: str, kwargs: Mapping[str, Any]) -> optax.GradientTransformation | None:
  """``optax.contrib.reduce_on_plateau`` for the 'reduce_on_plateau' schedule, else None."""
  if name != "reduce_on_plateau":
    return None
  kw = check_schedule(name, kwargs)
  return optax.contrib.reduce_on_plateau(
      factor=kw["factor"], patience=kw["patience"], rtol=kw["rtol"], atol=kw["atol"],
      cooldown=kw["cooldown"], min_scale=kw["min_scale"], accumulation_size=1)


def plateau_update(plateau: optax.GradientTransformation, plateau_state: Any,
                   value: jax.Array) -> Any:
  """Feeds one per-epoch value to the plateau transform; returns its new state."""
  _, new_state = plateau.update(updates=jnp.zeros(()), state=plateau_state, value=value)
  return new_state


def plateau_scale(plateau_state: Any) -> jax.Array:
  """The current multiplier of the learning rate (1.0 without a plateau schedule)."""
  if plateau_state is None:
    return jnp.ones((), jnp.float32)
  return jnp.asarray(plateau_state.scale, jnp.float32)


def scale_updates(updates: Any, scale: jax.Array) -> Any:
  return jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)


def lr_of(schedule: Callable[[Any], Any], step: jax.Array, plateau_state: Any) -> jax.Array:
  """The effective learning rate at ``step`` (for the metrics)."""
  return jnp.asarray(schedule(step), jnp.float32) * plateau_scale(plateau_state)
