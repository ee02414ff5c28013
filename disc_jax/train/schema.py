"""The config schema: every field a training run reads, with its default.

``configs/base.py`` exposes :func:`get_config` to the config files; derived configs
(``configs/default.py``, ``configs/<paper>/<table>.py``) start from it and change
fields; :func:`disc_jax.train.config.validate`
checks the result against this schema before anything is compiled, so an unknown
key, loss, model, dataset, optimizer or schedule fails with the valid choices.

Schema (units: steps unless the name says epochs)::

  seed                 int    PRNG seed of init, dropout and the data order.
  dataset.name         str    a ``disc_jax.data`` dataset ('fuzzy_rgb', 'mnist', ...).
  dataset.data_dir     str?   TFDS data dir (None: the TFDS default).
  dataset.manual_dir   str?   folder of the original files (offline builds).
  dataset.train_split / eval_split  str
  dataset.kwargs       dict   extra ``load_source`` keywords (e.g. fuzzy_rgb sizes).
  dataset.sampler      str    'random' | 'balanced' (σ²R uses balanced batches).
  dataset.min_per_class int   balanced sampler: minimum examples of a class per batch.
  dataset.image_size   int?   resize images to this side (None: native).
  dataset.class_subset dict|list?  keep only some classes, relabelled 0..C-1 in sorted
                              order of original id, in every split (the model gets C
                              classes): {'num_classes': C, 'seed': s} draws C at random
                              with a fixed seed, a list names the ids; None: all classes
                              (see disc_jax.data.class_subset).
  augment              tuple  names of the pipeline's augmentations (train only).
  model.name           str    a ``disc_jax.models`` name; model.kwargs: its keywords.
  batch_size           int    global batch size (split over the devices).
  eval_batch_size      int?   None: batch_size.
  num_epochs           int    epochs; num_steps (int?) overrides it when set.
  optimizer.name       str    'adam' | 'adamw' | 'adamax' | 'sgd'
  optimizer.learning_rate float; optimizer.weight_decay float (L2 added to the
                       gradient as PyTorch does; decoupled for adamw);
                       optimizer.kwargs: b1/b2/eps or momentum/nesterov.
  schedule.name        str    'constant' | 'piecewise_constant' | 'cosine' |
                       'reduce_on_plateau'; schedule.kwargs: see disc_jax.train.optim.
  label_smoothing      float  optax.smooth_labels alpha for 'softmax_ce'.
  classification_loss.name  str  'softmax_ce' (default) | 'group_softmax' | ...
  classification_loss.kwargs dict
  aux_losses           list   entries made by :func:`aux_loss` (see there).
  eval_every           int?   None: once per epoch.
  checkpoint_every     int?   None: once per epoch; 0: no periodic saves. A checkpoint
                              is also saved at every eval (for the best one), at the
                              end and on SIGTERM/SIGINT.
  keep_checkpoints     int    the last N checkpoints are kept (+ the best one).
  best_metric / best_mode  str  eval metric that picks the best checkpoint; 'max'|'min'.
  log_every            int    steps between log lines (the progress bar every step).
  num_devices          int?   None: all local devices.
  distributed          bool   call jax.distributed.initialize() (multi-host).
  final_eval.max_train_examples int  train examples used by the final metrics.
  final_eval.plot      bool   write the 2-D feature scatter plots (PCA above 2-D).
  final_eval.extra_datasets tuple  entries made by :func:`extra_dataset`: further datasets
                              the final model is evaluated on, adding
                              '<prefix>/accuracy' and '<prefix>/cross_entropy' to the
                              final metrics (see disc_jax.train.extra_eval).
  init_from            str?   a checkpoint (a run's workdir, its checkpoints folder or one
                              step's folder) whose model params and batch_stats start
                              this run; step, optimizer and loss params start fresh. A
                              resumed run uses its own checkpoint (disc_jax.train.init_from).
  init_from_skip       tuple  parameter paths (e.g. 'head') kept at their fresh init when
                              loading init_from (e.g. when the class count differs).
  runs                 dict   name -> partial config; non-empty = a side-by-side job
                              (each run is this config with the partial merged in).
"""

from __future__ import annotations

from typing import Any

import ml_collections
from ml_collections import config_dict

# Fields of one auxiliary-loss entry and their defaults (see aux_loss()).
AUX_LOSS_DEFAULTS: dict[str, Any] = {
    "name": "",
    "weight": 1.0,
    "input": "features",
    "kwargs": {},
    "start_epoch": 0,
    "param_init": "normal",
    "param_optimizer": {"name": "shared", "learning_rate": 0.0, "weight_decay": 0.0,
                        "kwargs": {}},
    "center_update": "gradient",
    "alpha": 0.5,
}


# Fields of one final_eval.extra_datasets entry and their defaults (see extra_dataset()).
EXTRA_DATASET_DEFAULTS: dict[str, Any] = {
    "name": "",
    "split": "test",
    "kwargs": {},
    "data_dir": None,
    "manual_dir": None,
    "prefix": "",
}


