"""Training: the jitted step, the loop around it, configs, checkpoints, logging.

``train_and_evaluate(config, workdir)`` is the entry point (see :mod:`.loop`); the
config schema is :mod:`.schema` (``configs/base.py``) and :func:`validate` checks a
config before anything compiles. The step (:mod:`.step`) is pure and jitted over a
('data',) mesh; the objective (:mod:`.objective`, :mod:`.classification`) maps config
names to :mod:`disc_jax.losses` functions.
"""

from disc_jax.train.checkpoint import Checkpointer, Interrupted, SignalGuard
from disc_jax.train.classification import (
    CLASSIFICATION_LOSSES, ClassificationLoss, LossInputs, loss_kwargs, register)
from disc_jax.train.config import merge, to_plain, validate
from disc_jax.train.loop import build, train_and_evaluate
from disc_jax.train.objective import AUX_LOSSES
from disc_jax.train.optim import OPTIMIZERS, SCHEDULES
from disc_jax.train.schema import aux_loss, extra_dataset, get_config, optimizer
from disc_jax.train.state import TrainState

__all__ = [
    "AUX_LOSSES", "CLASSIFICATION_LOSSES", "Checkpointer", "ClassificationLoss", "Interrupted",
    "LossInputs", "OPTIMIZERS", "SCHEDULES", "SignalGuard", "TrainState", "aux_loss", "build",
    "extra_dataset", "get_config", "loss_kwargs", "merge", "optimizer", "register", "to_plain",
    "train_and_evaluate", "validate",
]
