"""The base config every experiment config starts from.

The schema (every field, its meaning and default) is documented in
:mod:`disc_jax.train.schema`; :func:`disc_jax.train.config.validate` rejects unknown
keys, models, datasets, losses, optimizers and schedules before anything compiles.

Use it in a config file::

  from configs import base

  def get_config():
    config = base.get_config()
    config.aux_losses = [base.aux_loss("center", 0.01, param_optimizer=base.optimizer("adam", 0.1))]
    return config
"""

from __future__ import annotations

from disc_jax.train.schema import (
    AUX_LOSS_DEFAULTS, EXTRA_DATASET_DEFAULTS, aux_loss, extra_dataset, get_config, optimizer)

__all__ = ["AUX_LOSS_DEFAULTS", "EXTRA_DATASET_DEFAULTS", "aux_loss", "extra_dataset",
           "get_config", "optimizer"]
