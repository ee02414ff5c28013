r"""Benchmarks: what each loss costs, how it scales, and disc_jax vs PyTorch.

  python -m experiments.benchmark                        # overhead, scaling, torch (CPU)
  python -m experiments.benchmark --sections overhead --rounds 3
  python -m experiments.benchmark --sections gpu         # on a machine with a GPU

Sections (``--sections``, comma-separated): ``overhead`` (train-step time with each aux
loss / CE-only, LeNet-5 and CIFAR ResNet-18, interleaved rounds, plus the CE step's
FLOP/s as a fraction of a matmul's), ``scaling`` (each loss alone as B and D grow, with
compiled memory), ``torch`` (LeNet-5 + CE + center loss against PyTorch, needs the
``benchmark`` extra: ``pip install -e .[benchmark]``) and ``gpu`` (images/s and MFU of the
ResNet-18 step in float32 and bfloat16). Each section's figures, command, machine and
load average go to ``results/benchmarks.json`` (merged with the sections already there)
and the whole of ``results/benchmarks.md`` is rendered from it (plus
``results/benchmarks_notes.md`` if present). Nothing here assumes a CPU.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import sys
import time

import jax

from experiments import _bench as bm
from experiments import _bench_report, _bench_sections

SECTIONS = ("overhead", "scaling", "torch", "gpu")


def _ints(text: str) -> tuple[int, ...]:
  return tuple(int(v) for v in text.split(",") if v)


def _names(text: str) -> tuple[str, ...]:
  return tuple(v for v in text.split(",") if v)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--sections", default="overhead,scaling,torch", type=_names,
                 help=f"comma-separated subset of {SECTIONS}")
  p.add_argument("--out", default="results/benchmarks.md", type=pathlib.Path)
  p.add_argument("--models", default="lenet5,resnet18", type=_names)
  p.add_argument("--losses", default=",".join(bm.AUX_ENTRIES), type=_names)
  p.add_argument("--rounds", default=3, type=int, help="interleaved rounds (gpu)")
  p.add_argument("--lenet_rounds", default=30, type=int, help="interleaved rounds, LeNet-5")
  p.add_argument("--resnet_rounds", default=5, type=int, help="interleaved rounds, ResNet-18")
  p.add_argument("--lenet_steps", default=1, type=int, help="steps per round, LeNet-5")
  p.add_argument("--resnet_steps", default=1, type=int, help="steps per round, ResNet-18")
  p.add_argument("--dtype", default="float32", help="compute dtype of the overhead models")
  p.add_argument("--batches", default=_bench_sections.BATCHES, type=_ints)
  p.add_argument("--dims", default=_bench_sections.DIMS, type=_ints)
  p.add_argument("--scaling_repeats", default=2, type=int)
  p.add_argument("--torch_rounds", default=7, type=int)
  p.add_argument("--torch_steps", default=5, type=int)
  p.add_argument("--xla_flag_variants", default="xnnpack", type=_names,
                 help=f"subset of {tuple(_bench_sections.XLA_FLAG_VARIANTS)} (torch section)")
  p.add_argument("--gpu_steps", default=10, type=int)
  p.add_argument("--wait_load", default=0.0, type=float,
                 help="before starting, wait until the 1-min load average is below this")
  p.add_argument("--wait_max_s", default=1200.0, type=float)
  p.add_argument("--render_only", action="store_true",
                 help="re-render the markdown from the JSON (e.g. after editing the notes)")
  p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  bad = set(args.sections) - set(SECTIONS)
  if bad:
    p.error(f"unknown sections {sorted(bad)}; valid: {SECTIONS}")
  if "torch" in args.sections and not args.render_only and jax.default_backend() != "cpu":
    p.error("the torch section compares CPU builds (PyTorch CPU vs XLA:CPU); run it with "
            "JAX_PLATFORMS=cpu, or leave it out on an accelerator")
  bad = set(args.models) - set(_bench_sections.MODELS)
  if bad:
    p.error(f"unknown models {sorted(bad)}; valid: {sorted(_bench_sections.MODELS)}")
  bad = set(args.losses) - set(bm.AUX_ENTRIES)
  if bad:
    p.error(f"unknown losses {sorted(bad)}; valid: {sorted(bm.AUX_ENTRIES)}")
  return args


def wait_for_load(threshold: float, max_s: float) -> float:
  """Sleeps until the 1-minute load average is below ``threshold`` (at most ``max_s``)."""
  t0 = time.time()
  while threshold > 0 and time.time() - t0 < max_s:
    load = bm.load_average()
    if load is None or load[0] < threshold:
      break
    print(f"load average {load}: waiting for < {threshold}", flush=True)
    time.sleep(30)
  return time.time() - t0


def run_section(name: str, args: argparse.Namespace):
  s = _bench_sections
  if name == "overhead":
    models = {k: s.MODELS[k] for k in args.models}
    return s.overhead(models, losses=args.losses, dtype=args.dtype,
                      rounds={"lenet5": args.lenet_rounds, "resnet18": args.resnet_rounds},
                      steps={"lenet5": args.lenet_steps, "resnet18": args.resnet_steps})
  if name == "scaling":
    return s.scaling(args.losses, batches=args.batches, dims=args.dims,
                     repeats=args.scaling_repeats)
  if name == "torch":
    return s.versus_torch(rounds=args.torch_rounds, steps=args.torch_steps,
                          flag_variants=args.xla_flag_variants)
  return s.accelerator(losses=args.losses, rounds=args.rounds, steps=args.gpu_steps)


def main(argv: list[str] | None = None) -> dict:
  args = parse_args(argv)
  if args.worker is not None:
    _bench_sections.worker_main(args.worker)
    return {}
  command = "python -m experiments.benchmark " + " ".join(
      shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
  json_path = args.out.with_suffix(".json")
  notes = args.out.with_name(args.out.stem + "_notes.md")
  records = json.loads(json_path.read_text()) if json_path.exists() else {}
  if args.render_only:
    args.out.write_text(_bench_report.render(records, notes.read_text() if notes.exists() else ""))
    return records
  waited = wait_for_load(args.wait_load, args.wait_max_s)
  # The overhead section is measured and recorded per model ('overhead_<model>').
  jobs = [(f"overhead_{m}", "overhead", m) if name == "overhead" else (name, name, None)
          for name in args.sections for m in (args.models if name == "overhead" else [None])]
  for key, name, model in jobs:
    machine = bm.machine_info()
    t0 = time.time()
    print(f"section {key} (load {machine['load_avg']})", flush=True)
    if model is not None:
      args.models = (model,)
    data = run_section(name, args)
    record = {"command": command, "machine": machine, "wall_s": time.time() - t0,
              "load_end": bm.load_average(), "waited_for_load_s": waited, "data": data}
    if name == "torch":
      record["torch"] = data["torch"]["torch"]
    records[key] = record
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(records, indent=1, default=float))
    args.out.write_text(_bench_report.render(
        records, notes.read_text() if notes.exists() else ""))
    print(f"wrote {args.out} ({key}: {record['wall_s']:.0f} s)", flush=True)
  return records


if __name__ == "__main__":
  main()
