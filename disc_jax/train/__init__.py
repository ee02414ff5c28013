"""Training: ``train_and_evaluate(config, workdir)`` and what it is made of.

From the entry point to a loss value: :func:`~disc_jax.train.loop.train_and_evaluate`
validates the config once (:mod:`.config`), builds the data, model and jitted steps,
and runs :func:`~disc_jax.train.step.make_train_step`'s step, whose loss is the one
explicit objective of :func:`~disc_jax.train.objective.make_loss_fn`.
"""

from disc_jax.train.checkpoint import Checkpointer, Interrupted, SignalGuard
from disc_jax.train.config import (ConfigError, aux_loss, extra_dataset, get_config, optimizer,
                                   to_plain, validate)
from disc_jax.train.loop import build, train_and_evaluate
from disc_jax.train.state import TrainState

__all__ = ["Checkpointer", "ConfigError", "Interrupted", "SignalGuard", "TrainState", "aux_loss",
           "build", "extra_dataset", "get_config", "optimizer", "to_plain", "train_and_evaluate",
           "validate"]
