r"""The paper tables' sweeps on one GPU machine: many runs at once, inside a time limit.

  python -m experiments.gpu.paper_tables --data_dir /tmp/tfds --manual_dir .gpu_data \
      --deadline_s 470 --jobs 12 --logs gpu_logs

A GPU trains these small networks far faster than one process can feed it, so every
(table, run, seed) is its own ``experiments.reproduce --rows <run> --config.seed=<s>
--seeds 1`` process, ``--jobs`` of them at a time, in :data:`SWEEPS` order (the longest
runs first). Each trains in the same workdir the whole table's command uses, so when
every run of a table has finished, the table's own ``experiments.reproduce`` command
reads them all back and writes ``results/<name>.md`` and ``.json`` (its header names the
GPU). A table with a run missing is not written; its finished runs stay in
``--sweep_root`` and a later call with the same arguments resumes it.

At ``--deadline_s`` every run still training gets SIGTERM: it saves a checkpoint and
stops (exit 143). When the first runs to end all fail (a missing package, a broken GPU),
the rest are stopped at once and their logs' ends printed, so a broken machine costs
little of a lease. Exit status: 0 when every table was written, 1 otherwise.

``experiments/gpu/paper_tables.sh`` is the whole call on the device machine (wheels,
data, this module, packing the results).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from experiments import tables
from experiments._seeds import FINAL_METRICS, seed_workdir

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPRODUCE = ("-m", "experiments.reproduce")   # what trains a run / writes a table


@dataclasses.dataclass(frozen=True)
class Sweep:
  """One table: ``experiments.reproduce --config <config> --seeds <seeds> <args>``."""
  name: str           # results/<name>.md and <sweep_root>/<name>
  config: str
  seeds: int
  dataset: str        # the folder of --manual_dir holding its original files
  args: tuple[str, ...] = ()


SWEEPS = (
    # sigma2R Table 1 at a third of the paper's 300 epochs; one grain worker per run does
    # the augmentation (the batches do not depend on the number of workers).
    Sweep("sigma2r_table1_fashion_mnist_100ep", "configs/sigma2r/table1_fashion_mnist.py", 1,
          "fashion_mnist", ("--config.num_epochs=100", "--config.dataset.num_workers=1")),
    Sweep("itra_table1_fashion_mnist", "configs/itra/table1_fashion_mnist.py", 3, "fashion_mnist"),
    Sweep("compare_fashion_mnist", "configs/compare/fashion_mnist.py", 3, "fashion_mnist"),
    Sweep("compare_mnist", "configs/compare/mnist.py", 3, "mnist"),
    # sigma2R Fig. 4 at the paper's scale (32x32, 2,500 per class; generated data).
    Sweep("sigma2r_fig4_fuzzy_rgb", "configs/sigma2r/fig4_fuzzy_rgb.py", 1, "fuzzy_rgb"),
)


def table_args(sweep: Sweep, *, sweep_root: str, data_dir: str, manual_dir: str,
               extra: Sequence[str] = ()) -> list[str]:
  """The table's reproduce arguments (seeds and output excluded)."""
  return ["--config", sweep.config, "--sweep_dir", f"{sweep_root}/{sweep.name}", "--noprogress",
          f"--config.dataset.manual_dir={manual_dir}/{sweep.dataset}",
          f"--config.dataset.data_dir={data_dir}", *sweep.args, *extra]


def run_names(sweep: Sweep) -> list[str]:
  """The runs of the table, in the order reproduce trains them."""
  entry = tables.load(ROOT / sweep.config)
  return [r for r in entry.table.runs if r in entry.module.RUNS]


@dataclasses.dataclass
class Job:
  sweep: Sweep
  run: str
  seed: int
  argv: list[str]
  log: pathlib.Path
  proc: subprocess.Popen | None = None
  started: float = 0.0
  rc: int | None = None


