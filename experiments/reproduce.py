r"""Reproduce one paper table: every row for N seeds, then paper vs ours in markdown.

  python -m experiments.reproduce --config configs/intra_class_variance/table1_2_mnist.py \
      --seeds 3 --out results/intra_class_variance_mnist.md \
      --config.dataset.manual_dir=/work/shared/data/mnist

Each (run, seed) trains in ``<sweep_dir>/<run>/seed_<s>`` (default sweep dir:
``workdir/sweeps/<paper>/<table>``), so running the same command again resumes an
interrupted sweep: finished runs are read back from their ``final_metrics.json``,
unfinished ones resume from their checkpoints (:mod:`experiments._seeds`). Seeds are
``config.seed, config.seed + 1, ...``. ``--rows`` restricts the sweep to some runs
(e.g. the CPU-feasible ones); ``--row_seeds=ce_2d=3,icv0p05_2d=3`` gives some runs more
(or fewer) seeds than ``--seeds`` (a table with one seed per cell and several for the
cells whose spread decides the verdict); ``--config.x=y`` overrides any config field (e.g. a
shorter ``--config.num_epochs`` for a reduced-budget run -- the header records it).

Writes ``--out`` (markdown: a header naming the command, git commit, seeds, wall time
and device, then :func:`experiments.tables.comparison_markdown`) and, beside it, a
``.json`` with every run's per-seed final metrics.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import jax
import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from configs.paper import Table
from disc_jax.train.config import ConfigError
from experiments import tables
from experiments._cli import exit_on_stop, load_module, parse_flags, run_configs
from experiments._seeds import TrainFn, config_differences, flat_items, json_plain, run_seeds


def define_flags() -> None:
  """The command-line flags (defined only when run as a program, so importing is free)."""
  config_flags.DEFINE_config_file("config", None, "A table config: configs/<paper>/<table>.py.",
                                  lock_config=True)
  flags.DEFINE_integer("seeds", 3, "Number of seeds per run (config.seed, config.seed+1, ...).")
  flags.DEFINE_string("out", None, "Markdown output (default results/<paper>_<table>.md).")
  flags.DEFINE_string("sweep_dir", None,
                      "Folder of the runs (default workdir/sweeps/<paper>/<table>).")
  flags.DEFINE_list("rows", None, "Only these config runs (default: every run the table needs).")
  flags.DEFINE_list("row_seeds", None,
                    "run=N entries: these runs get N seeds instead of --seeds (they are "
                    "trained after every run's first --seeds seeds).")
  flags.DEFINE_bool("progress", True, "Show progress bars.")
  flags.DEFINE_string("compilation_cache", "workdir/xla_cache",
                      "JAX's persistent compilation cache: the seeds of a run, and a resumed "
                      "sweep, reuse the compiled steps instead of compiling again ('' = off).")
  flags.mark_flags_as_required(["config"])


COMMIT_ENV = "DISC_JAX_COMMIT"


def git_commit() -> str:
  """``HEAD``'s hash, with '+dirty' when the working tree has uncommitted changes.

  ``$DISC_JAX_COMMIT``, when set, is used instead, marked as stated: a copy of the tree
  sent elsewhere (a GPU machine) may have no ``.git``, or an older one whose HEAD is not
  the tree's commit, so there the caller states the commit it copied.
  """
  stated = os.environ.get(COMMIT_ENV, "").strip()
  if stated:
    return f"{stated} (stated in ${COMMIT_ENV} by the caller that copied the tree)"
  root = pathlib.Path(__file__).resolve().parents[1]
  try:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown (not a git checkout)"
  return head + ("+dirty" if dirty else "")


def overrides(defaults: ml_collections.ConfigDict, config: ml_collections.ConfigDict
              ) -> list[str]:
  """'key: table value -> run value' for each field the command changed (what a reduced
  budget changes is stated in the table's header, not only in the command)."""
  saved = json_plain(defaults)   # as a run's config.json stores it
  want, got = dict(flat_items(json_plain(config))), dict(flat_items(saved))
  return [f"{k}: {got.get(k, '-')} -> {want.get(k, '-')}"
          for k in config_differences(saved, config)]


def parse_row_seeds(entries: Sequence[str] | None, base: int) -> dict[str, list[int]]:
  """``["ce_2d=3", ...]`` -> ``{"ce_2d": [base, base + 1, base + 2], ...}``."""
  out = {}
  for entry in entries or ():
    name, sep, n = entry.partition("=")
    if not sep or not n.strip().isdigit() or int(n) < 1:
      raise ConfigError(f"--row_seeds entry {entry!r} is not run=N with N >= 1, e.g. ce_2d=3")
    out[name.strip()] = [base + i for i in range(int(n))]
  return out


def header(*, title: str, command: str, commit: str, seeds: list[int], wall_s: float,
           train_s: float, device: str, changed: Sequence[str] = (),
           row_seeds: Mapping[str, Sequence[int]] | None = None) -> str:
  """The provenance lines above a results table."""
  seed_line = f"- seeds: {', '.join(map(str, seeds))}"
  if row_seeds:
    seed_line += " (" + "; ".join(f"{name}: {', '.join(map(str, s))}"
                                  for name, s in row_seeds.items()) + ")"
  return "\n".join([
      f"# {title}", "",
      f"- command: `{command}`",
      f"- git commit: `{commit}`",
      f"- changed from the table config by the command: "
      f"{'; '.join(f'`{c}`' for c in changed) if changed else 'nothing (the paper protocol)'}",
      seed_line,
      f"- wall time of this invocation: {wall_s / 3600:.2f} h; summed training time of the "
      f"runs: {train_s / 3600:.2f} h",
      f"- device: {device}",
      f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}", "", ""])


def reproduce(table: Table, configs: Mapping[str, ml_collections.ConfigDict], *,
              seeds: Sequence[int],
              out: str | pathlib.Path, sweep_dir: str | pathlib.Path,
              runs: Sequence[str] | None = None,
              row_seeds: Mapping[str, Sequence[int]] | None = None,
              progress: bool = True, command: str = "",
              log: Callable[[str], None] = print, train_fn: TrainFn | None = None,
              defaults: Mapping[str, ml_collections.ConfigDict] | None = None) -> str:
  """Runs (or reads back) ``table``'s runs for ``seeds``; writes ``out`` (.md) and its .json.

  ``configs``: ``{run name: config}``; ``runs`` defaults to every run the table needs;
  ``row_seeds``: ``{run: its seeds}`` for runs whose seeds differ from ``seeds`` (trained
  after every run's ``seeds``, so an interrupted sweep has every row first);
  ``train_fn`` as in :func:`experiments._seeds.run_seeds`; ``defaults``: the run configs
  as the file writes them, to list in the header what the command changed. Returns the
  markdown text.
  """
  start = time.time()
  out = pathlib.Path(out)
  runs = list(runs) if runs else [r for r in table.runs if r in configs]
  row_seeds = {name: list(s) for name, s in (row_seeds or {}).items()}
  unknown = sorted(set(row_seeds) - set(runs))
  if unknown:
    raise ConfigError(f"--row_seeds names run(s) {unknown} outside this sweep's runs {runs}")
  first = {name: [s for s in seeds if s in row_seeds.get(name, seeds)] for name in runs}
  results = {}
  for name_seeds in (first, {n: [s for s in row_seeds[n] if s not in first[n]] for n in row_seeds}):
    for seed_list in sorted({tuple(v) for v in name_seeds.values() if v}):
      group = [n for n in runs if tuple(name_seeds.get(n, ())) == seed_list]
      for name, per_seed in run_seeds(configs, sweep_dir, seeds=list(seed_list), runs=group,
                                      progress=progress, log=log, train_fn=train_fn).items():
        results.setdefault(name, []).extend(per_seed)
  results = {name: results.get(name, []) for name in runs}
  train_s = sum(m.get("train_time_s", 0.0) for per_seed in results.values() for m in per_seed)
  device = f"{jax.device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()})"
  text = header(title=f"{table.paper}, {table.table}: {table.title}", command=command, commit=git_commit(),
                seeds=list(seeds), wall_s=time.time() - start, train_s=train_s, device=device,
                row_seeds=row_seeds,
                changed=overrides(defaults[runs[0]], configs[runs[0]]) if defaults else ())
  text += tables.comparison_markdown(table, results)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(text)
  out.with_suffix(".json").write_text(json.dumps(
      {"command": command, "seeds": list(seeds), "row_seeds": row_seeds,
       "sweep_dir": str(pathlib.Path(sweep_dir).absolute()), "results": results},
      indent=2, sort_keys=True))
  return text


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  f = flags.FLAGS
  if f.compilation_cache:
    jax.config.update("jax_compilation_cache_dir", f.compilation_cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  path = config_flags.get_config_filename(f["config"]).partition(":")[0]
  with exit_on_stop():
    entry = tables.load(path)
    configs = run_configs(f["config"])
    defaults = {name: load_module(path).get_config(f"run={name}") for name in configs}
    row_seeds = parse_row_seeds(f.row_seeds, int(f.config.seed))
  seeds = [int(f.config.seed) + i for i in range(f.seeds)]
  sweep_dir = f.sweep_dir or f"workdir/sweeps/{entry.name}"
  with exit_on_stop(sweep_dir):
    text = reproduce(entry.table, configs, seeds=seeds,
                     out=f.out or f"results/{entry.name.replace('/', '_')}.md",
                     sweep_dir=sweep_dir, runs=f.rows,
                     row_seeds=row_seeds,
                     progress=f.progress, defaults=defaults,
                     command="python -m experiments.reproduce " + shlex.join(sys.argv[1:]))
  print(text)


if __name__ == "__main__":
  define_flags()
  app.run(main, flags_parser=parse_flags)
