"""The papers' optimisers and schedules (optax), checked against closed forms."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import optax

from configs import base
from disc_jax.train import state as optim


def test_piecewise_constant_in_epochs():
  # Gini ResNet-50: x0.2 at epochs 60, 120, 160, 200.
  s = optim.make_schedule(0.1, "piecewise_constant",
                          {"boundaries_epochs": (60, 120, 160, 200), "scale": 0.2},
                          steps_per_epoch=10, total_steps=2500)
  got = [float(s(e * 10)) for e in (0, 59, 60, 119, 120, 160, 200, 249)]
  want = [0.1, 0.1, 0.02, 0.02, 0.004, 0.0008, 0.00016, 0.00016]
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_cosine_per_epoch_is_constant_within_an_epoch():
  s = optim.make_schedule(1.0, "cosine", {}, steps_per_epoch=5, total_steps=20)
  lrs = np.array([float(s(i)) for i in range(20)])
  np.testing.assert_allclose(lrs[:5], 1.0)
  for e in range(4):
    np.testing.assert_allclose(lrs[5 * e:5 * e + 5], 0.5 * (1 + math.cos(math.pi * e / 4)), rtol=1e-6)
  smooth = optim.make_schedule(1.0, "cosine", {"per_epoch": False}, steps_per_epoch=5, total_steps=20)
  assert float(smooth(10)) == pytest.approx(0.5, rel=1e-6)


def test_sgd_momentum_weight_decay_matches_pytorch_rule():
  # PyTorch SGD: g += wd * p; buf = m * buf + g; p -= lr * buf.
  tx = optim.make_optimizer("sgd", 0.1, weight_decay=5e-4, kwargs={"momentum": 0.9})
  p = {"w": jnp.array([1.0, -2.0])}
  state = tx.init(p)
  p_ref, buf = np.array([1.0, -2.0]), np.zeros(2)
  for g in ([0.5, 0.1], [-0.2, 0.3], [0.0, 1.0]):
    upd, state = tx.update({"w": jnp.array(g)}, state, p)
    p = jax.tree.map(lambda a, u: a + u, p, upd)
    buf = 0.9 * buf + (np.array(g) + 5e-4 * p_ref)
    p_ref = p_ref - 0.1 * buf
  np.testing.assert_allclose(p["w"], p_ref, rtol=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw", "adamax"])
def test_adam_family_first_step_is_lr_times_sign(name):
  tx = optim.make_optimizer(name, 2e-3, weight_decay=0.0)
  p = {"w": jnp.array([1.0, 1.0])}
  upd, _ = tx.update({"w": jnp.array([3.0, -0.5])}, tx.init(p), p)
  np.testing.assert_allclose(upd["w"], [-2e-3, 2e-3], rtol=1e-4)


def test_reduce_on_plateau_in_the_chain_halves_after_patience_epochs_of_mean_loss():
  # Gini paper: "reduced it by a factor of 0.5 after 10 epochs of no improvement, with a
  # threshold of 1e-2". In the chain the plateau sees every step's loss and compares epoch
  # means (2 steps an epoch here); the new scale applies from the epoch's last update.
  config = base.get_config()
  config.schedule = ml_collections.ConfigDict({"name": "reduce_on_plateau",
                                               "kwargs": {"patience": 2}})
  config.optimizer = base.optimizer("sgd", 1.0, momentum=0.0)
  tx, schedule = optim.make_tx(config, steps_per_epoch=2, total_steps=100)
  trainable = {"params": {"w": jnp.zeros(())}, "loss_params": {}}
  state = tx.init(trainable)
  grads = {"params": {"w": jnp.ones(())}, "loss_params": {}}
  scales, lrs = [], []
  # epoch means 1.0, 0.995 (< 1 % better: no improvement), 0.994, 0.993, 0.5, 0.5, 0.5, 0.5
  for value in (1.0, 0.995, 0.994, 0.993, 0.5, 0.5, 0.5, 0.5):
    for _ in range(2):
      upd, state = tx.update(grads, state, trainable, value=jnp.float32(value))
    scales.append(-float(upd["params"]["w"]))
    lrs.append(float(optim.learning_rate(schedule, 0, state)))
  assert scales == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
  assert lrs == scales


def test_learning_rate_without_plateau_is_the_schedule():
  config = base.get_config()
  tx, schedule = optim.make_tx(config, steps_per_epoch=2, total_steps=10)
  state = tx.init({"params": {"w": jnp.zeros(())}, "loss_params": {}})
  assert float(optim.learning_rate(schedule, 3, state)) == pytest.approx(1e-3)


def test_unknown_names_and_kwargs():
  with pytest.raises(ValueError, match=r"unknown optimizer 'sgdw'; valid choices"):
    optim.make_optimizer("sgdw", 0.1)
  with pytest.raises(ValueError, match=r"schedule 'cosine': unknown kwargs \['warmup'\]"):
    optim.make_schedule(0.1, "cosine", {"warmup": 1}, steps_per_epoch=1, total_steps=1)
  with pytest.raises(ValueError, match=r"schedule 'reduce_on_plateau': unknown kwargs \['metric'\]"):
    optim.with_defaults("schedule", "reduce_on_plateau", {"metric": "accuracy"})
