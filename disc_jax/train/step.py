"""The pure train/eval steps, jitted over a ('data',) device mesh.

``train_step(state, batch) -> (state, metrics)``:

1. the backbone runs once on ``batch['image']`` (train mode, dropout key folded from
   the step) and :func:`disc_jax.models.apply_with_features` returns the logits and the
   sowed intermediates; with ITRA it also runs on ``batch['image2']`` (only the
   features are used; BN statistics are updated by both passes in order, as two
   PyTorch forward calls would);
2. ``total = classification loss + Σ w_k(epoch) aux_k`` (:mod:`.objective`),
   differentiated with ``jax.value_and_grad`` w.r.t. the model and loss params;
3. one ``optax.multi_transform`` update (the plateau scale multiplies the model's
   updates), then the Wen center update for 'wen' terms;
4. metrics: ``loss`` (total), ``cls_loss``, ``loss/<term>`` and ``weight/<term>``,
   ``accuracy`` (train batch), ``grad_norm``/``param_norm``/``update_norm``
   (``optax.tree.norm``), ``lr`` and ``finite`` (total loss and gradient norm finite).

Parallelism: the batch is sharded over the mesh axis ``'data'`` (``P('data')``), the
state is replicated (``P()``) and donated. The losses see the GLOBAL batch -- GSPMD
inserts the cross-device reductions (BN statistics included) -- so a run on 8 devices
computes the same numbers as on 1, up to float summation order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from disc_jax import metrics as metrics_lib
from disc_jax import models
from disc_jax.train import optim
from disc_jax.train.classification import LossInputs
from disc_jax.train.objective import Term, needs_second_batch, term_losses, wen_center_updates
from disc_jax.train.state import MODEL, Optimizers, TrainState

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D ('data',) mesh over the first ``num_devices`` devices (None: all of them)."""
  devices = jax.devices()
  n = len(devices) if num_devices is None else int(num_devices)
  if not 1 <= n <= len(devices):
    raise ValueError(f"num_devices must lie in [1, {len(devices)}] (the devices visible to "
                     f"JAX), got {num_devices}")
  return Mesh(np.asarray(devices[:n]), (DATA_AXIS,),
              axis_types=(jax.sharding.AxisType.Auto,))


def _variables(params, batch_stats) -> dict[str, Any]:
  return {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}


