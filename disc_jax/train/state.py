"""TrainState and its construction: params, BN stats, loss params, optimizer states.

The trainable tree is ``{'params': model params, 'loss_params': {term: {name: array}}}``
and one ``optax.multi_transform`` updates it: every leaf is labelled

* ``'model'``       -- the model's optimizer and schedule (also loss params whose
  ``param_optimizer`` is 'shared', e.g. the intra-class variance centroids, which the
  paper trains with the network's Adam);
* ``'aux:<term>'``  -- the term's own optimizer at a constant rate (σ²R: "a second Adam
  optimizer for the parameters of our loss function and also for the center loss",
  lr 0.1);
* ``'frozen'``      -- no gradient update (``optax.set_to_zero``): center loss with the
  Wen update, which the step applies itself.

The reduce-on-plateau scale (:mod:`disc_jax.train.optim`) multiplies the 'model'
updates only. The step's random key is ``fold_in(state.rng, state.step)``, so the
state holds one fixed key and a resumed run draws the same keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from disc_jax import models
from disc_jax.train import optim
from disc_jax.train.objective import Term, init_loss_params

MODEL, FROZEN = "model", "frozen"


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training (a pytree; checkpointed as a whole)."""

  step: jax.Array            # int32 scalar: optimizer updates done
  params: Any                # model params
  batch_stats: Any           # BN running stats ({} for models without BN)
  loss_params: Any           # {term label: {'centers'|'growth'|'centroids': array}}
  opt_state: Any             # multi_transform state
  plateau: Any               # reduce_on_plateau state, or None
  rng: jax.Array             # base PRNG key (raw uint32[2])

  @property
  def trainable(self) -> dict[str, Any]:
    return {"params": self.params, "loss_params": self.loss_params}


@dataclasses.dataclass(frozen=True)
class Optimizers:
  """The optax pieces of a run: the multi_transform, its labels, schedule, plateau."""

  tx: optax.GradientTransformation
  labels: Any                                  # function: trainable tree -> label tree
  schedule: optax.Schedule                     # model learning rate by step
  plateau: optax.GradientTransformation | None


def term_label(term: Term) -> str:
  if term.wen:
    return FROZEN
  return f"aux:{term.label}" if term.own_optimizer else MODEL


def make_optimizers(config, terms: Sequence[Term], *, steps_per_epoch: int,
                    total_steps: int) -> Optimizers:
  """Builds the multi_transform from ``config.optimizer``/``config.schedule`` and the terms."""
  opt, sched = config.optimizer, config.schedule
  schedule = optim.make_schedule(opt.learning_rate, sched.name, dict(sched.kwargs),
                                 steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  transforms = {
      MODEL: optim.make_optimizer(opt.name, schedule, weight_decay=opt.weight_decay,
                                  kwargs=dict(opt.kwargs)),
      FROZEN: optax.set_to_zero(),
  }
  for term in terms:
    if term.own_optimizer:
      p = term.param_optimizer
      transforms[f"aux:{term.label}"] = optim.make_optimizer(
          p["name"], p["learning_rate"], weight_decay=p.get("weight_decay", 0.0),
          kwargs=dict(p.get("kwargs", {})))
  by_term = {t.label: term_label(t) for t in terms}

  def labels(trainable):
    return {"params": jax.tree.map(lambda _: MODEL, trainable["params"]),
            "loss_params": {k: jax.tree.map(lambda _, k=k: by_term[k], v)
                            for k, v in trainable["loss_params"].items()}}

  return Optimizers(optax.multi_transform(transforms, labels), labels, schedule,
                    optim.make_plateau(sched.name, dict(sched.kwargs)))


def feature_dims(model, variables, input_shape: Sequence[int]) -> dict[str, int]:
  """Width (last axis) of every sowed intermediate, via ``jax.eval_shape`` (no compute)."""
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  _, feats, _ = jax.eval_shape(
      lambda v, x: models.apply_with_features(model, v, x, train=False), variables, x)
  return {k: int(v.shape[-1]) for k, v in feats.items()}


def create_state(model, optimizers: Optimizers, terms: Sequence[Term], *, rng: jax.Array,
                 input_shape: Sequence[int], num_classes: int) -> TrainState:
  """Initialises the model, the loss params (width from ``eval_shape``) and the optimizers.

  Pure in ``rng`` so that it can be jitted with output shardings or traced with
  ``jax.eval_shape`` (the abstract state for checkpoint restore).
  """
  model_rng, loss_rng, step_rng = jax.random.split(rng, 3)
  variables = models.init_variables(model, model_rng, tuple(input_shape))
  dims = feature_dims(model, variables, input_shape)
  missing = sorted({t.input for t in terms} - set(dims))
  if missing:
    raise ValueError(f"aux loss input(s) {missing} are not sowed by model "
                     f"{type(model).__name__}; it sows {sorted(dims)}")
  loss_params = init_loss_params(terms, loss_rng, num_classes, dims)
  params = variables["params"]
  opt_state = optimizers.tx.init({"params": params, "loss_params": loss_params})
  plateau = None
  if optimizers.plateau is not None:
    plateau = optimizers.plateau.init(jnp.zeros(()))
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}), loss_params=loss_params,
                    opt_state=opt_state, plateau=plateau, rng=step_rng)
