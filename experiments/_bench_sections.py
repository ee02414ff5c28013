"""The sections of ``experiments/benchmark.py``: each returns a JSON-able dict of figures.

* :func:`overhead` -- train-step time with each auxiliary loss / the CE-only step, per
  model, interleaved rounds; the CE step's achieved FLOP/s against a large matmul timed
  in the same rounds (the hardware ceiling); ITRA also per training sample seen.
* :func:`scaling` -- each loss alone (jitted value_and_grad): time, compiled temp/peak
  bytes vs one [B, B] float32 matrix, as B and D grow.
* :func:`versus_torch` -- LeNet-5 + CE + center loss (Wen update): disc_jax's step, its
  tuned variants (in-process and, for XLA flags, in worker subprocesses) and PyTorch's,
  interleaved; parameter counts and a same-weights loss check.
* :func:`accelerator` -- images/s of the CIFAR ResNet-18 step per loss in float32 and
  bfloat16 compute, and its model-FLOP utilisation against a matmul of the same dtype.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _bench as bm

MODELS: dict[str, dict[str, Any]] = {
    "lenet5": {"model": "lenet5", "batch": 256, "image_shape": (28, 28, 1), "kwargs": {}},
    "resnet18": {"model": "resnet18", "batch": 128, "image_shape": (32, 32, 3),
                 "kwargs": {"stem": "cifar"}},
}
# The default sweeps: B at the widest D, then D at the largest B (they share the corner).
BATCHES = (256, 1024, 4096, 8192)
DIMS = (64, 256, 1024, 2048)


def _benches(spec: Mapping[str, Any], loss_names: Sequence[str], dtype: str = "float32",
             batch: int | None = None) -> dict[str, bm.StepBench]:
  kwargs = dict(spec["kwargs"], **({"dtype": jnp.dtype(dtype)} if dtype != "float32" else {}))
  out = {}
  for name in ("ce", *loss_names):
    aux = [] if name == "ce" else [bm.AUX_ENTRIES[name]]
    out[name] = bm.train_step_bench(spec["model"], aux, batch_size=batch or spec["batch"],
                                    image_shape=spec["image_shape"], model_kwargs=kwargs,
                                    name=name)
  return out


def overhead(models: Mapping[str, Mapping[str, Any]] | None = None, *,
             losses: Sequence[str] = tuple(bm.AUX_ENTRIES), rounds: Mapping[str, int] | None = None,
             steps: Mapping[str, int] | None = None, matmul_n: int = 2048,
             dtype: str = "float32") -> dict[str, Any]:
  """Aux-loss overhead ratios and the CE step's FLOP/s fraction, per model.

  Besides the train steps, every round also times each loss alone (its jitted
  value_and_grad at the step's batch and feature width) and a [matmul_n]^2 matmul, so
  'loss alone / CE step' is a second, low-noise estimate of what the loss adds (the
  gradient it sends back through the network only adds to cotangents that exist anyway).
  """
  models = MODELS if models is None else models
  out: dict[str, Any] = {}
  for key, spec in models.items():
    benches = _benches(spec, losses, dtype)
    widths = bm.feature_widths(spec["model"], spec["image_shape"], spec["kwargs"])
    mm_run, mm_flops = bm.matmul_runner(matmul_n, jnp.dtype(dtype))
    runners = {k: b.run for k, b in benches.items()}
    dims = {name: widths[bm.AUX_ENTRIES[name].get("input", "features")] for name in losses}
    for name in losses:
      runners[f"alone:{name}"] = bm.loss_runner(name, spec["batch"], dims[name])
    runners["matmul"] = mm_run
    n = (steps or {}).get(key, 1)
    r = (rounds or {}).get(key, 3)
    times = bm.interleaved(runners, rounds=r, steps=n, warmup=1 if n == 1 else 2)
    mm_times = times.pop("matmul")
    alone = {name: times.pop(f"alone:{name}") for name in losses}
    per_sample = {k: b.batch["label"].shape[0] / b.samples_per_step for k, b in benches.items()}
    ce_flops = benches["ce"].flops
    fraction = [ce_flops / t / (mm_flops / m) for t, m in zip(times["ce"], mm_times)]
    mins = {k: min(v) for k, v in times.items()}
    out[key] = {
        "model": spec["model"], "batch": spec["batch"], "image_shape": list(spec["image_shape"]),
        "dtype": dtype, "rounds": r, "steps_per_round": n, "loss_dims": dims,
        "seconds": {k: bm.summary(v) for k, v in times.items()},
        "ratio_per_step": bm.ratio_summary(times, "ce"),
        "ratio_per_sample": bm.ratio_summary(times, "ce", per_sample),
        "ratio_of_min_times": {k: mins[k] / mins["ce"] for k in times},
        "loss_alone_seconds": {k: bm.summary(v) for k, v in alone.items()},
        "loss_alone_over_ce_step": bm.ratio_summary({**alone, "ce": times["ce"]}, "ce"),
        "samples_per_step": {k: b.samples_per_step for k, b in benches.items()},
        "flops": {k: b.flops for k, b in benches.items()},
        "ceiling": {"matmul_n": matmul_n, "matmul_flops_per_s": bm.summary(
            [mm_flops / m for m in mm_times]), "ce_step_flops_per_s": bm.summary(
                [ce_flops / t for t in times["ce"]]), "fraction": bm.summary(fraction)},
    }
  return out


def scaling(losses: Sequence[str] = tuple(bm.AUX_ENTRIES), *, batches: Sequence[int] = BATCHES,
            dims: Sequence[int] = DIMS, repeats: int = 2, budget_s: float = 20.0
            ) -> dict[str, Any]:
  """Each loss alone over the B sweep (at max D) and the D sweep (at max B)."""
  points = sorted({(b, max(dims)) for b in batches} | {(max(batches), d) for d in dims})
  rows = []
  for name in losses:
    for b, d in points:
      rows.append(bm.loss_scaling_point(name, b, d, repeats=repeats, budget_s=budget_s))
      print(f"  scaling {name} B={b} D={d}: {rows[-1]['seconds']:.3g} s", flush=True)
  return {"points": [list(p) for p in points], "rows": rows, "pairwise": list(bm.PAIRWISE)}


# ---------------------------------------------------------------- versus PyTorch

LENET_CENTER = {"model": "lenet5", "batch": 256, "image_shape": (28, 28, 1), "kwargs": {},
                "aux": ["center"]}
# Worker variants: XLA flags that only take effect in a fresh process.
XLA_FLAG_VARIANTS = {
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "onednn": "--xla_cpu_use_onednn=true",
    "fast_math": "--xla_cpu_enable_fast_math=true",
    "legacy_runtime": "--xla_cpu_use_thunk_runtime=false",
    "no_eigen_threads": "--xla_cpu_multi_thread_eigen=false",
}


def lenet_bench(spec: Mapping[str, Any]) -> bm.StepBench:
  """The disc_jax step of ``spec``."""
  return bm.train_step_bench(spec["model"], [bm.AUX_ENTRIES[a] for a in spec["aux"]],
                             batch_size=spec["batch"], image_shape=spec["image_shape"],
                             model_kwargs=spec["kwargs"], donate=spec.get("donate", True))


class WorkerRunner:
  """``run(n)`` in a subprocess (``benchmark.py --worker SPEC``) with its own XLA_FLAGS."""

  def __init__(self, spec: Mapping[str, Any], xla_flags: str):
    env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + xla_flags).strip())
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.benchmark", "--worker", json.dumps(spec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    self.info = json.loads(self._read())

  def _read(self) -> str:
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError(f"benchmark worker exited with code {self.proc.wait()}")
    return line

  def run(self, n: int) -> float:
    self.proc.stdin.write(f"{n}\n")
    self.proc.stdin.flush()
    return float(self._read())

  def close(self) -> None:
    self.proc.stdin.close()
    self.proc.wait(timeout=60)


def worker_main(spec_json: str) -> None:
  """The worker side: build the step, warm it up, then answer 'n' with seconds per step."""
  bench = lenet_bench(json.loads(spec_json))
  bench.run(2)
  print(json.dumps({"flops": bench.flops, "xla_flags": os.environ.get("XLA_FLAGS", "")}),
        flush=True)
  for line in sys.stdin:
    print(bench.run(int(line)), flush=True)


def _same_computation_check(bench: bm.StepBench, torch_step, steps: int = 3) -> dict[str, Any]:
  """Losses of disc_jax's and PyTorch's steps from the same weights, centers and batch.

  PyTorch gets disc_jax's initial weights and centers; both then take ``steps`` steps
  (Adam + Wen update) and report the loss before each update.
  """
  from experiments import _torch_lenet
  params = jax.device_get(bench.state.params)
  centers = np.asarray(jax.device_get(bench.state.loss_params["center"]["centers"]))
  _torch_lenet.load_jax_params(torch_step, params, centers)
  jax_losses, torch_losses = [], []
  for _ in range(steps):
    bench.state, metrics = bench.step(bench.state, bench.batch)
    jax_losses.append(float(metrics["loss"]))
    torch_losses.append(float(torch_step.step()))
  return {"disc_jax": jax_losses, "pytorch": torch_losses,
          "max_abs_diff": float(np.max(np.abs(np.subtract(jax_losses, torch_losses))))}


def versus_torch(*, batch: int = 256, rounds: int = 5, steps: int = 5,
                 flag_variants: Sequence[str] = (), threads: int | None = None
                 ) -> dict[str, Any]:
  """disc_jax vs PyTorch on the LeNet-5 + CE + center-loss step, plus JAX tuning variants."""
  from experiments import _torch_lenet
  threads = threads or bm.machine_info()["cores"]
  spec = {**LENET_CENTER, "batch": batch}
  base = lenet_bench(spec)
  img, lab = np.asarray(base.batch["image"]), np.asarray(base.batch["label"])
  torch_steps = {name: _torch_lenet.TorchLeNetStep(img, lab, threads=threads, channels_last=cl)
                 for name, cl in (("pytorch", False), ("pytorch_channels_last", True))}
  check = _same_computation_check(base, torch_steps["pytorch"])
  no_donate = lenet_bench({**spec, "donate": False})
  runners = {"disc_jax": base.run,
             **{k: t.run for k, t in torch_steps.items()},
             "disc_jax_no_donate": no_donate.run,
             # host sync after every step (what a loop reading metrics each step does)
             "disc_jax_sync_each_step": lambda n: sum(base.run(1) for _ in range(n)) / n}
  workers = {}
  for name in flag_variants:
    label = f"disc_jax_{name}"
    workers[label] = WorkerRunner(spec, XLA_FLAG_VARIANTS[name])
    runners[label] = workers[label].run
  try:
    times = bm.interleaved(runners, rounds=rounds, steps=steps, warmup=2)
  finally:
    for w in workers.values():
      w.close()
  return {
      "batch": batch, "threads": threads, "rounds": rounds, "steps": steps,
      "param_counts": {"disc_jax": bm.param_count(base.state.params),
                       "pytorch": torch_steps["pytorch"].num_params},
      "same_weights_losses": check, "torch": _torch_lenet.info(),
      "xla_flags": {k: XLA_FLAG_VARIANTS[k] for k in flag_variants},
      "flops": base.flops,
      "seconds": {k: bm.summary(v) for k, v in times.items()},
      # ratios[baseline][variant]: per-round time of the variant / the baseline's.
      "ratios": {b: bm.ratio_summary(times, b) for b in ("disc_jax", *torch_steps)},
  }


# ---------------------------------------------------------------- accelerators


def accelerator(*, dtypes: Sequence[str] = ("float32", "bfloat16"), batch: int = 128,
                losses: Sequence[str] = tuple(bm.AUX_ENTRIES), rounds: int = 3, steps: int = 10,
                matmul_n: int = 8192, model: str = "resnet18") -> dict[str, Any]:
  """Images/s of the CIFAR ResNet-18 step per loss and dtype, and its MFU vs a matmul."""
  spec = MODELS[model]
  out: dict[str, Any] = {"model": model, "batch": batch,
                         "device": bm.machine_info()["device"]}
  for dtype in dtypes:
    benches = _benches(spec, losses, dtype, batch=batch)
    mm_run, mm_flops = bm.matmul_runner(matmul_n, jnp.dtype(dtype))
    runners = {k: b.run for k, b in benches.items()}
    runners["matmul"] = mm_run
    times = bm.interleaved(runners, rounds=rounds, steps=steps, warmup=3)
    mm_rate = mm_flops / bm.median(times.pop("matmul"))
    out[dtype] = {k: {"images_per_s": batch / bm.median(t),
                      "samples_seen_per_s": benches[k].samples_per_step / bm.median(t),
                      "tflops_per_s": benches[k].flops / bm.median(t) / 1e12,
                      "mfu_vs_matmul": benches[k].flops / bm.median(t) / mm_rate}
                  for k, t in times.items()}
    out[dtype]["matmul_tflops_per_s"] = mm_rate / 1e12
  return out
