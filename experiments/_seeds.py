"""Repeated runs: every run of a config for several seeds, resumable, one workdir each.

``run_seeds(configs, sweep_dir, seeds=[0, 1, 2])`` trains run ``r`` with seed ``s`` in
``<sweep_dir>/<r>/seed_<s>`` (:func:`seed_workdir`) through
:func:`~disc_jax.train.loop.train_and_evaluate`, so an interrupted sweep resumes where
it stopped when the same command is run again:

* a run whose ``final_metrics.json`` exists is finished: its metrics are read back and
  it is not touched (no re-evaluation);
* an unfinished run resumes from its latest checkpoint (train_and_evaluate's own
  resume);
* a workdir whose ``config.json`` differs from the run's config (other than in
  :data:`IGNORED_KEYS`: logging, checkpoint cadence, devices, data paths) is refused
  with a ValueError naming the differing keys, so stale results are never mixed into
  a table (the same comparison as the library's resume check,
  :func:`disc_jax.train.workdir.config_differences`, but stricter: here the training
  length must match too).

It returns ``{run name: [final metrics of each seed]}`` (seed order), ready for
``experiments.tables.comparison_markdown``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping, Sequence

import ml_collections
from absl import logging

from disc_jax.train.config import ConfigError
from disc_jax.train.logging import median_step_seconds
from disc_jax.train.workdir import (  # noqa: F401 - re-exported
    CONFIG_JSON, IGNORED_KEYS, ConfigMismatch, config_differences, flat_items, json_plain,
    read_json)

FINAL_METRICS = "final_metrics.json"

TrainFn = Callable[..., dict[str, float]]


def seed_workdir(sweep_dir: str | pathlib.Path, run: str, seed: int) -> pathlib.Path:
  """``<sweep_dir>/<run>/seed_<seed>`` (absolute).

  >>> seed_workdir("/tmp/sweep", "center", 2).as_posix()
  '/tmp/sweep/center/seed_2'
  """
  return pathlib.Path(sweep_dir).expanduser().absolute() / run / f"seed_{int(seed)}"


def _check_workdir(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> None:
  path = workdir / CONFIG_JSON
  if not path.exists():
    return
  saved = read_json(path)
  if not saved:
    raise ConfigMismatch(f"{path} does not read back, so the run in {workdir} cannot be "
                         "checked against this sweep's config; restore it, or delete that "
                         "workdir to start the run again")
  diff = config_differences(saved, config)
  if diff:
    raise ConfigMismatch(
        f"{workdir} holds a run of a different config (differs in {diff[:8]}"
        f"{' ...' if len(diff) > 8 else ''}); pass another sweep directory or delete that "
        "workdir to start it again")


def finished_metrics(workdir: str | pathlib.Path) -> dict[str, float] | None:
  """The saved final metrics of a finished run, or None if it has not finished (or they do
  not read back: the run's final evaluation is then redone from its last checkpoint)."""
  path = pathlib.Path(workdir) / FINAL_METRICS
  if not path.exists():
    return None
  metrics = read_json(path)
  if not metrics:
    logging.warning("%s does not read back; the run's final evaluation is redone", path)
  return metrics or None


def run_seeds(configs: Mapping[str, ml_collections.ConfigDict], sweep_dir: str | pathlib.Path,
              *, seeds: Sequence[int], runs: Sequence[str] | None = None, progress: bool = True,
              train_fn: TrainFn | None = None, log: Callable[[str], None] = print
              ) -> dict[str, list[dict[str, float]]]:
  """Trains (or reads back) every requested run for every seed; see the module docstring.

  Args:
    configs: ``{run name: config}`` (:func:`experiments._cli.run_configs`).
    sweep_dir: the sweep's folder (one subfolder per run and seed).
    seeds: the values of ``config.seed`` to train with.
    runs: the run names to do (None: all of ``configs``); unknown names raise.
    progress: show train_and_evaluate's progress bar.
    train_fn: ``train_fn(config, workdir, progress=...) -> metrics``; defaults to
      :func:`disc_jax.train.loop.train_and_evaluate` (tests pass a fake).
    log: where one line per run goes (which seed, trained or read back).
  """
  if not seeds:
    raise ValueError("seeds must name at least one seed, e.g. seeds=[0, 1, 2]")
  if len(set(seeds)) != len(seeds):
    raise ValueError(f"seeds must be distinct, got {list(seeds)}")
  names = list(configs) if runs is None else list(runs)
  unknown = [n for n in names if n not in configs]
  if unknown:
    raise ConfigError(f"unknown run name(s) {unknown} (--rows); this config's runs are "
                      f"{list(configs)}")
  if train_fn is None:
    from disc_jax.train import train_and_evaluate as train_fn  # noqa: PLC0415
  # Seeds outermost: an interrupted sweep has every run at its first seeds, so a table can
  # be written from fewer seeds (same command, smaller --seeds) without losing rows.
  results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
  for seed in seeds:
    for name in names:
      run_config = configs[name].copy_and_resolve_references()
      run_config.seed = int(seed)
      workdir = seed_workdir(sweep_dir, name, seed)
      _check_workdir(workdir, run_config)
      metrics = finished_metrics(workdir)
      if metrics is None:
        log(f"[{name} seed {seed}] training in {workdir}")
        metrics = train_fn(run_config, workdir, progress=progress)
      else:
        log(f"[{name} seed {seed}] finished earlier: read {workdir / FINAL_METRICS}")
      metrics = dict(metrics)
      # Runs finished before the loop reported it: read it back from their log.
      step_s = None if "median_step_s" in metrics else median_step_seconds(workdir)
      if step_s is not None:
        metrics.setdefault("median_step_s", step_s)
      results[name].append(metrics)
  return results
