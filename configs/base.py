"""What every experiment config starts from, and its run variants.

The schema -- every field, its meaning and default -- is :func:`get_config`
(:mod:`disc_jax.train.config`); :func:`disc_jax.train.config.validate` rejects unknown
keys, names and kwargs before anything compiles.

A config file with several runs (a paper table's rows, the main job's three objectives)
writes its shared settings once and each run as the few fields it changes::

  RUNS = {"cross_entropy": {}, "center": {"aux_losses": [base.aux_loss("center", 0.01)]}}

  def get_config(arg=None):
    config = base.get_config()
    ...
    return base.run_variant(config, RUNS, arg)

``--config=file.py:run=center`` then selects one run (the first without an argument);
each run is a complete config of its own. ``experiments.train`` and
``experiments.reproduce`` train every run of ``RUNS`` when no run is named.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import ml_collections

from disc_jax.train.config import aux_loss, extra_dataset, get_config, optimizer, to_plain

__all__ = ["aux_loss", "extra_dataset", "get_config", "optimizer", "parse_run", "run_variant",
           "with_fields"]


def parse_run(arg: str | None) -> str | None:
  """The run named by a config argument ``'run=<name>'`` (None for no argument).

  >>> parse_run("run=center"), parse_run(None)
  ('center', None)
  """
  if not arg:
    return None
  key, _, value = arg.partition("=")
  if key != "run" or not value:
    raise ValueError(f"config argument {arg!r}: expected 'run=<name>', e.g. "
                     "--config=configs/default.py:run=sigma2r")
  return value


def with_fields(config: ml_collections.ConfigDict, fields: Mapping[str, Any]
                ) -> ml_collections.ConfigDict:
  """A copy of ``config`` with ``fields`` set: sections merged key by key, while ``kwargs``
  dicts and lists are replaced whole (list entries become ConfigDicts). The copy keeps the
  fields' types, so ``--config.x=y`` overrides still work on it.

  >>> with_fields(get_config(), {"optimizer": {"learning_rate": 0.1}}).optimizer.name
  'adam'
  """
  out = copy.deepcopy(config)

  def merge(dst: ml_collections.ConfigDict, src: Mapping[str, Any]) -> None:
    for key, value in src.items():
      if (isinstance(value, (Mapping, ml_collections.ConfigDict)) and key != "kwargs"
          and isinstance(dst.get(key), ml_collections.ConfigDict)):
        merge(dst[key], value)
      elif isinstance(value, (list, tuple)):
        dst[key] = type(value)(ml_collections.ConfigDict(to_plain(e)) if isinstance(
            e, (Mapping, ml_collections.ConfigDict)) else e for e in value)
      elif isinstance(value, (Mapping, ml_collections.ConfigDict)):
        dst[key] = ml_collections.ConfigDict(to_plain(value))
      else:
        dst[key] = value

  merge(out, fields)
  return out


def run_variant(config: ml_collections.ConfigDict, runs: Mapping[str, Mapping[str, Any]],
                arg: str | None) -> ml_collections.ConfigDict:
  """``config`` with the fields of the run ``arg`` names (``'run=<name>'``; None: the first)."""
  name = parse_run(arg) or next(iter(runs))
  if name not in runs:
    raise ValueError(f"unknown run {name!r}; this config's runs are {list(runs)}")
  return with_fields(config, runs[name])


def variants(table_config) -> Any:
  """``get_config(arg=None)`` for a config function whose result carries its runs in
  ``.runs`` (a table's rows): the selected run's complete config, without ``runs``."""

  def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = table_config()
    runs = to_plain(config.runs)
    del config["runs"]
    return run_variant(config, runs, arg)

  return get_config


def run_names(table_config) -> tuple[str, ...]:
  """The run names of a config function as :func:`variants` takes it, in table order."""
  return tuple(to_plain(table_config().runs))
