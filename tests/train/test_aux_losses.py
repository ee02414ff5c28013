"""End to end: 30 train steps of each auxiliary loss on a tiny LeNet-5 and synthetic data.

Every case builds the real run (config -> pipelines -> jitted step), checks
the total loss decreases (mean of the last 5 steps < mean of the first 5), every logged
value is finite, the step compiled once, and the loss params moved the way their
update mode says (the Wen centers exactly as ``losses.update_centers``).
"""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import pytest

from disc_jax import losses
from disc_jax.train import aux_loss, build, objective, optimizer

ADAM_01 = optimizer("adam", 0.1)

CASES = {
    "gini_kl": dict(aux=[aux_loss("gini", 0.5, input="last_conv"),
                         aux_loss("kl", 0.5, input="last_conv")]),
    "group_softmax_I": dict(aux=[aux_loss("group_softmax", 1.0,
                                          kwargs={"loss_type": "I", "groups": (1, 2, 4)})]),
    "group_softmax_II_as_main_loss": dict(cls="group_softmax",
                                          cls_kwargs={"loss_type": "II", "groups": (1, 2, 4)}),
    "itra_c": dict(aux=[aux_loss("itra", 0.6, kwargs={"class_conditional": True})]),
    "sigma2r": dict(aux=[aux_loss("sigma2r", 0.01, param_optimizer=ADAM_01)]),
    "center_gradient": dict(aux=[aux_loss("center", 0.1, param_optimizer=ADAM_01)]),
    "center_wen": dict(aux=[aux_loss("center", 0.1, center_update="wen", alpha=0.5)]),
    "intra_class_variance": dict(aux=[aux_loss("intra_class_variance", 0.05)]),
    "snnl": dict(aux=[aux_loss("snnl", 1.0, kwargs={"temperature": 1.0})]),
}


def _train(config, train_step, num_steps=30, alpha=None):
  run = build(config)
  train_step = train_step(run)
  state = run.init()
  init_loss_params = jax.tree.map(np.asarray, state.loss_params)
  history = []
  batches = run.train_pipeline.batches()
  for step in range(num_steps):
    batch = run.shard(next(batches))
    if step == 0 and alpha is not None:
      # Wen update: the centers after step 0 are update_centers(old, features of the
      # step (LeNet-5: no BN/dropout, so eval-mode features equal train-mode ones), alpha).
      _, feats = run.predict_step(state, batch["image"])
      want = losses.update_centers(init_loss_params["center"]["centers"], feats,
                                   batch["label"], alpha)
    state, metrics = train_step(state, batch)
    if step == 0 and alpha is not None:
      np.testing.assert_allclose(state.loss_params["center"]["centers"], want, rtol=1e-5,
                                 atol=1e-6)
    history.append({k: float(v) for k, v in metrics.items()})
  return run, state, init_loss_params, history


@pytest.mark.parametrize("case", list(CASES))
def test_aux_loss_trains(tiny, traced_once, case):
  spec = CASES[case]
  config = tiny()
  config.aux_losses = spec.get("aux", [])
  config.classification_loss = ml_collections.ConfigDict(
      {"name": spec.get("cls", "softmax_ce"), "kwargs": spec.get("cls_kwargs", {})})
  run, state, init_lp, history = _train(config, traced_once,
                                        alpha=0.5 if case == "center_wen" else None)

  for m in history:
    assert m["finite"] == 1.0
    assert all(np.isfinite(v) for v in m.values()), m
  loss = np.array([m["loss"] for m in history])
  assert loss[-5:].mean() < loss[:5].mean(), loss
  entries = objective.entries(config)
  for label, e in zip(objective.term_labels(entries), entries):
    assert f"loss/{label}" in history[0] and history[0][f"weight/{label}"] == pytest.approx(e.weight)

  if case == "itra_c":
    assert run.train_pipeline.second_batch
  if case in ("sigma2r", "center_gradient", "center_wen", "intra_class_variance"):
    (label,) = state.loss_params
    for name, before in init_lp[label].items():
      after = np.asarray(state.loss_params[label][name])
      assert not np.allclose(after, before), f"{label}/{name} did not move"
  if case == "center_wen":
    # Step 0 was checked against losses.update_centers in _train. The Wen rule moves
    # each center toward its class's batch mean by alpha; with
    # alpha = 0.5 over 30 steps the centers end close to the class means of the
    # features, which the gradient path (frozen for them) could not do.
    batch = run.shard(run.train_pipeline.batch(29))
    _, feats = run.predict_step(state, batch["image"])
    centers = np.asarray(state.loss_params["center"]["centers"])
    means = np.stack([np.asarray(feats)[np.asarray(batch["label"]) == c].mean(0)
                      for c in range(centers.shape[0])])
    init_gap = np.linalg.norm(init_lp["center"]["centers"] - means, axis=1).mean()
    assert np.linalg.norm(centers - means, axis=1).mean() < 0.5 * init_gap
