"""TrainState and the papers' optimisers and learning-rate schedules, from optax.

The trainable tree is ``{'params': model params, 'loss_params': {term: {name: array}}}``
and one ``optax.multi_transform`` updates it. Each leaf is labelled (the rule per loss
is :func:`disc_jax.train.objective.param_labels`):

* ``'model'`` -- the model's optimizer and schedule (also loss params whose
  ``param_optimizer`` is 'shared', e.g. the intra-class variance centroids);
* ``'aux:<term>'`` -- the term's own optimizer at a constant rate (σ²R: "a second Adam
  optimizer for the parameters of our loss function and also for the center loss");
* ``'frozen'`` -- no gradient update (center loss with the Wen update).

Optimisers (``config.optimizer.name``): ``'adam'`` (a nonzero ``weight_decay`` is L2
added to the gradient first, as PyTorch's ``Adam(weight_decay=...)`` does),
``'adamw'`` (decoupled decay), ``'adamax'`` (Gini CvT-7), ``'sgd'`` (momentum
``kwargs.momentum``, weight decay added to the gradient before the momentum, as
PyTorch's SGD does).

Schedules (``config.schedule.name`` with ``config.schedule.kwargs``): ``'constant'``;
``'piecewise_constant'`` (``boundaries_epochs``, ``scale`` applied at each); ``'cosine'``
(``optax.cosine_decay_schedule`` to ``alpha`` · lr; σ²R's "cosine-like function to
reduce the learning rate at each epoch", so ``per_epoch=True`` holds it within an
epoch); ``'reduce_on_plateau'``: ``optax.contrib.reduce_on_plateau`` chained after the
model's optimizer, fed the total loss of every step and comparing epoch means
(``accumulation_size`` = steps per epoch): the scale drops by ``factor`` once
``patience`` epochs in a row brought no relative improvement of ``rtol`` (Gini
ResNet-17/18: "reduced it by a factor of 0.5 after 10 epochs of no improvement, with a
threshold of 1e-2"). Its state lives in the optimizer state, so a resume is exact.
optax applies the new scale from the epoch's last update on (PyTorch's
``scheduler.step`` after the epoch, from the next one), and at the ``patience``-th bad
epoch, as the paper's sentence reads.

The step's random key is ``fold_in(state.rng, state.step)``: the state holds one fixed
key and a resumed run draws the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from disc_jax import models
from disc_jax.train import objective
from disc_jax.train.config import ConfigError

OPTIMIZERS: dict[str, dict[str, Any]] = {   # name -> accepted kwargs and their defaults
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
                          "cooldown": 0, "min_scale": 0.0},
}


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training (a pytree; checkpointed as a whole)."""

  step: jax.Array            # int32 scalar: optimizer updates done
  params: Any                # model params
  batch_stats: Any           # BN running stats ({} for models without BN)
  loss_params: Any           # {term label: {'centers'|'growth'|'centroids': array}}
  opt_state: Any             # multi_transform state (with the plateau scale, if any)
  rng: jax.Array             # base PRNG key (raw uint32[2])

  @property
  def trainable(self) -> dict[str, Any]:
    return {"params": self.params, "loss_params": self.loss_params}


