"""The pure train and eval steps, and the ('data',) device mesh they are jitted over.

``train_step(state, batch) -> (state, metrics)``:

1. the backbone runs once on ``batch['image']`` (train mode, dropout key folded from the
   step) and :func:`disc_jax.models.apply_with_features` returns the logits and the
   sowed intermediates; with ITRA it also runs on ``batch['image2']`` (only its features
   are used; BN statistics are updated by both passes in order, as two PyTorch forward
   calls would);
2. the objective of :func:`disc_jax.train.objective.make_loss_fn`, differentiated with
   ``jax.value_and_grad`` w.r.t. the model and loss params;
3. one ``optax.multi_transform`` update (fed the loss, for a plateau schedule), then the
   Wen center update of 'wen' terms;
4. metrics: ``loss`` (total), the objective's metrics, ``accuracy`` (train batch),
   ``grad_norm``/``param_norm``/``update_norm`` (``optax.tree.norm``), ``lr`` and
   ``finite``: the total loss and gradient norm are finite AND so is every floating
   entry of the updated state (params, batch statistics, loss params, optimizer state;
   its scalar bookkeeping need only not be NaN),
   so a state the loop would checkpoint is never non-finite (:func:`nonfinite_message`
   says which); multi-process runs add ``stop``, the max of ``batch['stop']`` (each
   process's pending signal number), so every process reads the same stop request.

Parallelism: the batch is sharded over the mesh axis ``'data'`` (``P('data')``) and the
state is replicated (``P()``). The losses see the GLOBAL batch -- GSPMD inserts the
cross-device reductions (BN statistics included) -- so 8 devices compute the numbers of
1, up to float summation order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from disc_jax import metrics as metrics_lib
from disc_jax import models
from disc_jax.train import objective
from disc_jax.train.config import ConfigError
from disc_jax.train.state import TrainState, learning_rate

DATA_AXIS = "data"
_DISTRIBUTED_READY = False


class DistributedSetupError(RuntimeError):
  """``config.distributed`` is set but no cluster could be joined; the message says how."""


def initialize_distributed(config) -> None:
  """``jax.distributed.initialize()`` once per process when ``config.distributed``
  (before anything touches the XLA backend); without a cluster environment it raises a
  :class:`DistributedSetupError` saying how to launch one."""
  global _DISTRIBUTED_READY
  if config.distributed and not _DISTRIBUTED_READY:
    try:
      jax.distributed.initialize()
    except (ValueError, RuntimeError) as e:
      raise DistributedSetupError(
          f"config.distributed=True but JAX found no cluster to join ({e}). Launch one "
          "process per host through the cluster's launcher (a Cloud TPU VM slice with "
          "--worker=all, Slurm srun, ...; README 'Multi-host runs'), or drop "
          "--config.distributed=True to train in this process alone") from e
    _DISTRIBUTED_READY = True


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D ('data',) mesh over the first ``num_devices`` devices (None: all of them)."""
  devices = jax.devices()
  n = len(devices) if num_devices is None else int(num_devices)
  if not 1 <= n <= len(devices):
    raise ConfigError(f"config.num_devices must lie in [1, {len(devices)}] (the devices "
                     f"visible to JAX), got {num_devices}")
  return Mesh(np.asarray(devices[:n]), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def shard_batch(mesh: Mesh, batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
  """Puts this process's rows of a global batch on the mesh, split along the batch axis.

  With P processes, process i holds the i-th of P equal blocks of rows (the pipeline
  reads only those; devices are ordered by process in the mesh); one process holds all.
  """
  sharding = NamedSharding(mesh, P(DATA_AXIS))
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


def all_finite(tree: Any, *, scalars_may_be_inf: bool = False) -> jax.Array:
  """True iff every entry of every floating leaf of ``tree`` is finite (one reduction).

  ``scalars_may_be_inf``: scalar leaves need only not be NaN (optimizer bookkeeping such as
  the plateau schedule's best value, +inf until the first loss).
  """
  def ok(x):
    return jnp.all(~jnp.isnan(x) if scalars_may_be_inf and jnp.ndim(x) == 0 else jnp.isfinite(x))

  leaves = [ok(x) for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def nonfinite_message(step: int, m: Mapping[str, float]) -> str:
  """What went non-finite at ``step`` (host metrics of a step whose ``finite`` is 0)."""
  bad = {k: v for k, v in m.items() if (k in ("loss", "cls_loss") or k.startswith("loss/"))
         and not math.isfinite(v)}
  terms = ", ".join(f"{k}={v}" for k, v in bad.items() if k != "loss")
  if terms or bad:
    return (f"non-finite loss at step {step}: {terms or 'loss=' + str(m.get('loss'))} "
            f"(total loss={m.get('loss')}); lower the learning rate or that term's weight, "
            "or check its inputs")
  finite = ", ".join(f"{k}={v:.4g}" for k, v in m.items() if k.startswith("loss"))
  if not math.isfinite(m.get("grad_norm", 0.0)):
    return (f"non-finite gradient at step {step}: grad_norm={m.get('grad_norm')} while every "
            f"loss term was finite ({finite}); lower the learning rate or clip gradients")
  return (f"non-finite parameters or optimizer state after the update of step {step} "
          f"(update_norm={m.get('update_norm')}, lr={m.get('lr')}) while the loss ({finite}) "
          f"and gradient (grad_norm={m.get('grad_norm'):.4g}) were finite; lower the "
          "learning rate")


def _variables(params, batch_stats) -> dict[str, Any]:
  return {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}


def make_train_step(config, model, tx: optax.GradientTransformation, schedule: optax.Schedule,
                    *, num_classes: int, steps_per_epoch: int
                    ) -> Callable[[TrainState, Mapping[str, jax.Array]], tuple[TrainState, dict]]:
  """The (unjitted) pure train step of ``config`` (see the module docstring)."""
  loss_fn = objective.make_loss_fn(config, num_classes=num_classes,
                                   steps_per_epoch=steps_per_epoch)
  second = objective.needs_second_batch(config)

  def train_step(state: TrainState, batch: Mapping[str, jax.Array]):
    drop1, drop2, loss_rng = jax.random.split(jax.random.fold_in(state.rng, state.step), 3)

    def total_loss(trainable):
      params = trainable["params"]
      logits, feats, updates = models.apply_with_features(
          model, _variables(params, state.batch_stats), batch["image"], train=True,
          rngs={"dropout": drop1})
      outputs2 = None
      if second:
        stats = updates.get("batch_stats", state.batch_stats)
        _, outputs2, updates = models.apply_with_features(
            model, _variables(params, stats), batch["image2"], train=True,
            rngs={"dropout": drop2})
      loss, metrics = loss_fn({"logits": logits, **feats}, batch["label"],
                              trainable["loss_params"], params.get("head"), state.step, loss_rng,
                              outputs2, batch.get("label2"))
      return loss, (metrics, logits, feats, updates)

    trainable = state.trainable
    (loss, (metrics, logits, feats, updates)), grads = jax.value_and_grad(
        total_loss, has_aux=True)(trainable)
    deltas, opt_state = tx.update(grads, state.opt_state, trainable, value=loss)
    new = optax.apply_updates(trainable, deltas)
    loss_params = objective.wen_update(config, feats, batch["label"], new["loss_params"],
                                       state.step, steps_per_epoch=steps_per_epoch)
    grad_norm = optax.tree.norm(grads)
    metrics = {
        "loss": loss, **metrics,
        "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"]),
        "grad_norm": grad_norm, "param_norm": optax.tree.norm(new["params"]),
        "update_norm": optax.tree.norm(deltas),
        "lr": learning_rate(schedule, state.step, state.opt_state),
    }
    if "stop" in batch:   # multi-process: every process's signal flag, agreed on
      metrics["stop"] = jnp.max(batch["stop"])
    new_state = state.replace(step=state.step + 1, params=new["params"],
                              batch_stats=updates.get("batch_stats", state.batch_stats),
                              loss_params=loss_params, opt_state=opt_state)
    metrics["finite"] = (jnp.isfinite(loss) & jnp.isfinite(grad_norm) & all_finite(
        (new_state.params, new_state.batch_stats, new_state.loss_params))
        & all_finite(new_state.opt_state, scalars_may_be_inf=True))
    return new_state, metrics

  return train_step


def make_eval_step(model) -> Callable[[TrainState, Mapping[str, jax.Array]], dict]:
  """``eval_step(state, batch) -> {'correct', 'ce_sum', 'count'}`` sums over real rows."""

  def eval_step(state: TrainState, batch):
    logits, _, _ = models.apply_with_features(
        model, _variables(state.params, state.batch_stats), batch["image"], train=False)
    return metrics_lib.eval_sums(logits, batch["label"], batch["mask"])

  return eval_step


def make_predict_step(model) -> Callable[[TrainState, jax.Array], tuple[jax.Array, jax.Array]]:
  """``predict_step(state, images) -> (logits, features)`` in eval mode."""

  def predict_step(state: TrainState, images):
    logits, feats, _ = models.apply_with_features(
        model, _variables(state.params, state.batch_stats), images, train=False)
    return logits, feats[models.FEATURES]

  return predict_step
