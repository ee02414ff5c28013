"""Shared tiny configs for the training tests (tiny shapes: 2 shared CPU cores)."""

from __future__ import annotations

import chex
import jax
import ml_collections
import pytest

from disc_jax.train import config as config_lib
from disc_jax.train import state as state_lib
from disc_jax.train import step as step_lib


def tiny_config(*, model: str = "lenet5", num_classes: int = 4, image: int = 12,
                examples: int = 256, batch_size: int = 32, **model_kwargs) -> ml_collections.ConfigDict:
  """A config training ``model`` on 'synthetic' images (image x image x 1)."""
  c = config_lib.get_config()
  c.dataset.name = "synthetic"
  c.dataset.kwargs = ml_collections.ConfigDict(
      {"num_examples": examples, "image_shape": (image, image, 1), "num_classes": num_classes})
  c.model.name = model
  c.model.kwargs = ml_collections.ConfigDict(
      model_kwargs or ({"feature_dim": 8} if model == "lenet5" else {}))
  c.batch_size = batch_size
  c.num_epochs = 2
  c.log_every = 1
  c.final_eval.max_train_examples = 64
  c.final_eval.plot = False
  return c


@pytest.fixture
def tiny():
  return tiny_config


def traced_once_train_step(run):
  """``run``'s train step, jitted as the loop does, failing if it is traced twice."""
  tx, schedule = state_lib.make_tx(run.config, steps_per_epoch=run.steps_per_epoch,
                                   total_steps=run.total_steps)
  step = step_lib.make_train_step(run.config, run.model, tx, schedule,
                                  num_classes=run.num_classes,
                                  steps_per_epoch=run.steps_per_epoch)
  chex.clear_trace_counter()
  return jax.jit(chex.assert_max_traces(step, n=1), donate_argnums=(0,))


@pytest.fixture
def traced_once():
  return traced_once_train_step
