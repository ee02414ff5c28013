"""Data parallelism: 8 (fake CPU) devices give the loss curve of 1 device to float tolerance.

The model has batch norm (statistics over the GLOBAL batch under GSPMD) and the
objective has batch-statistics losses (Gini on last_conv, center loss with its own
Adam, SNNL), so any per-device reduction would show up as a different curve. Measured
differences are ~1e-7 relative (summation order), so the tolerances are tight.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from disc_jax.train import aux_loss, build, optimizer


def _curve(config, num_devices, num_steps=6):
  config.num_devices = num_devices
  run = build(config)
  assert run.mesh.size == num_devices
  state = run.init()
  losses, batches = [], run.train_pipeline.batches()
  for _ in range(num_steps):
    batch = run.shard(next(batches))
    assert len(batch["image"].sharding.device_set) == num_devices
    state, metrics = run.train_step(state, batch)
    losses.append({k: float(v) for k, v in metrics.items()})
  evaluated = run.eval_step(state, run.shard(run.eval_pipeline.batch(0)))
  return losses, jax.tree.map(np.asarray, state), {k: float(v) for k, v in evaluated.items()}


@pytest.mark.skipif(len(jax.devices()) < 8, reason="needs 8 (fake) devices from tests/conftest.py")
def test_one_vs_eight_devices_same_curve(tiny):
  config = tiny(model="embedding_cnn", image=8, hidden_dim=16, embedding_dim=4)
  config.aux_losses = [aux_loss("gini", 0.5, input="last_conv"),
                       aux_loss("center", 0.1, param_optimizer=optimizer("adam", 0.1)),
                       aux_loss("snnl", 0.5)]
  one, state_1, eval_1 = _curve(config, 1)
  eight, state_8, eval_8 = _curve(config, 8)
  for a, b in zip(one, eight):
    for key in ("loss", "cls_loss", "loss/gini", "loss/center", "loss/snnl", "grad_norm"):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-7, err_msg=key)
  # BN running statistics and all params agree as well.
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6),
               (state_1.params, state_1.batch_stats, state_1.loss_params),
               (state_8.params, state_8.batch_stats, state_8.loss_params))
  assert eval_1["count"] == eval_8["count"]
  np.testing.assert_allclose(eval_1["ce_sum"], eval_8["ce_sum"], rtol=1e-5)