def unfinished(sweep: Sweep, sweep_root: str) -> list[tuple[str, int]]:
  """(run, seed) of the table's runs without a ``final_metrics.json`` yet, in order."""
  sweep_dir = pathlib.Path(sweep_root) / sweep.name
  return [(run, seed) for run in run_names(sweep) for seed in range(sweep.seeds)
          if not (seed_workdir(sweep_dir, run, seed) / FINAL_METRICS).exists()]


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--data_dir", required=True, help="TFDS data_dir (prepared datasets)")
  p.add_argument("--manual_dir", required=True, help="folder of <dataset>/ original files")
  p.add_argument("--sweep_root", default="workdir/sweeps/gpu")
  p.add_argument("--logs", default="workdir/gpu_logs")
  p.add_argument("--results", default="results", help="where the tables are written")
  p.add_argument("--jobs", type=int, default=12, help="runs training at once")
  p.add_argument("--deadline_s", type=float, default=470.0)
  p.add_argument("--only", nargs="*", help="these sweep names (default: all of SWEEPS)")
  p.add_argument("--extra", action="append", default=[],
                 help="a reproduce flag added to every table, e.g. --extra=--config.num_steps=20 "
                      "for a quick check of the machinery (the headers record it)")
  args = p.parse_args(argv)
  t0 = time.time()
  sweeps = [s for s in SWEEPS if not args.only or s.name in args.only]
  logs = pathlib.Path(args.logs)
  logs.mkdir(parents=True, exist_ok=True)
  common = dict(sweep_root=args.sweep_root, data_dir=args.data_dir, manual_dir=args.manual_dir,
                extra=args.extra)
  queue: list[Job] = []
  for sweep in sweeps:
    base = table_args(sweep, **common)
    for run, seed in unfinished(sweep, args.sweep_root):
      queue.append(Job(sweep, run, seed, [
          sys.executable, *REPRODUCE, *base, "--rows", run, "--seeds", "1",
          f"--config.seed={seed}", "--out", f"{logs}/{sweep.name}.{run}.{seed}.md"],
          logs / f"{sweep.name}.{run}.{seed}.log"))
  total = len(queue)
  print(f"{total} runs to train in {len(sweeps)} tables, {args.jobs} at a time, "
        f"deadline {args.deadline_s:.0f} s", flush=True)
  env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
  running: list[Job] = []
  ended: list[Job] = []
  writing: dict[str, subprocess.Popen] = {}   # table name -> its reproduce read-back
  last_report = 0.0
  stamp = lambda: f"[{time.time() - t0:5.0f} s]"  # noqa: E731

  def write_table(sweep: Sweep) -> None:
    """Starts the table's own command, which reads every finished run back."""
    cmd = [sys.executable, *REPRODUCE, *table_args(sweep, **common),
           "--seeds", str(sweep.seeds), "--out", f"{args.results}/{sweep.name}.md"]
    print(f"{stamp()} writing {sweep.name}: {shlex.join(cmd[1:])}", flush=True)
    with open(logs / f"{sweep.name}.table.log", "w") as f:
      writing[sweep.name] = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                             cwd=ROOT)

  def complete(sweep: Sweep) -> bool:
    return not unfinished(sweep, args.sweep_root)

  def stop_all(reason: str) -> None:
    print(f"{stamp()} {reason}: stopping {len(running)} runs (each saves a checkpoint)", flush=True)
    for job in running:
      os.killpg(job.proc.pid, signal.SIGTERM)
    limit = time.time() + 25
    for job in running:
      try:
        job.rc = job.proc.wait(timeout=max(1.0, limit - time.time()))
      except subprocess.TimeoutExpired:
        os.killpg(job.proc.pid, signal.SIGKILL)
        job.rc = job.proc.wait()
      ended.append(job)
    running.clear()

  for sweep in sweeps:   # finished by an earlier call
    if complete(sweep) and not (ROOT / args.results / f"{sweep.name}.md").exists():
      write_table(sweep)
  while queue or running:
    for job in list(running):
      if job.proc.poll() is None:
        continue
      job.rc = job.proc.returncode
      running.remove(job)
      ended.append(job)
      print(f"{stamp()} {job.sweep.name} {job.run} seed {job.seed}: "
            f"{'done' if job.rc == 0 else f'FAILED (exit {job.rc})'} in "
            f"{time.time() - job.started:.0f} s", flush=True)
      if job.rc:
        print("\n".join("    " + line for line in
                        job.log.read_text(errors="replace").splitlines()[-8:]), flush=True)
      if job.sweep.name not in writing and complete(job.sweep):
        write_table(job.sweep)
    if len(ended) >= 3 and all(j.rc for j in ended[:3]):
      stop_all("the first 3 runs to end failed")
      queue.clear()
      break
    if time.time() - t0 > args.deadline_s:
      stop_all("deadline")
      break
    while queue and len(running) < args.jobs:
      job = queue.pop(0)
      job.started = time.time()
      with open(job.log, "w") as f:
        job.proc = subprocess.Popen(job.argv, stdout=f, stderr=subprocess.STDOUT, env=env,
                                    cwd=ROOT, start_new_session=True)
      running.append(job)
    if time.time() - last_report > 30:
      last_report = time.time()
      print(f"{stamp()} running {len(running)}, queued {len(queue)}, ended {len(ended)} of "
            f"{total} ({sum(1 for j in ended if j.rc)} not done)", flush=True)
    time.sleep(1.0)

  written = []
  for sweep in sweeps:
    proc = writing.get(sweep.name)
    missing = [] if proc else unfinished(sweep, args.sweep_root)
    if proc is None and not missing:
      print(f"{sweep.name}: written by an earlier call", flush=True)
      written.append(sweep.name)
      continue
    if proc is None:
      print(f"{sweep.name}: not written, {len(missing)} runs unfinished: {missing}", flush=True)
      continue
    try:
      rc = proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
      proc.kill()
      rc = proc.wait()
    print(f"{sweep.name}: {'written' if rc == 0 else f'FAILED (exit {rc})'}", flush=True)
    if rc == 0:
      written.append(sweep.name)
  (logs / "summary.json").write_text(json.dumps({
      "written": written, "wall_s": time.time() - t0,
      "runs": [{"table": j.sweep.name, "run": j.run, "seed": j.seed, "rc": j.rc,
                "started_s": j.started - t0} for j in ended]}, indent=1))
  return 0 if len(written) == len(sweeps) else 1


if __name__ == "__main__":
  sys.exit(main())
