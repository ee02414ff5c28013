"""Timing helpers for ``experiments/benchmark.py``: train steps, interleaved runs, loss scaling.

Everything here measures *ratios inside one run*: variants are timed round-robin
(:func:`interleaved`), so a load change on a shared machine hits every variant of a
round alike, and each round gives one ratio per variant (:func:`ratio_summary`).
Nothing assumes a CPU: arrays go to ``jax.devices()[0]``, timings block on the outputs
(:func:`jax.block_until_ready`) and memory comes from the compiled executable
(``Compiled.memory_analysis()``), so the same code runs on a GPU.

* :func:`train_step_bench` -- the real ``disc_jax.train`` step (``make_train_step``,
  ``create_state``, the config schema's aux-loss entries), jitted with the state donated,
  on a synthetic batch; ``run(n)`` does ``n`` steps and returns seconds per step.
* :func:`loss_case` -- one loss alone as a jitted ``value_and_grad`` on random inputs
  (used for the batch-size / feature-width scaling table).
* :func:`compiled_stats` -- FLOPs (XLA cost analysis) and temp/argument/output bytes.
* :func:`matmul_runner` -- [n, n] matmuls to time in the same rounds (the hardware ceiling).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from disc_jax import losses, models
from disc_jax.train import config as config_lib, objective
from disc_jax.train import state as state_lib
from disc_jax.train import step as step_lib

# The auxiliary losses of disc_jax.train.objective, as benchmarked: the config entry fields.
# Gini/KL read the last conv maps as in the Gini paper; center loss uses Wen's update.
AUX_ENTRIES: dict[str, dict[str, Any]] = {
    "gini": {"name": "gini", "input": "last_conv"},
    "kl": {"name": "kl", "input": "last_conv"},
    "group_softmax": {"name": "group_softmax"},
    "itra": {"name": "itra"},
    "sigma2r": {"name": "sigma2r"},
    "center": {"name": "center", "center_update": "wen"},
    "intra_class_variance": {"name": "intra_class_variance"},
    "snnl": {"name": "snnl"},
}
PAIRWISE = ("itra", "sigma2r", "snnl")


def machine_info() -> dict[str, Any]:
  """CPU model, core count, devices, versions and the load average (for the report)."""
  cpu = platform.processor() or platform.machine()
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                 cpu)
  except OSError:
    pass
  dev = jax.devices()[0]
  return {
      "cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
      else os.cpu_count(), "backend": jax.default_backend(),
      "device": getattr(dev, "device_kind", str(dev)), "num_devices": jax.device_count(),
      "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_avg": load_average()}


def load_average() -> tuple[float, float, float] | None:
  try:
    return tuple(round(v, 2) for v in os.getloadavg())
  except OSError:
    return None


@dataclasses.dataclass
class StepBench:
  """A compiled train step with its own (donated, threaded) state and a fixed batch.

  ``step`` is the ahead-of-time compiled executable (``jit(...).lower(...).compile()``),
  so its XLA cost analysis (``flops``) and memory figures come without a second compile.
  """

  name: str
  step: Any
  state: Any
  batch: Mapping[str, jax.Array]
  samples_per_step: int

  def run(self, n: int) -> float:
    """Runs ``n`` steps back to back (no host sync between them); seconds per step."""
    t0 = time.perf_counter()
    metrics = None
    for _ in range(n):
      self.state, metrics = self.step(self.state, self.batch)
    jax.block_until_ready((self.state, metrics))
    return (time.perf_counter() - t0) / n

  @property
  def stats(self) -> dict[str, float]:
    return compiled_stats(self.step)

  @property
  def flops(self) -> float:
    """XLA's FLOP count of one step."""
    return self.stats["flops"]


def synthetic_batch(batch_size: int, image_shape: Sequence[int], num_classes: int, *,
                    second_batch: bool = False, seed: int = 0) -> dict[str, jax.Array]:
  """Normal images and uniform labels (plus ITRA's independent second batch)."""
  rng = np.random.default_rng(seed)

  def draw():
    return (rng.standard_normal((batch_size, *image_shape), np.float32),
            rng.integers(0, num_classes, batch_size).astype(np.int32))

  image, label = draw()
  out = {"image": image, "label": label}
  if second_batch:
    out["image2"], out["label2"] = draw()
  return jax.device_put(out, jax.devices()[0])