def with_defaults(kind: str, name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
  """The kwargs of optimizer/schedule ``name`` with defaults; ValueError on unknown ones."""
  table = OPTIMIZERS if kind == "optimizer" else SCHEDULES
  if name not in table:
    raise ValueError(f"unknown {kind} {name!r}; valid choices: {sorted(table)}")
  unknown = set(kwargs) - set(table[name])
  if unknown:
    raise ValueError(f"{kind} {name!r}: unknown kwargs {sorted(unknown)}; valid: "
                     f"{sorted(table[name])}")
  return {**table[name], **dict(kwargs)}


def make_schedule(learning_rate: float, name: str, kwargs: Mapping[str, Any], *,
                  steps_per_epoch: int, total_steps: int) -> optax.Schedule:
  """The learning rate as a function of the global step (before any plateau scale).

  >>> s = make_schedule(0.1, "piecewise_constant", {"boundaries_epochs": (2,), "scale": 0.2},
  ...                   steps_per_epoch=10, total_steps=100)
  >>> round(float(s(19)), 4), round(float(s(20)), 4)
  (0.1, 0.02)
  """
  kw = with_defaults("schedule", name, kwargs)
  if name in ("constant", "reduce_on_plateau"):
    return optax.constant_schedule(learning_rate)
  if name == "piecewise_constant":
    bounds = {int(e) * steps_per_epoch: float(kw["scale"]) for e in kw["boundaries_epochs"]}
    return optax.piecewise_constant_schedule(learning_rate, bounds)
  if kw["per_epoch"]:   # cosine, constant within an epoch
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
  kw = with_defaults("optimizer", name, kwargs or {})
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


def make_tx(config, *, steps_per_epoch: int, total_steps: int
            ) -> tuple[optax.GradientTransformationExtraArgs, optax.Schedule]:
  """The run's multi_transform (its ``update`` takes ``value=`` the step's total loss)
  and the model's learning-rate schedule."""
  opt, sched = config.optimizer, config.schedule
  schedule = make_schedule(opt.learning_rate, sched.name, dict(sched.kwargs),
                           steps_per_epoch=steps_per_epoch, total_steps=total_steps)
  model_tx = make_optimizer(opt.name, schedule, weight_decay=opt.weight_decay,
                            kwargs=dict(opt.kwargs))
  if sched.name == "reduce_on_plateau":
    kw = with_defaults("schedule", sched.name, sched.kwargs)
    model_tx = optax.chain(model_tx, optax.contrib.reduce_on_plateau(
        factor=kw["factor"], patience=kw["patience"], rtol=kw["rtol"], atol=kw["atol"],
        cooldown=kw["cooldown"], min_scale=kw["min_scale"], accumulation_size=steps_per_epoch))
  transforms = {objective.MODEL: model_tx, objective.FROZEN: optax.set_to_zero()}
  by_term = objective.param_labels(config)
  entries = objective.entries(config)
  for label, e in zip(objective.term_labels(entries), entries):
    if by_term[label].startswith("aux:"):   # trained by its own optimizer
      p = e.param_optimizer
      transforms[by_term[label]] = make_optimizer(p.name, p.learning_rate,
                                                  weight_decay=p.weight_decay,
                                                  kwargs=dict(p.kwargs))

  def labels(trainable):
    return {"params": jax.tree.map(lambda _: objective.MODEL, trainable["params"]),
            "loss_params": {k: jax.tree.map(lambda _, k=k: by_term[k], v)
                            for k, v in trainable["loss_params"].items()}}

  return optax.multi_transform(transforms, labels), schedule


def learning_rate(schedule: optax.Schedule, step: jax.Array, opt_state: Any) -> jax.Array:
  """The model's effective learning rate at ``step``: the schedule times the plateau scale."""
  plateau = optax.contrib.ReduceLROnPlateauState
  found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, plateau))
           if isinstance(s, plateau)]
  scale = found[0].scale if found else 1.0
  return jnp.asarray(schedule(step), jnp.float32) * jnp.asarray(scale, jnp.float32)


def feature_dims(model, variables, input_shape: Sequence[int]) -> dict[str, int]:
  """Width (last axis) of every sowed intermediate, via ``jax.eval_shape`` (no compute)."""
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  _, feats, _ = jax.eval_shape(
      lambda v, x: models.apply_with_features(model, v, x, train=False), variables, x)
  return {k: int(v.shape[-1]) for k, v in feats.items()}


