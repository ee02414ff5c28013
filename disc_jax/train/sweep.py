"""Side-by-side jobs: ``config.runs`` -> one training run each, a summary and a joint plot.

A config with a non-empty ``runs`` (name -> partial config; make it a
``ConfigDict(..., sort_keys=False)`` to keep the panel order) trains every run in
``<workdir>/<name>`` (each resumable on its own: a finished run is only re-evaluated)
and writes ``<workdir>/summary.json``, ``<workdir>/summary.md`` (one row per run) and
``<workdir>/features_side_by_side.png`` (the runs' training-set features in one figure,
σ²R Fig. 4). A config without runs is a single run in ``workdir``.
"""

from __future__ import annotations

import json
import math
import pathlib

import ml_collections
import numpy as np

from disc_jax import plots
from disc_jax.train.config import merge, to_plain, validate
from disc_jax.train.loop import initialize_distributed, train_and_evaluate

SUMMARY_KEYS = ("accuracy", "cross_entropy", "intra_class_std", "train/intra_class_std",
                "nearest_centroid_accuracy/train", "fisher_score", "train_time_s")


def _fmt(value) -> str:
  if value is None:
    return "-"
  return "nan" if isinstance(value, float) and math.isnan(value) else f"{value:.4f}"


def summary_markdown(results: dict[str, dict[str, float]]) -> str:
  """A markdown table with one row per run and the SUMMARY_KEYS columns."""
  head = "| run | " + " | ".join(SUMMARY_KEYS) + " |"
  rule = "|---" * (len(SUMMARY_KEYS) + 1) + "|"
  rows = [f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in SUMMARY_KEYS) + " |"
          for name, m in results.items()]
  return "\n".join([head, rule, *rows]) + "\n"


def run_all(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
            progress: bool = True) -> dict[str, dict[str, float]]:
  """Trains ``config`` (or each of ``config.runs``); returns ``{run name: final metrics}``."""
  initialize_distributed(config)
  validate(config)
  workdir = pathlib.Path(workdir).expanduser().absolute()
  if not config.runs:
    return {"run": train_and_evaluate(config, workdir, progress=progress)}
  results, panels, class_names = {}, {}, None
  for name, partial in to_plain(config.runs).items():
    results[name] = train_and_evaluate(merge(config, partial), workdir / name, progress=progress)
    feats = workdir / name / "features.npz"
    if feats.exists():
      with np.load(feats) as f:
        panels[name] = (f["train_features"], f["train_labels"])
        class_names = [str(n) for n in f["class_names"]] or None
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / "summary.json").write_text(json.dumps(results, indent=2, sort_keys=True))
  (workdir / "summary.md").write_text(summary_markdown(results))
  if panels and config.final_eval.plot:
    plots.scatter_runs_2d(panels, workdir / "features_side_by_side.png",
                          title=f"{config.model.name} on {config.dataset.name}: training features",
                          class_names=class_names)
  return results
