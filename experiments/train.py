r"""Train and evaluate: ``python -m experiments.train --config CONFIG --workdir DIR``.

``--config=file.py:run=<name>`` trains that run in DIR. A config file with several runs
(``RUNS``, e.g. ``configs/default.py``) given without ``:run=`` trains each in
``DIR/<run>`` and writes ``DIR/summary.{json,md}`` (one row per run) and
``DIR/features_side_by_side.png`` (the runs' training features, σ²R Fig. 4).
Overrides use ml_collections syntax (``--config.num_epochs=3``) and apply to every run.
Running the same command again resumes from the latest checkpoints. Exit status: 0 done,
1 non-finite loss or an error explained in one paragraph (disk full, read-only or busy
workdir, changed config, corrupt checkpoint or dataset; traceback in ``DIR/error.log``, or
on stderr with ``--verbosity=1``), 128 + signal number after SIGTERM/SIGINT.

  python -m experiments.train --config configs/default.py --workdir /tmp/disc_default
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from disc_jax import plots
from disc_jax.train import train_and_evaluate
from disc_jax.train import workdir as workdir_lib
from experiments._cli import exit_on_stop, parse_flags, run_configs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, logs and results.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flags_as_required(["config", "workdir"])

SUMMARY_KEYS = ("accuracy", "cross_entropy", "intra_class_std", "train/intra_class_std",
                "nearest_centroid_accuracy/train", "fisher_score", "train_time_s")


def summary_markdown(results: dict[str, dict[str, float]]) -> str:
  """A markdown table with one row per run and the SUMMARY_KEYS columns."""
  def fmt(v):
    return "-" if v is None else "nan" if isinstance(v, float) and math.isnan(v) else f"{v:.4f}"

  rows = [f"| {name} | " + " | ".join(fmt(m.get(k)) for k in SUMMARY_KEYS) + " |"
          for name, m in results.items()]
  return "\n".join(["| run | " + " | ".join(SUMMARY_KEYS) + " |",
                    "|---" * (len(SUMMARY_KEYS) + 1) + "|", *rows]) + "\n"


def side_by_side(configs, workdir: pathlib.Path, progress: bool) -> dict[str, dict[str, float]]:
  """Trains every run in ``workdir/<run>``; writes the summary and the joint feature plot."""
  results, panels, class_names = {}, {}, None
  for name, config in configs.items():
    results[name] = train_and_evaluate(config, workdir / name, progress=progress)
    if (workdir / name / "features.npz").exists():
      with np.load(workdir / name / "features.npz") as f:
        panels[name] = (f["train_features"], f["train_labels"])
        class_names = [str(n) for n in f["class_names"]] or None
  (workdir / "summary.json").write_text(json.dumps(results, indent=2, sort_keys=True))
  (workdir / "summary.md").write_text(summary_markdown(results))
  first = next(iter(configs.values()))
  if panels and first.final_eval.plot:
    plots.scatter_runs_2d(panels, workdir / "features_side_by_side.png",
                          title=f"{first.model.name} on {first.dataset.name}: training features",
                          class_names=class_names)
  return results


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
  with exit_on_stop():
    workdir = workdir_lib.local_path(_WORKDIR.value)
  with exit_on_stop(workdir):
    configs = run_configs(flags.FLAGS["config"])
    if len(configs) == 1:
      results = {name: train_and_evaluate(c, workdir, progress=_PROGRESS.value)
                 for name, c in configs.items()}
    else:
      results = side_by_side(configs, workdir, _PROGRESS.value)
  print(summary_markdown(results))


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
