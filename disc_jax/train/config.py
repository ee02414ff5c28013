"""Config checking before anything is compiled, and config utilities.

:func:`validate` compares a config with the schema (:mod:`.schema`) and with the
registries of models, datasets, losses, optimizers and schedules. Every failure is a
``ValueError`` that names the field and lists the valid choices, e.g.::

  ValueError: config.model.name: unknown model name 'lenet7'; known names: lenet5, ...
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections

from disc_jax import data as data_lib
from disc_jax import models
from disc_jax.data import class_subset
from disc_jax.train import classification, objective, optim, schema

# Sections whose keys are fixed by the schema (anything else there is a typo).
_FIXED_SECTIONS = ("dataset", "model", "optimizer", "schedule", "classification_loss",
                   "final_eval")
# Free-form dicts: their keys are checked against the function they configure.
_FREE = ("kwargs",)


def to_plain(value: Any) -> Any:
  """ConfigDicts (also inside lists/tuples) -> plain dicts/lists, for JSON and comparison.

  >>> to_plain(ml_collections.ConfigDict({"a": [ml_collections.ConfigDict({"b": 1})]}))
  {'a': [{'b': 1}]}
  """
  if isinstance(value, (ml_collections.ConfigDict, Mapping)):
    items = value.items() if isinstance(value, Mapping) else value.items()
    return {k: to_plain(v) for k, v in items}
  if isinstance(value, (list, tuple)):
    return type(value)(to_plain(v) for v in value) if isinstance(value, tuple) else [
        to_plain(v) for v in value]
  if isinstance(value, ml_collections.FieldReference):
    return to_plain(value.get())
  return value


def _schema() -> dict[str, Any]:
  return to_plain(schema.get_config())


def _aux_defaults() -> dict[str, Any]:
  return copy.deepcopy(schema.AUX_LOSS_DEFAULTS)


def _declared_classes(name: str, kwargs: Mapping[str, Any]) -> int:
  """A dataset's class count: its registry entry's, unless its kwargs set one (synthetic)."""
  return int(dict(kwargs).get("num_classes", data_lib.dataset_info(name).num_classes))


def _dataset_classes(ds: Mapping[str, Any]) -> int:
  """The model's class count for a plain ``dataset`` section (after any class subset)."""
  total = _declared_classes(ds["name"], ds["kwargs"])
  try:
    return class_subset.subset_size(total, ds.get("class_subset"))
  except ValueError as e:
    raise ValueError(f"config.dataset.{e}") from None


def _check_extra_datasets(plain: Mapping[str, Any], num_classes: int) -> None:
  """``final_eval.extra_datasets``: entry keys, names, prefixes, label space (see extra_eval)."""
  entries = plain["final_eval"]["extra_datasets"]
  where = "config.final_eval.extra_datasets"
  if not isinstance(entries, (list, tuple)):
    raise ValueError(f"{where} must be a tuple of entries made by configs.base.extra_dataset, "
                     f"got {entries!r}")
  if entries and plain["dataset"].get("class_subset") is not None:
    raise ValueError(f"{where} cannot be combined with config.dataset.class_subset (the extra "
                     "datasets' labels are not relabelled); drop one of the two")
  prefixes = []
  for i, entry in enumerate(entries):
    if not isinstance(entry, dict):
      raise ValueError(f"{where}[{i}] must be a dict made by configs.base.extra_dataset, "
                       f"got {entry!r}")
    _check_keys(entry, schema.EXTRA_DATASET_DEFAULTS, f"{where}[{i}]")
    entry = {**schema.EXTRA_DATASET_DEFAULTS, **entry}
    try:
      classes = _declared_classes(entry["name"], entry["kwargs"])
    except ValueError as e:
      raise ValueError(f"{where}[{i}].name: {e}") from None
    if not isinstance(entry["split"], str) or not entry["split"]:
      raise ValueError(f"{where}[{i}].split must be a split name such as 'test', "
                       f"got {entry['split']!r}")
    if classes > num_classes:
      raise ValueError(f"{where}[{i}] ({entry['name']!r}) has {classes} classes but the model "
                       f"has {num_classes}; evaluate only datasets labelled in the training "
                       "label space")
    prefixes.append(entry["prefix"] or entry["name"])
  repeated = sorted({p for p in prefixes if prefixes.count(p) > 1})
  if repeated:
    raise ValueError(f"{where}: metric prefix(es) {repeated} repeat; give the entries "
                     "distinct 'prefix' values")


def _check_init_from(plain: Mapping[str, Any]) -> None:
  path, skip = plain["init_from"], plain["init_from_skip"]
  if path is not None and (not isinstance(path, str) or not path):
    raise ValueError(f"config.init_from must be a checkpoint path (str) or None, got {path!r}")
  if isinstance(skip, str) or not isinstance(skip, (list, tuple)) or not all(
      isinstance(s, str) and s for s in skip):
    raise ValueError(f"config.init_from_skip must be a list of parameter paths such as "
                     f"['head'], got {skip!r}")


def merge(config: ml_collections.ConfigDict, partial: Mapping[str, Any]
          ) -> ml_collections.ConfigDict:
  """A copy of ``config`` with ``partial`` merged in (sections recursively, kwargs/lists replaced).

  >>> merge(schema.get_config(), {"optimizer": {"learning_rate": 0.1}}).optimizer.name
  'adam'
  """
  out = to_plain(config)

  def rec(dst: dict, src: Mapping[str, Any], path: str):
    for key, value in src.items():
      if isinstance(value, (Mapping, ml_collections.ConfigDict)) and key not in _FREE and \
          isinstance(dst.get(key), dict) and key != "runs":
        rec(dst[key], value, f"{path}{key}.")
      else:
        dst[key] = to_plain(value)

  rec(out, to_plain(partial), "")
  out["runs"] = {}
  return ml_collections.ConfigDict(out)