def make_train_step(model, cls_loss: Callable[[LossInputs], jax.Array], terms: Sequence[Term],
                    optimizers: Optimizers, *, num_classes: int, steps_per_epoch: int
                    ) -> Callable[[TrainState, Mapping[str, jax.Array]], tuple[TrainState, dict]]:
  """The (unjitted) pure train step for this model/objective/optimizer."""
  second = needs_second_batch(terms)
  tx = optimizers.tx

  def train_step(state: TrainState, batch: Mapping[str, jax.Array]):
    step_rng = jax.random.fold_in(state.rng, state.step)
    drop1, drop2, loss_rng = jax.random.split(step_rng, 3)
    epoch = state.step // steps_per_epoch

    def loss_fn(trainable):
      params = trainable["params"]
      logits, feats, updates = models.apply_with_features(
          model, _variables(params, state.batch_stats), batch["image"], train=True,
          rngs={"dropout": drop1})
      feats2 = None
      if second:
        stats = updates.get("batch_stats", state.batch_stats)
        _, feats2, updates = models.apply_with_features(
            model, _variables(params, stats), batch["image2"], train=True,
            rngs={"dropout": drop2})
      inputs = LossInputs(logits=logits, labels=batch["label"], intermediates=feats,
                          head=params.get("head"), num_classes=num_classes, step=state.step,
                          epoch=epoch, rng=loss_rng, intermediates2=feats2,
                          labels2=batch.get("label2"), steps_per_epoch=steps_per_epoch)
      cls = cls_loss(inputs).astype(jnp.float32)
      aux, term_metrics = term_losses(terms, inputs, trainable["loss_params"])
      return cls + aux, (cls, term_metrics, logits, feats, updates)

    trainable = state.trainable
    (loss, (cls, term_metrics, logits, feats, updates)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(trainable)
    deltas, opt_state = tx.update(grads, state.opt_state, trainable)
    scale = optim.plateau_scale(state.plateau)
    deltas = jax.tree.map(lambda u, lab: u * scale if lab == MODEL else u,
                          deltas, optimizers.labels(trainable))
    new = optax.apply_updates(trainable, deltas)
    inputs = LossInputs(logits=logits, labels=batch["label"], intermediates=feats, head=None,
                        num_classes=num_classes, step=state.step, epoch=epoch, rng=loss_rng,
                        steps_per_epoch=steps_per_epoch)
    loss_params = wen_center_updates(terms, inputs, new["loss_params"])
    grad_norm = optax.tree.norm(grads)
    metrics = {
        "loss": loss, "cls_loss": cls, **term_metrics,
        "accuracy": jnp.mean(jnp.argmax(inputs.logits, -1) == inputs.labels),
        "grad_norm": grad_norm, "param_norm": optax.tree.norm(new["params"]),
        "update_norm": optax.tree.norm(deltas),
        "lr": optim.lr_of(optimizers.schedule, state.step, state.plateau),
        "finite": jnp.isfinite(loss) & jnp.isfinite(grad_norm),
    }
    new_state = state.replace(step=state.step + 1, params=new["params"],
                              batch_stats=updates.get("batch_stats", state.batch_stats),
                              loss_params=loss_params, opt_state=opt_state)
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


@dataclasses.dataclass
class Steps:
  """The jitted steps of a run on ``mesh`` and how many times each was traced."""

  mesh: Mesh
  train: Callable
  eval: Callable
  predict: Callable
  plateau: Callable | None
  traces: dict[str, int]

  @property
  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, P())

  @property
  def data(self) -> NamedSharding:
    return NamedSharding(self.mesh, P(DATA_AXIS))

  def shard_batch(self, batch: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
    """Puts a host GLOBAL batch on the mesh, split along the batch axis.

    Every process builds the same global batch (the pipeline is deterministic in
    (seed, step)) and contributes the rows of its own devices: with P processes,
    process i the i-th of P equal blocks (devices are ordered by process in the mesh).
    """
    count, index = jax.process_count(), jax.process_index()

    def local(x):
      x = np.asarray(x)
      if count == 1:
        return x
      per = x.shape[0] // count
      return x[index * per:(index + 1) * per]

    return {k: jax.make_array_from_process_local_data(self.data, local(v))
            for k, v in batch.items()}

  def replicate(self, tree: Any) -> Any:
    return jax.device_put(tree, self.replicated)


def _counted(fn: Callable, name: str, traces: dict[str, int]) -> Callable:
  def wrapped(*args):
    traces[name] = traces.get(name, 0) + 1   # runs once per trace, not per call
    return fn(*args)
  wrapped.__name__ = name
  return wrapped


def jit_steps(mesh: Mesh, train_step: Callable, eval_step: Callable, predict_step: Callable,
              plateau: optax.GradientTransformation | None = None) -> Steps:
  """Jits the steps with replicated state / data-sharded batches; the train state is donated."""
  traces: dict[str, int] = {}
  rep, data = NamedSharding(mesh, P()), NamedSharding(mesh, P(DATA_AXIS))
  train = jax.jit(_counted(train_step, "train", traces), in_shardings=(rep, data),
                  out_shardings=(rep, rep), donate_argnums=(0,))
  evaluate = jax.jit(_counted(eval_step, "eval", traces), in_shardings=(rep, data),
                     out_shardings=rep)
  # Predictions come back replicated so every process can read them (multi-host).
  predict = jax.jit(_counted(predict_step, "predict", traces), in_shardings=(rep, data),
                    out_shardings=(rep, rep))
  plateau_fn = None
  if plateau is not None:
    plateau_fn = jax.jit(lambda state, value: state.replace(
        plateau=optim.plateau_update(plateau, state.plateau, value)),
                         in_shardings=(rep, rep), out_shardings=rep, donate_argnums=(0,))
  return Steps(mesh, train, evaluate, predict, plateau_fn, traces)
