"""A run of a few seconds: LeNet-5 (8-d features) on 256 random 12x12 images of 4 classes.

For smoke tests of a machine or an install, and for the fault cases of
``experiments.fault_cases``; it measures nothing::

  python -m experiments.train --config configs/tiny.py --workdir /tmp/disc_tiny

Two epochs of 8 steps (batch 32), a checkpoint and an eval per epoch; the center loss
(λ = 0.1) as auxiliary loss, so the loss parameters and their optimizer are exercised.
"""

from __future__ import annotations

import ml_collections

from configs import base


def get_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  c.dataset.name = "synthetic"
  c.dataset.kwargs = ml_collections.ConfigDict(
      {"num_examples": 256, "image_shape": (12, 12, 1), "num_classes": 4})
  c.model.name = "lenet5"
  c.model.kwargs = ml_collections.ConfigDict({"feature_dim": 8})
  c.aux_losses = [base.aux_loss("center", 0.1)]
  c.batch_size = 32
  c.num_epochs = 2
  c.log_every = 4
  c.final_eval.max_train_examples = 128
  c.final_eval.plot = False
  return c
