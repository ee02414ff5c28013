r"""Wall time and memory of :func:`disc_jax.metrics.retrieval_metrics` at scale.

Random class-clustered Gaussian features (class centres ~ N(0, s^2 I), points = centre +
N(0, I), float32), euclidean distance, k = 10, in three cases:

* ``10k_x_60k``: 10k queries against 60k references, D = 84, 10 classes (R ~ 6k).
* ``100k_x_100k_c100``: 100k points against themselves (``same_set``), D = 128, 100
  classes (R ~ 1k).
* ``100k_x_100k_c10``: the same with 10 classes (R ~ 10k), measured on a fraction of the
  queries (``--fraction_queries`` fresh queries against the 100k references, the same cost
  per query) and projected linearly to 100k queries.

Each case runs in its own subprocess, so its peak resident memory (``ru_maxrss``) is its
own; the XLA memory analysis of the compiled block function gives its temporaries.

  python -m experiments.benchmark_retrieval
  python -m experiments.benchmark_retrieval --cases 10k_x_60k --block_size 128

Prints one JSON line per case and a markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

CASES = {
    # name: (queries, references, dim, classes, same_set, centre scale)
    "10k_x_60k": (10_000, 60_000, 84, 10, False, 0.5),
    "100k_x_100k_c100": (100_000, 100_000, 128, 100, True, 0.5),
    "100k_x_100k_c10": (100_000, 100_000, 128, 10, True, 0.5),
}
PROJECTED = "100k_x_100k_c10"


def _rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_case(name: str, block_size: int, fraction_queries: int, seed: int = 0) -> dict:
  """Times one case in this process; returns its figures."""
  import numpy as np
  import jax
  import jax.numpy as jnp

  from disc_jax import retrieval
  from disc_jax.metrics import retrieval_metrics

  q, n, d, c, same_set, scale = CASES[name]
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((c, d), dtype=np.float32) * scale
  rl = rng.integers(0, c, n)
  rx = centres[rl] + rng.standard_normal((n, d), dtype=np.float32)
  measured_q = q
  if name == PROJECTED:  # fresh queries against the same references: same cost per query
    measured_q, same_set = fraction_queries, False
  if same_set:
    qx, ql = rx, rl
  else:
    ql = rng.integers(0, c, measured_q)
    qx = centres[ql] + rng.standard_normal((measured_q, d), dtype=np.float32)
  k = 10
  num_neighbors = max(int(np.bincount(rl).max()) - int(same_set), k)
  block = min(block_size, measured_q)
  padded = -(-measured_q // block) * block
  shapes = [jax.ShapeDtypeStruct(s, t) for s, t in
            [((padded, d), jnp.float32), ((padded,), jnp.int32), ((padded,), jnp.int32),
             ((n, d), jnp.float32), ((n,), jnp.float32), ((n,), jnp.int32)]]
  temp = retrieval._block_stats.lower(
      jnp.int32(0), *shapes, block=block, num_neighbors=num_neighbors, k=k,
      same_set=same_set, distance="euclidean").compile().memory_analysis().temp_size_in_bytes
  rss_before = _rss_mib()
  start = time.perf_counter()
  metrics = retrieval_metrics(qx, ql, rx, rl, same_set=same_set, k=k, block_size=block_size)
  wall = time.perf_counter() - start
  out = {"case": name, "queries": q, "measured_queries": measured_q, "references": n, "dim": d,
         "classes": c, "same_set": CASES[name][4], "block_size": block,
         "num_neighbors": num_neighbors, "wall_s": round(wall, 2),
         "queries_per_s": round(measured_q / wall, 1),
         "block_temp_mib": round(temp / 2**20, 1),
         "formula_temp_mib": round(block * (4 * n + 8 * num_neighbors) / 2**20, 1),
         "features_mib": round(4 * (measured_q + n) * d / 2**20, 1),
         "rss_before_mib": round(rss_before), "peak_rss_mib": round(_rss_mib()),
         "metrics": {key: round(v, 4) for key, v in metrics.items()}}
  if measured_q != q:
    out["projected_wall_s"] = round(wall * q / measured_q, 1)
  return out


def _markdown(records: list[dict], args: argparse.Namespace) -> str:
  lines = ["| case | Q x N, D, classes | block | K (max R) | wall | queries/s | "
           "block temps (XLA / formula) | peak RSS | P@1 / R-prec / MAP@R / kNN |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in records:
    wall = f"{r['wall_s']} s"
    if "projected_wall_s" in r:
      wall = (f"{r['wall_s']} s for {r['measured_queries']:,} queries; "
              f"**projected {r['projected_wall_s']} s** for {r['queries']:,}")
    m = r["metrics"]
    lines.append(
        f"| {r['case']} | {r['queries']:,} x {r['references']:,}, {r['dim']}, {r['classes']}"
        f"{' (same set)' if r['same_set'] else ''} | {r['block_size']} | "
        f"{r['num_neighbors']:,} | {wall} | {r['queries_per_s']:,} | "
        f"{r['block_temp_mib']} / {r['formula_temp_mib']} MiB | {r['peak_rss_mib']:,} MiB | "
        f"{m['precision_at_1']} / {m['r_precision']} / {m['map_at_r']} / "
        f"{m['knn_accuracy']} |")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--cases", default=",".join(CASES),
                      help=f"comma-separated subset of {', '.join(CASES)}")
  parser.add_argument("--block_size", type=int, default=256)
  parser.add_argument("--fraction_queries", type=int, default=10_000,
                      help=f"queries measured for {PROJECTED} (projected to 100k)")
  parser.add_argument("--one_case", help=argparse.SUPPRESS)  # worker mode
  args = parser.parse_args()
  if args.one_case:
    print(json.dumps(run_case(args.one_case, args.block_size, args.fraction_queries)))
    return
  import jax
  print(f"# jax {jax.__version__}, {jax.default_backend()}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, load {os.getloadavg()}", flush=True)
  records = []
  for name in args.cases.split(","):
    cmd = [sys.executable, "-m", "experiments.benchmark_retrieval", "--one_case", name,
           "--block_size", str(args.block_size), "--fraction_queries",
           str(args.fraction_queries)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    records.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps(records[-1]), flush=True)
  print(f"# load at end {os.getloadavg()}")
  print(_markdown(records, args))


if __name__ == "__main__":
  main()