def create_state(config, model, tx: optax.GradientTransformation, *, rng: jax.Array,
                 input_shape: Sequence[int], num_classes: int) -> TrainState:
  """Initialises the model, the loss params (width from ``eval_shape``) and the optimizers.

  Pure in ``rng``, so it can be jitted with output shardings or traced by
  ``jax.eval_shape`` (the abstract state of a checkpoint restore).
  """
  model_rng, loss_rng, step_rng = jax.random.split(rng, 3)
  variables = models.init_variables(model, model_rng, tuple(input_shape))
  dims = feature_dims(model, variables, input_shape)
  missing = sorted({e.input for e in objective.entries(config)} - set(dims))
  if missing:
    raise ValueError(f"config.aux_losses: input(s) {missing} are not sowed by model "
                     f"{type(model).__name__}; it sows {sorted(dims)}")
  loss_params = objective.init_loss_params(config, loss_rng, num_classes, dims)
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}), loss_params=loss_params,
                    opt_state=tx.init({"params": params, "loss_params": loss_params}),
                    rng=step_rng)

# ---------------------------------------------------------------- config.init_from
# Merging another run's model variables into a fresh state (disc_jax.train.checkpoint.initialize).
COLLECTIONS = ("params", "batch_stats")   # the model variables init_from copies


def _path_str(key_path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in key_path)


def flatten(tree: Any) -> dict[str, Any]:
  """``{'a/b/c': leaf}`` of a nested dict tree.

  >>> sorted(flatten({"head": {"kernel": 1, "bias": 2}}))
  ['head/bias', 'head/kernel']
  """
  return {_path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _skipped(path: str, skip: Sequence[str]) -> bool:
  return any(path == s or path.startswith(s.rstrip("/") + "/") for s in skip)


def merge_variables(target: Mapping[str, Any], loaded: Mapping[str, Any],
                    skip: Sequence[str] = ()) -> dict[str, Any]:
  """``target`` (fresh model variables) with every leaf not in ``skip`` taken from ``loaded``.

  Loaded leaves are numpy arrays of ``target``'s dtype; skipped leaves are ``target``'s own
  objects (so :func:`initialize` can keep them where they are). A shape mismatch raises.

  >>> t = {"params": {"head": {"kernel": np.zeros((2, 3))}, "conv": {"w": np.zeros(2)}}}
  >>> l = {"params": {"head": {"kernel": np.ones((2, 5))}, "conv": {"w": np.ones(2)}}}
  >>> out = merge_variables(t, l, skip=["head"])
  >>> out["params"]["conv"]["w"].tolist(), out["params"]["head"]["kernel"].shape
  ([1.0, 1.0], (2, 3))
  """
  skip = [str(s) for s in skip]
  for s in skip:
    if not s or not any(_skipped(p, [s]) for c in COLLECTIONS
                        for p in flatten(target.get(c, {}))):
      top = sorted(target.get("params", {}))
      raise ValueError(f"config.init_from_skip: {s!r} matches no parameter of this model; use "
                       f"a path such as one of its top-level modules {top}")
  out = {}
  for collection in COLLECTIONS:
    want = flatten(target.get(collection, {}))
    got = flatten(loaded.get(collection, {}))
    kept = {p for p in want if not _skipped(p, skip)}
    missing = sorted(kept - set(got))
    extra = sorted(p for p in set(got) - set(want) if not _skipped(p, skip))
    if missing or extra:
      raise ConfigError(
          f"config.init_from: the checkpoint's {collection} do not match this model: missing "
          f"{missing[:6]}{' ...' if len(missing) > 6 else ''}, unexpected "
          f"{extra[:6]}{' ...' if len(extra) > 6 else ''}; use the same model (name and "
          "kwargs) as the checkpoint's run, or list the differing modules in init_from_skip")
    for p in sorted(kept):
      have, new = np.shape(got[p]), np.shape(want[p])
      if have != new:
        raise ConfigError(
            f"config.init_from: {collection}/{p} has shape {have} in the checkpoint but {new} "
            f"in this model; use the same model and class count, or add "
            f"{p.split('/')[0]!r} to config.init_from_skip to keep its fresh initialisation")

    def pick(key_path, leaf, got=got, collection=collection):
      p = _path_str(key_path)
      return leaf if _skipped(p, skip) else np.asarray(got[p], dtype=np.dtype(leaf.dtype))

    out[collection] = jax.tree_util.tree_map_with_path(pick, target.get(collection, {}))
  return out