def optimizer(name: str = "adam", learning_rate: float = 1e-3, *, weight_decay: float = 0.0,
              **kwargs) -> ml_collections.ConfigDict:
  """An optimizer entry (``config.optimizer`` or an aux loss's ``param_optimizer``).

  >>> optimizer("sgd", 0.1, weight_decay=5e-4, momentum=0.9).kwargs.momentum
  0.9
  """
  return ml_collections.ConfigDict({"name": name, "learning_rate": float(learning_rate),
                                    "weight_decay": float(weight_decay), "kwargs": dict(kwargs)})


def aux_loss(name: str, weight: float = 1.0, **fields) -> ml_collections.ConfigDict:
  """One auxiliary-loss entry with every field set (defaults from AUX_LOSS_DEFAULTS).

  Fields: ``name`` (a disc_jax.train.objective name), ``weight`` (λ), ``input``
  ('features' | 'last_conv': the sowed intermediate the loss reads), ``kwargs`` (the
  loss function's keywords), ``start_epoch`` (the first epoch, counted from 1, with the term on),
  ``param_init`` ('normal' | 'zeros': init of its centers/centroids/growth),
  ``param_optimizer`` (an :func:`optimizer` entry for its parameters; name 'shared'
  = trained by the model's optimizer), ``center_update`` ('gradient' | 'wen': center
  loss only; 'wen' updates the centers with Wen et al.'s rule at rate ``alpha``
  instead of by gradient).

  >>> aux_loss("center", 0.01, center_update="wen").alpha
  0.5
  """
  unknown = set(fields) - set(AUX_LOSS_DEFAULTS)
  if unknown:
    raise ValueError(f"aux_loss(): unknown field(s) {sorted(unknown)}; valid fields: "
                     f"{sorted(AUX_LOSS_DEFAULTS)}")
  entry = {k: (dict(v) if isinstance(v, dict) else v) for k, v in AUX_LOSS_DEFAULTS.items()}
  entry["param_optimizer"] = dict(AUX_LOSS_DEFAULTS["param_optimizer"])
  entry.update(name=name, weight=float(weight))
  for key, value in fields.items():
    if isinstance(value, ml_collections.ConfigDict):
      value = value.to_dict()
    entry[key] = value
  return ml_collections.ConfigDict(entry)


def extra_dataset(name: str, split: str = "test", **fields) -> ml_collections.ConfigDict:
  """One ``final_eval.extra_datasets`` entry with every field set (defaults: EXTRA_DATASET_DEFAULTS).

  Fields: ``name`` (a disc_jax.data dataset), ``split``, ``kwargs`` (extra ``load_source``
  keywords), ``data_dir`` / ``manual_dir`` (None: ``config.dataset``'s), ``prefix`` (of
  the metric keys; '' = the dataset name).

  >>> extra_dataset("caltech101_cifar100").split
  'test'
  """
  unknown = set(fields) - set(EXTRA_DATASET_DEFAULTS)
  if unknown:
    raise ValueError(f"extra_dataset(): unknown field(s) {sorted(unknown)}; valid fields: "
                     f"{sorted(EXTRA_DATASET_DEFAULTS)}")
  entry = {**EXTRA_DATASET_DEFAULTS, "kwargs": {}, "name": name, "split": split}
  for key, value in fields.items():
    entry[key] = value.to_dict() if isinstance(value, ml_collections.ConfigDict) else value
  return ml_collections.ConfigDict(entry)


def get_config() -> ml_collections.ConfigDict:
  """The base config: LeNet++ on Fuzzy-RGB with plain cross-entropy, Adam 1e-3."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = "fuzzy_rgb"
  c.dataset.data_dir = config_dict.placeholder(str)
  c.dataset.manual_dir = config_dict.placeholder(str)
  c.dataset.train_split = "train"
  c.dataset.eval_split = "test"
  c.dataset.kwargs = ml_collections.ConfigDict()
  c.dataset.sampler = "random"
  c.dataset.min_per_class = 0
  c.dataset.image_size = config_dict.placeholder(int)
  c.dataset.class_subset = None
  c.augment = ()

  c.model = ml_collections.ConfigDict()
  c.model.name = "lenet_pp"
  c.model.kwargs = ml_collections.ConfigDict()

  c.batch_size = 128
  c.eval_batch_size = config_dict.placeholder(int)
  c.num_epochs = 10
  c.num_steps = config_dict.placeholder(int)

  c.optimizer = optimizer("adam", 1e-3)
  c.schedule = ml_collections.ConfigDict({"name": "constant", "kwargs": {}})

  c.label_smoothing = 0.0
  c.classification_loss = ml_collections.ConfigDict({"name": "softmax_ce", "kwargs": {}})
  c.aux_losses = []

  c.eval_every = config_dict.placeholder(int)
  c.checkpoint_every = config_dict.placeholder(int)
  c.keep_checkpoints = 2
  c.best_metric = "accuracy"
  c.best_mode = "max"
  c.log_every = 50
  c.num_devices = config_dict.placeholder(int)
  c.distributed = False

  c.final_eval = ml_collections.ConfigDict({"max_train_examples": 10_000, "plot": True,
                                            "extra_datasets": ()})
  c.init_from = config_dict.placeholder(str)
  c.init_from_skip = ()
  c.runs = ml_collections.ConfigDict()
  return c