def train_step_bench(model_name: str, aux: Sequence[Mapping[str, Any]] = (), *,
                     batch_size: int, image_shape: Sequence[int], num_classes: int = 10,
                     model_kwargs: Mapping[str, Any] | None = None, learning_rate: float = 1e-3,
                     seed: int = 0, name: str | None = None, donate: bool = True) -> StepBench:
  """The ``disc_jax.train`` step for ``model_name`` + softmax CE + ``aux`` terms, Adam.

  ``aux`` holds config entries (``aux_loss`` fields, e.g. ``AUX_ENTRIES['itra']``).
  The step is ``jax.jit(make_train_step(...), donate_argnums=0)`` on one device
  (``donate=False``: without donating the state, for comparison).
  """
  config = config_lib.get_config()
  config.optimizer = config_lib.optimizer("adam", learning_rate)
  config.aux_losses = [config_lib.aux_loss(**dict(e)) for e in aux]
  tx, schedule = state_lib.make_tx(config, steps_per_epoch=1000, total_steps=10**6)
  model = models.get_model(model_name, num_classes=num_classes, **dict(model_kwargs or {}))
  step = step_lib.make_train_step(config, model, tx, schedule, num_classes=num_classes,
                                  steps_per_epoch=1000)
  init = jax.jit(lambda rng: state_lib.create_state(
      config, model, tx, rng=rng, input_shape=tuple(image_shape), num_classes=num_classes))
  state = init(jax.random.PRNGKey(seed))
  second = objective.needs_second_batch(config)
  batch = synthetic_batch(batch_size, image_shape, num_classes, second_batch=second, seed=seed)
  label = name or "+".join(["ce", *objective.term_labels(objective.entries(config))])
  compiled = jax.jit(step, donate_argnums=0 if donate else ()).lower(state, batch).compile()
  return StepBench(label, compiled, state, batch, batch_size * (2 if second else 1))


def param_count(tree: Any) -> int:
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def interleaved(runners: Mapping[str, Callable[[int], float]], *, rounds: int, steps: int,
                warmup: int = 1) -> dict[str, list[float]]:
  """Seconds per step of every runner, ``rounds`` times, round-robin.

  ``runner(n)`` runs ``n`` steps and returns seconds per step. Each runner first runs
  ``warmup`` steps (compilation). The order rotates every round so that no variant
  always follows the same neighbour.
  """
  names = list(runners)
  for name in names:
    if warmup:
      runners[name](warmup)
  times: dict[str, list[float]] = {n: [] for n in names}
  for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
      times[name].append(runners[name](steps))
  return times


def summary(values: Sequence[float]) -> dict[str, float]:
  """median, quartiles, min and max of ``values``."""
  v = np.asarray(values, np.float64)
  q1, med, q3 = np.percentile(v, [25, 50, 75])
  return {"median": float(med), "q1": float(q1), "q3": float(q3), "min": float(v.min()),
          "max": float(v.max()), "n": int(v.size)}


def ratio_summary(times: Mapping[str, Sequence[float]], baseline: str,
                  scale: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
  """Per-round ratios ``times[v][r] / times[baseline][r]`` (x ``scale[v]``), summarised."""
  base = np.asarray(times[baseline], np.float64)
  out = {}
  for name, t in times.items():
    ratios = np.asarray(t, np.float64) / base * (scale or {}).get(name, 1.0)
    out[name] = summary(ratios)
  return out


# ---------------------------------------------------------------- losses alone


def loss_case(name: str, batch: int, dim: int, num_classes: int = 10, *, seed: int = 0
              ) -> tuple[Callable[..., Any], tuple[jax.Array, ...]]:
  """``(jitted value_and_grad, args)`` for loss ``name`` on random [batch, dim] features.

  Gradients are taken w.r.t. every float input the training step differentiates
  (features; also centers/growth/centroids, the head kernel and bias). ITRA gets two
  batches of ``batch`` samples each (its union has 2 * batch points).
  """
  key = jax.random.PRNGKey(seed)
  kf, kf2, kl, kl2, kc, kg = jax.random.split(key, 6)
  feats = jax.random.normal(kf, (batch, dim), jnp.float32)
  labels = jax.random.randint(kl, (batch,), 0, num_classes)
  centers = jax.random.normal(kc, (num_classes, dim), jnp.float32)
  if name in ("gini", "kl"):
    fn = getattr(losses, f"{name}_loss")
    f = lambda x, y: fn(x, y, num_classes)  # noqa: E731
    args = (jnp.abs(feats), labels)   # post-ReLU activations are non-negative (Gini paper)
  elif name == "group_softmax":
    rng = jax.random.PRNGKey(seed + 1)
    f = lambda x, w, b, y: losses.group_softmax_loss(x, y, w, b, rng=rng)  # noqa: E731
    args = (feats, centers.T * 0.01, jnp.zeros((num_classes,)), labels)
  elif name == "itra":
    feats2 = jax.random.normal(kf2, (batch, dim), jnp.float32)
    labels2 = jax.random.randint(kl2, (batch,), 0, num_classes)
    f = lambda x, x2, y, y2: losses.itra_loss(x, y, x2, y2, num_classes)  # noqa: E731
    args = (feats, feats2, labels, labels2)
  elif name == "sigma2r":
    growth = jax.random.normal(kg, (num_classes,), jnp.float32)
    f = lambda x, c, g, y: losses.sigma2r_loss(x, y, c, g)  # noqa: E731
    args = (feats, centers, growth, labels)
  elif name in ("center", "intra_class_variance"):
    fn = losses.center_loss if name == "center" else losses.intra_class_variance_loss
    f = lambda x, c, y: fn(x, y, c)  # noqa: E731
    args = (feats, centers, labels)
  elif name == "snnl":
    f = lambda x, y: losses.soft_nearest_neighbor_loss(x, y)  # noqa: E731
    args = (feats, labels)
  else:
    raise ValueError(f"unknown loss {name!r}; valid choices: {sorted(AUX_ENTRIES)}")
  num_float = sum(1 for a in args if jnp.issubdtype(a.dtype, jnp.floating))
  vg = jax.jit(jax.value_and_grad(f, argnums=tuple(range(num_float))))
  return vg, args


def feature_widths(model_name: str, image_shape: Sequence[int],
                   model_kwargs: Mapping[str, Any] | None = None, num_classes: int = 10
                   ) -> dict[str, int]:
  """Width (last axis) of each sowed intermediate of the model, via ``eval_shape`` (no compute)."""
  model = models.get_model(model_name, num_classes=num_classes, **dict(model_kwargs or {}))
  x = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)

  def widths(rng, x):
    variables = models.init_variables(model, rng, tuple(image_shape))
    return models.apply_with_features(model, variables, x, train=False)[1]

  feats = jax.eval_shape(widths, jax.random.PRNGKey(0), x)
  return {k: int(v.shape[-1]) for k, v in feats.items()}