def _check_keys(got: Mapping[str, Any], want: Mapping[str, Any], where: str) -> None:
  unknown = sorted(set(got) - set(want))
  if unknown:
    raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(want)}")


def _positive(config, key: str, allow_none: bool = False, allow_zero: bool = False) -> None:
  value = config.get(key)
  if value is None and allow_none:
    return
  ok = isinstance(value, int) and not isinstance(value, bool) and (
      value >= 0 if allow_zero else value > 0)
  if not ok:
    raise ValueError(f"config.{key} must be a {'non-negative' if allow_zero else 'positive'} "
                     f"int{' or None' if allow_none else ''}, got {value!r}")


def validate(config: ml_collections.ConfigDict) -> list[objective.Term]:
  """Checks ``config`` (see module docstring); returns its auxiliary terms."""
  plain = to_plain(config)
  want = _schema()
  _check_keys(plain, want, "config")
  for section in _FIXED_SECTIONS:
    if not isinstance(plain.get(section), dict):
      raise ValueError(f"config.{section} must be a ConfigDict with keys "
                       f"{sorted(want[section])}, got {plain.get(section)!r}")
    _check_keys(plain[section], want[section], f"config.{section}")

  ds = plain["dataset"]
  try:
    info = data_lib.dataset_info(ds["name"])
  except ValueError as e:
    raise ValueError(f"config.dataset.name: {e}") from None
  num_classes = _dataset_classes(ds)
  if ds["sampler"] not in ("random", "balanced"):
    raise ValueError(f"config.dataset.sampler must be 'random' or 'balanced', "
                     f"got {ds['sampler']!r}")
  try:
    data_lib.parse_augment(tuple(plain["augment"]))
  except ValueError as e:
    raise ValueError(f"config.augment: {e}") from None

  _check_extra_datasets(plain, num_classes)
  _check_init_from(plain)
  try:
    model = models.get_model(plain["model"]["name"], num_classes=num_classes,
                             **plain["model"]["kwargs"])
  except ValueError as e:
    raise ValueError(f"config.model: {e}") from None

  for key in ("batch_size", "num_epochs", "log_every", "keep_checkpoints"):
    _positive(plain, key)
  for key in ("eval_batch_size", "num_steps", "eval_every", "num_devices"):
    _positive(plain, key, allow_none=True)
  _positive(plain, "checkpoint_every", allow_none=True, allow_zero=True)
  if plain["best_mode"] not in ("max", "min"):
    raise ValueError(f"config.best_mode must be 'max' or 'min', got {plain['best_mode']!r}")

  opt = plain["optimizer"]
  try:
    optim.check_optimizer(opt["name"], opt["kwargs"])
    optim.check_schedule(plain["schedule"]["name"], plain["schedule"]["kwargs"])
  except ValueError as e:
    raise ValueError(f"config.optimizer/schedule: {e}") from None

  cls = plain["classification_loss"]
  try:
    classification.check_kwargs(cls["name"], cls["kwargs"], float(plain["label_smoothing"]))
  except ValueError as e:
    raise ValueError(f"config.classification_loss: {e}") from None

  aux_defaults = _aux_defaults()
  entries = plain["aux_losses"]
  if not isinstance(entries, (list, tuple)):
    raise ValueError(f"config.aux_losses must be a list of entries made by configs.base.aux_loss, "
                     f"got {type(entries).__name__}")
  for i, entry in enumerate(entries):
    if not isinstance(entry, dict):
      raise ValueError(f"config.aux_losses[{i}] must be a dict/ConfigDict, got {entry!r}")
    _check_keys(entry, aux_defaults, f"config.aux_losses[{i}]")
    popt = entry.get("param_optimizer", {})
    _check_keys(popt, aux_defaults["param_optimizer"], f"config.aux_losses[{i}].param_optimizer")
    if popt.get("name", "shared") != "shared":
      try:
        optim.check_optimizer(popt["name"], popt.get("kwargs", {}))
      except ValueError as e:
        raise ValueError(f"config.aux_losses[{i}].param_optimizer: {e} (or 'shared')") from None
  terms = objective.build_terms(entries)

  needs_head = classification.get(cls["name"]).needs_head or any(
      t.loss.name == "group_softmax" for t in terms)
  if needs_head:
    # The shape the model sees: a 'synthetic' set's own image_shape, resized by image_size.
    shape = tuple(ds["kwargs"].get("image_shape", info.image_shape))
    if ds.get("image_size"):
      shape = (int(ds["image_size"]), int(ds["image_size"]), shape[-1])
    shapes = jax.eval_shape(lambda: models.init_variables(model, jax.random.PRNGKey(0), shape))
    if "head" not in shapes["params"]:
      raise ValueError(f"config: the loss needs the classifier params['head'] but model "
                       f"{plain['model']['name']!r} has no 'head' layer; pick another model")

  for name, run in plain["runs"].items():
    if not isinstance(run, dict):
      raise ValueError(f"config.runs.{name} must be a partial config dict, got {run!r}")
    if "runs" in run:
      raise ValueError(f"config.runs.{name}: runs cannot be nested")
    try:
      validate(merge(config, run))
    except ValueError as e:
      raise ValueError(f"config.runs.{name}: {e}") from None
  return terms


def num_classes_of(config: ml_collections.ConfigDict) -> int:
  """The model's class count: the dataset's (a synthetic set may override it), or C of
  ``dataset.class_subset``."""
  return _dataset_classes(to_plain(config.dataset))
