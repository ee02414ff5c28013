"""The config schema, stated once in :func:`get_config`, and its validation.

Every experiment config (``configs/``) starts from :func:`get_config` and changes fields.
:func:`validate` runs once, at the entry point (:func:`disc_jax.train.loop.train_and_evaluate`):
it rejects unknown keys and names with the valid choices, then traces one train step
abstractly (``jax.eval_shape``), so a loss kwarg the loss does not take, a model without
the head a loss needs, or a shape mismatch fails before any data is read or anything
compiles, with a :class:`ConfigError` (a ``ValueError``) that names the config field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict

from disc_jax import data as data_lib
from disc_jax import models
from disc_jax.data import class_subset


class ConfigError(ValueError):
  """A config field that cannot run; the message names the field and what it may be."""


def optimizer(name: str = "adam", learning_rate: float = 1e-3, *, weight_decay: float = 0.0,
              **kwargs) -> ml_collections.ConfigDict:
  """An optimizer entry (``config.optimizer``, or an aux loss's ``param_optimizer``).

  ``name``: 'adam' | 'adamw' | 'adamax' | 'sgd' (or 'shared' for a ``param_optimizer``:
  trained by the model's optimizer); ``kwargs``: b1/b2/eps or momentum/nesterov.

  >>> optimizer("sgd", 0.1, weight_decay=5e-4, momentum=0.9).kwargs.momentum
  0.9
  """
  return ml_collections.ConfigDict({"name": name, "learning_rate": float(learning_rate),
                                    "weight_decay": float(weight_decay), "kwargs": dict(kwargs)})


def aux_loss(name: str, weight: float = 1.0, *, input: str = "features",  # noqa: A002
             kwargs: Mapping[str, Any] | None = None, start_epoch: int = 0,
             param_init: str = "normal", param_optimizer: Mapping[str, Any] | None = None,
             center_update: str = "gradient", alpha: float = 0.5) -> ml_collections.ConfigDict:
  """One ``config.aux_losses`` entry (the rules per loss: :mod:`disc_jax.train.objective`).

  Args:
    name: the loss: 'gini', 'kl', 'group_softmax', 'itra', 'sigma2r', 'center',
      'intra_class_variance' or 'snnl'.
    weight: its λ.
    input: the sowed intermediate it reads: 'features' (the head's input) or 'last_conv'.
    kwargs: keywords of its :mod:`disc_jax.losses` function (e.g. ``n_neighbors``).
    start_epoch: the first epoch, counted from 1, with the term on (0 or 1: from the start).
    param_init: 'normal' (N(0, 1)) or 'zeros': its centers / centroids / growth rates.
    param_optimizer: an :func:`optimizer` entry training its parameters; None: 'shared',
      the model's optimizer.
    center_update: 'gradient', or 'wen' (center loss only: Wen et al.'s update at rate
      ``alpha`` instead of a gradient step).
    alpha: the Wen update's rate.

  >>> aux_loss("center", 0.01, center_update="wen").alpha
  0.5
  """
  popt = optimizer("shared", 0.0) if param_optimizer is None else param_optimizer
  return ml_collections.ConfigDict({
      "name": name, "weight": float(weight), "input": input, "kwargs": dict(kwargs or {}),
      "start_epoch": int(start_epoch), "param_init": param_init,
      "param_optimizer": ml_collections.ConfigDict(dict(popt)), "center_update": center_update,
      "alpha": float(alpha)})


def extra_dataset(name: str, split: str = "test", *, kwargs: Mapping[str, Any] | None = None,
                  data_dir: str | None = None, manual_dir: str | None = None,
                  prefix: str = "") -> ml_collections.ConfigDict:
  """One ``final_eval.extra_datasets`` entry: a further dataset the final model is scored on.

  It adds ``<prefix>/accuracy`` and ``<prefix>/cross_entropy`` (prefix '' = ``name``) to the
  final metrics; ``data_dir``/``manual_dir`` None: ``config.dataset``'s (see
  :mod:`disc_jax.train.evaluate`).

  >>> extra_dataset("caltech101_cifar100").split
  'test'
  """
  return ml_collections.ConfigDict({"name": name, "split": split, "kwargs": dict(kwargs or {}),
                                    "data_dir": data_dir, "manual_dir": manual_dir,
                                    "prefix": prefix})


def get_config() -> ml_collections.ConfigDict:
  """Every field a run reads, with its default: LeNet++ on Fuzzy-RGB, cross-entropy, Adam."""
  c = ml_collections.ConfigDict()
  c.seed = 0                       # PRNG seed of the init, dropout and the data order
  c.dataset = ml_collections.ConfigDict()
  c.dataset.name = "fuzzy_rgb"     # a disc_jax.data dataset ('fuzzy_rgb', 'mnist', ...)
  c.dataset.data_dir = config_dict.placeholder(str)    # TFDS data dir (None: its default)
  c.dataset.manual_dir = config_dict.placeholder(str)  # folder of the original files
  c.dataset.train_split = "train"
  c.dataset.eval_split = "test"
  c.dataset.kwargs = ml_collections.ConfigDict()       # extra load_source keywords
  c.dataset.sampler = "random"     # 'random' | 'balanced' (σ²R's balanced batches)
  c.dataset.min_per_class = 0      # balanced: minimum examples of a class per batch
  c.dataset.image_size = config_dict.placeholder(int)  # resize to this side (None: native)
  c.dataset.num_workers = 0        # grain worker processes decoding batches (0: in-process)
  # Only some classes, relabelled 0..C-1 in order of original id in every split:
  # {'num_classes': C, 'seed': s} draws C at random, a list names them; None: all.
  c.dataset.class_subset = None
  c.augment = ()                   # the pipeline's augmentations (train only), in order
  c.model = ml_collections.ConfigDict()
  c.model.name = "lenet_pp"        # a disc_jax.models name
  c.model.kwargs = ml_collections.ConfigDict()
  c.batch_size = 128               # global batch size, split over the devices
  c.eval_batch_size = config_dict.placeholder(int)     # None: batch_size
  c.num_epochs = 10
  c.num_steps = config_dict.placeholder(int)           # overrides num_epochs when set
  c.optimizer = optimizer("adam", 1e-3)   # weight_decay: L2 in the gradient (adamw: decoupled)
  # 'constant' | 'piecewise_constant' | 'cosine' | 'reduce_on_plateau' (disc_jax.train.state)
  c.schedule = ml_collections.ConfigDict({"name": "constant", "kwargs": {}})
  c.label_smoothing = 0.0          # optax.smooth_labels alpha ('softmax_ce' only)
  # 'softmax_ce' | 'group_softmax' | softmax variants (disc_jax.train.objective)
  c.classification_loss = ml_collections.ConfigDict({"name": "softmax_ce", "kwargs": {}})
  c.aux_losses = []                # entries made by aux_loss()
  c.eval_every = config_dict.placeholder(int)          # steps (None: once per epoch)
  # Steps between checkpoints (None: once per epoch; 0: none). A checkpoint is also
  # saved at every eval, at the end and on SIGTERM/SIGINT.
  c.checkpoint_every = config_dict.placeholder(int)
  c.keep_checkpoints = 2           # the last N are kept, plus the best by best_metric
  # Periodic-eval metric that picks the best checkpoint: evaluate.PERIODIC_KEYS ('': none);
  # a retrieval/* key makes each periodic eval also compute retrieval (vs the train split).
  c.best_metric = "accuracy"
  c.best_mode = "max"              # 'max' | 'min'
  c.log_every = 50                 # steps between log lines (the progress bar: every step)
  c.num_devices = config_dict.placeholder(int)         # None: all local devices
  c.distributed = False            # jax.distributed.initialize() (multi-host)
  c.final_eval = ml_collections.ConfigDict({
      # training examples in the final feature metrics; also the retrieval references
      "max_train_examples": 10_000,
      "retrieval": True,             # retrieval/* (test vs train) and clustering/* (test)
      "retrieval_k": 10,             # neighbours in retrieval/knn_accuracy's vote
      "plot": True,                  # 2-D feature scatter plots (PCA above 2-D), w_K plot
      "extra_datasets": ()})         # entries made by extra_dataset()
  # A run's workdir / checkpoints folder / step whose model params and batch_stats start
  # this run (step, optimizer and loss params start fresh); init_from_skip: parameter
  # paths (e.g. 'head') kept at their fresh init (disc_jax.train.checkpoint).
  c.init_from = config_dict.placeholder(str)
  c.init_from_skip = ()
  return c


def to_plain(value: Any) -> Any:
  """ConfigDicts (also inside lists/tuples) -> plain dicts/lists, for JSON and comparison.

  >>> to_plain(ml_collections.ConfigDict({"a": [ml_collections.ConfigDict({"b": 1})]}))
  {'a': [{'b': 1}]}
  """
  if isinstance(value, (ml_collections.ConfigDict, Mapping)):
    return {k: to_plain(v) for k, v in value.items()}
  if isinstance(value, tuple):
    return tuple(to_plain(v) for v in value)
  if isinstance(value, list):
    return [to_plain(v) for v in value]
  if isinstance(value, ml_collections.FieldReference):
    return to_plain(value.get())
  return value


def as_config_dicts(items) -> list[ml_collections.ConfigDict]:
  """List entries (aux_losses, extra_datasets) as ConfigDicts: a list in a ConfigDict may
  hold plain dicts."""
  return [e if isinstance(e, ml_collections.ConfigDict) else ml_collections.ConfigDict(e)
          for e in items]


def num_classes_of(config) -> int:
  """The model's class count: the dataset's (its kwargs may set one), or C of a class subset."""
  ds = config.dataset
  total = int(dict(ds.kwargs).get("num_classes", data_lib.dataset_info(ds.name).num_classes))
  try:
    return class_subset.subset_size(total, to_plain(ds.class_subset))
  except ValueError as e:
    raise ValueError(f"config.dataset.{e}") from None


def _check_keys(got: Any, want: Mapping[str, Any], where: str) -> None:
  if not isinstance(got, Mapping):
    raise ValueError(f"{where} must be a ConfigDict with keys {sorted(want)}, got {got!r}")
  unknown = sorted(set(got) - set(want))
  if unknown:
    raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(want)}")
  for key, value in want.items():
    if isinstance(value, Mapping) and value and key != "kwargs" and key in got:
      _check_keys(got[key], value, f"{where}.{key}")


def _non_finite(value: Any, where: str) -> list[str]:
  """The paths of the NaN/inf floats in ``value`` (a plain config or part of one)."""
  if isinstance(value, float) and not math.isfinite(value):
    return [f"{where}={value}"]
  if isinstance(value, Mapping):
    return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}")]
  if isinstance(value, (list, tuple)):
    return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where}[{i}]")]
  return []


def _check_numbers(plain: Mapping[str, Any]) -> None:
  if not (isinstance(plain["dataset"]["num_workers"], int) and plain["dataset"]["num_workers"] >= 0):
    raise ValueError("config.dataset.num_workers must be an int >= 0, got "
                     f"{plain['dataset']['num_workers']!r}")
  for key in ("batch_size", "num_epochs", "log_every", "keep_checkpoints", "eval_batch_size",
              "num_steps", "eval_every", "num_devices", "checkpoint_every"):
    value = plain[key]
    zero_ok = key == "checkpoint_every"
    if value is None and key not in ("batch_size", "num_epochs", "log_every", "keep_checkpoints"):
      continue
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= (0 if zero_ok else 1)):
      raise ValueError(f"config.{key} must be a {'non-negative' if zero_ok else 'positive'} "
                       f"int, got {value!r}")
  lrs = [("optimizer.learning_rate", plain["optimizer"]["learning_rate"])]
  lrs += [(f"aux_losses[{i}].param_optimizer.learning_rate", e["param_optimizer"]["learning_rate"])
          for i, e in enumerate(plain["aux_losses"]) if e["param_optimizer"]["name"] != "shared"]
  for key, lr in lrs:
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
      raise ValueError(f"config.{key} must be a finite number > 0, got {lr!r}")
  bad = _non_finite(plain, "config")
  if bad:
    raise ValueError(f"{', '.join(bad)}: a config field must be a finite number; a NaN or "
                     "infinite value would train to NaN or to nothing")
  decays = [("optimizer", plain["optimizer"])] + [
      (f"aux_losses[{i}].param_optimizer", e["param_optimizer"])
      for i, e in enumerate(plain["aux_losses"])]
  for key, opt in decays:
    wd = opt.get("weight_decay", 0.0)
    if not (isinstance(wd, (int, float)) and wd >= 0):
      raise ValueError(f"config.{key}.weight_decay must be a number >= 0 (0: none), got {wd!r}")
  if plain["best_mode"] not in ("max", "min"):
    raise ValueError(f"config.best_mode must be 'max' or 'min', got {plain['best_mode']!r}")
  fe = plain["final_eval"]
  for key in ("max_train_examples", "retrieval_k"):
    if not (isinstance(fe[key], int) and not isinstance(fe[key], bool) and fe[key] >= 1):
      raise ValueError(f"config.final_eval.{key} must be a positive int, got {fe[key]!r}")
  if not isinstance(fe["retrieval"], bool):
    raise ValueError(f"config.final_eval.retrieval must be True or False, got {fe['retrieval']!r}")


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks ``config`` (see the module docstring); raises :class:`ConfigError` naming the field."""
  try:
    _validate(config)
  except ConfigError:
    raise
  except ValueError as e:
    raise ConfigError(str(e)) from e


def _validate(config: ml_collections.ConfigDict) -> None:
  from disc_jax.train import checkpoint, evaluate, objective, state, step  # noqa: PLC0415

  plain = to_plain(config)
  _check_keys(plain, to_plain(get_config()), "config")
  entry = to_plain(aux_loss("x"))
  for i, e in enumerate(plain["aux_losses"]):
    _check_keys(e, entry, f"config.aux_losses[{i}]")
  extra = to_plain(extra_dataset("x"))
  for i, e in enumerate(plain["final_eval"]["extra_datasets"]):
    _check_keys(e, extra, f"config.final_eval.extra_datasets[{i}]")
  _check_numbers(plain)
  ds = config.dataset
  try:
    info = data_lib.dataset_info(ds.name)
  except ValueError as e:
    raise ValueError(f"config.dataset.name: {e}") from None
  num_classes = num_classes_of(config)
  if ds.sampler not in ("random", "balanced"):
    raise ValueError(f"config.dataset.sampler must be 'random' or 'balanced', got {ds.sampler!r}")
  try:
    data_lib.parse_augment(tuple(config.augment))
  except ValueError as e:
    raise ValueError(f"config.augment: {e}") from None
  checks = [("config.optimizer", "optimizer", config.optimizer),
            ("config.schedule", "schedule", config.schedule)]
  checks += [(f"config.aux_losses[{i}].param_optimizer", "optimizer", e.param_optimizer)
             for i, e in enumerate(objective.entries(config)) if e.param_optimizer.name != "shared"]
  for where, kind, entry_ in checks:
    try:
      state.with_defaults(kind, entry_.name, entry_.kwargs)
    except ValueError as e:
      raise ValueError(f"{where}: {e}") from None
  objective.check_entries(config)
  evaluate.check_extra_datasets(config, num_classes)
  best, fe = plain["best_metric"], plain["final_eval"]
  if best and best not in evaluate.PERIODIC_KEYS:
    raise ValueError(f"config.best_metric {best!r} is not a metric of the periodic eval; "
                     f"choose one of {list(evaluate.PERIODIC_KEYS)} (or '' for no best checkpoint)")
  uses_k = fe["retrieval"] or best in evaluate.RETRIEVAL_KEYS
  if uses_k and fe["retrieval_k"] > fe["max_train_examples"]:
    raise ValueError(f"config.final_eval.retrieval_k={fe['retrieval_k']} exceeds the "
                     f"{fe['max_train_examples']} retrieval references "
                     "(final_eval.max_train_examples); lower it")
  skip = plain["init_from_skip"]
  if plain["init_from"] is not None and (not isinstance(plain["init_from"], str)
                                         or not plain["init_from"]):
    raise ValueError("config.init_from must be a checkpoint path (str) or None, got "
                     f"{plain['init_from']!r}")
  if plain["init_from"] is not None:
    checkpoint.find_checkpoint(plain["init_from"])     # fails here, before any data is read
  if isinstance(skip, str) or not all(isinstance(p, str) and p for p in skip):
    raise ValueError("config.init_from_skip must be a list of parameter paths such as "
                     f"['head'], got {skip!r}")
  try:
    model = models.get_model(config.model.name, num_classes=num_classes, **to_plain(config.model.kwargs))
  except (ValueError, TypeError) as e:
    raise ValueError(f"config.model: {e}") from None
  n = step.make_mesh(config.num_devices).size       # checks num_devices
  if config.batch_size % n:
    raise ValueError(f"config.batch_size={config.batch_size} must be divisible by the {n} "
                     "devices, so every device gets the same number of examples; pick a "
                     f"multiple of {n}, or use fewer devices (config.num_devices, a divisor "
                     "of the batch size)")
  # One train step, abstractly: every name, kwarg and shape meets its use here.
  shape = tuple(dict(ds.kwargs).get("image_shape", info.image_shape))
  if ds.image_size:
    shape = (int(ds.image_size), int(ds.image_size), shape[-1])
  tx, schedule = state.make_tx(config, steps_per_epoch=1, total_steps=1)
  abstract = jax.eval_shape(lambda rng: state.create_state(
      config, model, tx, rng=rng, input_shape=shape, num_classes=num_classes),
      jax.random.PRNGKey(0))
  batch = {"image": jax.ShapeDtypeStruct((config.batch_size, *shape), jnp.float32),
           "label": jax.ShapeDtypeStruct((config.batch_size,), jnp.int32)}
  if objective.needs_second_batch(config):
    batch.update(image2=batch["image"], label2=batch["label"])
  train_step = step.make_train_step(config, model, tx, schedule, num_classes=num_classes,
                                    steps_per_epoch=1)
  jax.eval_shape(train_step, abstract, batch)