def loss_runner(name: str, batch: int, dim: int, num_classes: int = 10
                ) -> Callable[[int], float]:
  """``run(n)``: n calls of the loss's compiled value_and_grad at [batch, dim]; s per call."""
  vg, args = loss_case(name, batch, dim, num_classes)
  compiled = vg.lower(*args).compile()

  def run(n: int) -> float:
    t0 = time.perf_counter()
    out = [compiled(*args) for _ in range(n)]
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / n

  return run


def compiled_stats(compiled) -> dict[str, float]:
  """FLOPs (XLA cost analysis) and the memory figures of a ``jax.stages.Compiled``."""
  out: dict[str, float] = {}
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else {}
  out["flops"] = float((cost or {}).get("flops", float("nan")))
  mem = compiled.memory_analysis()
  for field in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
                "alias_size_in_bytes"):
    out[field.replace("_size_in", "")] = float(getattr(mem, field, float("nan")) or 0)
  # Peak live bytes of the executable: inputs + outputs (minus donated aliases) + temps.
  out["peak_bytes"] = (out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"]
                       + out["temp_bytes"])
  return out


def time_call(fn: Callable[..., Any], args: Sequence[Any], *, repeats: int = 3,
              budget_s: float = 30.0) -> tuple[float, int]:
  """Min seconds of ``fn(*args)`` over up to ``repeats`` timed calls after one warm-up.

  Stops once ``budget_s`` seconds were spent timing; if the warm-up call alone took
  longer than ``budget_s`` (large shapes, where first-call costs are negligible) its
  time is returned with 0 timed calls. Returns (seconds, calls timed).
  """
  t0 = time.perf_counter()
  jax.block_until_ready(fn(*args))
  first = time.perf_counter() - t0
  if first > budget_s:
    return first, 0
  best, spent, n = float("inf"), 0.0, 0
  while n < repeats and (n == 0 or spent < budget_s):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    dt = time.perf_counter() - t0
    best, spent, n = min(best, dt), spent + dt, n + 1
  return best, n


def loss_scaling_point(name: str, batch: int, dim: int, *, num_classes: int = 10,
                       repeats: int = 3, budget_s: float = 30.0) -> dict[str, float]:
  """Compile time, run time and memory of one loss's value_and_grad at [batch, dim]."""
  vg, args = loss_case(name, batch, dim, num_classes)
  t0 = time.perf_counter()
  compiled = vg.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  stats = compiled_stats(compiled)
  seconds, n = time_call(compiled, args, repeats=repeats, budget_s=budget_s)
  pairs = (2 * batch if name == "itra" else batch) ** 2 * 4
  return {"loss": name, "batch": batch, "dim": dim, "seconds": seconds, "timed_calls": n,
          "compile_s": compile_s, "pair_matrix_bytes": float(pairs),
          "temp_over_pair_matrix": stats["temp_bytes"] / pairs, **stats}


# ---------------------------------------------------------------- hardware ceiling


def matmul_runner(n: int = 2048, dtype: Any = jnp.float32) -> tuple[Callable[[int], float], float]:
  """``(run, flops)``: ``run(k)`` does k [n, n] matmuls, seconds per matmul (for interleaving)."""
  ka, kb = jax.random.split(jax.random.PRNGKey(0))
  a = jax.random.normal(ka, (n, n), dtype)
  b = jax.random.normal(kb, (n, n), dtype)
  f = jax.jit(jnp.matmul).lower(a, b).compile()

  def run(k: int) -> float:
    t0 = time.perf_counter()
    out = [f(a, b) for _ in range(k)]
    jax.block_until_ready(out)
    return (time.perf_counter() - t0) / k

  return run, 2.0 * n**3


def median(values: Sequence[float]) -> float:
  return float(statistics.median(values))
