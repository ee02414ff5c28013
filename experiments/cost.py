r"""What a table config costs: FLOPs per train step (XLA's count) and hours on one GPU.

  python -m experiments.cost --config configs/gini_kl/table1_cifar100_resnet18.py
  python -m experiments.cost --config configs/compare/fashion_mnist.py --measure_steps 20

For each run: XLA's cost analysis of the lowered train step (forward, backward, every
loss term and the optimizer update; ITRA's second batch included) at the config's
image shape and global batch, the steps per epoch and in total, and

  GPU hours = total steps x max(FLOPs / GPU_FLOPS, GPU_MIN_STEP_S) / 3600

with GPU_FLOPS = 15 TFLOP/s: an assumed sustained float32 (TF32) rate of one H100 on
these convolutional nets (a CIFAR ResNet-18 epoch in about 10 s, as commonly reported
for one A100/H100 without input-pipeline tuning), and GPU_MIN_STEP_S = 2 ms
per step, the launch/host overhead floor that bounds tiny nets (LeNet) instead.
These are estimates from FLOP counts at an assumed rate, not measurements.
``--measure_steps N`` also times N train steps on this machine's CPU (synthetic data of
the config's shapes, after compilation) and extrapolates the CPU hours.

No dataset is read: the step is built on 'synthetic' data (:func:`synthetic_config`),
so this runs anywhere; training-set sizes come from :data:`TRAIN_EXAMPLES`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from disc_jax import data as data_lib
from disc_jax.train import evaluate, loop, objective, state as state_lib
from disc_jax.train.config import extra_dataset, num_classes_of

GPU_FLOPS = 15e12
GPU_MIN_STEP_S = 2e-3
# Training-set sizes (the datasets' standard train splits; Caltech-256 / SUN-397: the
# group softmax paper's protocol, 60 and 50 training images per class).
TRAIN_EXAMPLES = {
    "mnist": 60_000, "fashion_mnist": 60_000, "kmnist": 60_000, "cifar10": 50_000,
    "cifar100": 50_000, "stl10": 5_000, "food101": 75_750, "imagenet2012": 1_281_167,
    "caltech256": 60 * 257, "sun397": 50 * 397, "caltech101": 3_060,
}


def train_examples(config: ml_collections.ConfigDict) -> int:
  """The number of training images of ``config`` (fuzzy_rgb from its kwargs).

  >>> from configs import base
  >>> c = base.get_config(); c.dataset.name = "cifar100"; c.dataset.train_split = "train[4000:]"
  >>> train_examples(c)
  46000
  >>> c.dataset.class_subset = {"num_classes": 10, "seed": 0}
  >>> train_examples(c)
  4600
  """
  ds = config.dataset
  if ds.name == "fuzzy_rgb":
    from disc_jax.data import fuzzy_rgb  # noqa: PLC0415
    return 3 * int(ds.kwargs.get("train_per_class", fuzzy_rgb.TRAIN_PER_CLASS))
  if ds.name == "synthetic":
    return int(ds.kwargs.get("num_examples", 512))
  total = TRAIN_EXAMPLES[ds.name]
  sliced = re.fullmatch(r"train\[(\d+):\]", ds.train_split)
  total = total - int(sliced.group(1)) if sliced else total
  if ds.class_subset is not None:   # C of K classes: estimated as C / K of the examples
    total = total * num_classes_of(config) // data_lib.dataset_info(ds.name).num_classes
  return total


def synthetic_config(config: ml_collections.ConfigDict, *, image_shape: Sequence[int],
                     num_classes: int = 4, batch_size: int = 32, num_examples: int = 64,
                     num_steps: int = 2, model_kwargs: Mapping[str, Any] | None = None
                     ) -> ml_collections.ConfigDict:
  """One run's ``config`` on 'synthetic' images: same model, losses and optimizer.

  Only the data (random class-dependent images of ``image_shape``), the batch and the
  budget change (``num_steps``, a tiny final eval, no plots); ``min_per_class`` is capped
  at ``batch_size // num_classes``. ``model_kwargs`` override model keywords (e.g. a
  narrower VGG classifier) for smoke tests.
  """
  c = config.copy_and_resolve_references()
  c.dataset.name = "synthetic"
  c.dataset.kwargs = ml_collections.ConfigDict({
      "num_examples": int(num_examples), "image_shape": tuple(int(d) for d in image_shape),
      "num_classes": int(num_classes)})
  c.dataset.train_split, c.dataset.eval_split = "train", "test"
  c.dataset.image_size = None
  c.dataset.min_per_class = min(int(c.dataset.min_per_class), batch_size // num_classes)
  c.batch_size = c.eval_batch_size = int(batch_size)
  c.num_steps = int(num_steps)
  c.log_every = 1
  c.checkpoint_every = 0
  c.final_eval.max_train_examples = int(num_examples)
  c.final_eval.plot = False
  c.dataset.class_subset = None
  c.init_from = None
  c.final_eval.extra_datasets = tuple(
      extra_dataset("synthetic", "test", kwargs=c.dataset.kwargs.to_dict(),
                    prefix=evaluate.prefix_of(e)) for e in c.final_eval.extra_datasets)
  if model_kwargs:
    c.model.kwargs.update(dict(model_kwargs))
  return c


def image_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
  """The (H, W, C) the model sees (``dataset.image_size`` or the dataset's shape)."""
  info = data_lib.dataset_info(config.dataset.name)
  if config.dataset.name == "synthetic" and "image_shape" in config.dataset.kwargs:
    return tuple(int(d) for d in config.dataset.kwargs.image_shape)
  if config.dataset.name == "fuzzy_rgb" or config.dataset.image_size:
    side = config.dataset.image_size or info.image_shape[0]
    return (int(side), int(side), info.image_shape[2])
  return tuple(info.image_shape)


def abstract_step_inputs(run: loop.Run, shape: Sequence[int], batch_size: int):
  """ShapeDtypeStructs of the train state and of one global batch of ``shape`` images."""
  tx, _ = state_lib.make_tx(run.config, steps_per_epoch=run.steps_per_epoch,
                            total_steps=run.total_steps)
  state = jax.eval_shape(lambda: state_lib.create_state(
      run.config, run.model, tx, rng=jax.random.PRNGKey(0), input_shape=tuple(shape),
      num_classes=run.num_classes))
  batch = {"image": jax.ShapeDtypeStruct((batch_size, *shape), jnp.float32),
           "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32)}
  if objective.needs_second_batch(run.config):
    batch.update(image2=batch["image"], label2=batch["label"])
  return state, batch


def step_cost(config: ml_collections.ConfigDict, *, measure_steps: int = 0) -> dict[str, float]:
  """FLOPs and time estimates of one run's config (see the module docstring)."""
  num_classes = num_classes_of(config)
  shape = image_shape(config)
  small = shape if np.prod(shape) <= 32 * 32 * 3 else (32, 32, shape[2])
  probe = synthetic_config(config, image_shape=small, num_classes=num_classes, batch_size=8,
                           num_examples=max(16, 2 * num_classes))
  probe.dataset.sampler, probe.dataset.min_per_class = "random", 0
  run = loop.build(probe)
  state, batch = abstract_step_inputs(run, shape, int(config.batch_size))
  flops = float(run.train_step.lower(state, batch).cost_analysis()["flops"])
  spe = train_examples(config) // int(config.batch_size)
  total = int(config.num_steps or config.num_epochs * spe)
  out = {"gflops_per_step": flops / 1e9, "steps_per_epoch": float(spe), "total_steps": float(total),
         "gpu_hours": total * max(flops / GPU_FLOPS, GPU_MIN_STEP_S) / 3600}
  if measure_steps:
    out["cpu_s_per_step"] = _time_steps(config, shape, num_classes, measure_steps)
    out["cpu_hours"] = total * out["cpu_s_per_step"] / 3600
  return out


def _time_steps(config, shape, num_classes: int, n: int) -> float:
  """Seconds per train step on this machine at the config's batch, after compilation."""
  bs = int(config.batch_size)
  c = synthetic_config(config, image_shape=shape, num_classes=num_classes, batch_size=bs,
                       num_examples=2 * bs, num_steps=n + 1)
  c.dataset.min_per_class = min(int(config.dataset.min_per_class), bs // num_classes)
  run = loop.build(c)
  state = run.init()
  batches = run.train_pipeline.batches()
  sharded = [run.shard(next(batches)) for _ in range(2)]
  state, m = run.train_step(state, sharded[0])
  jax.block_until_ready(m)
  start = time.perf_counter()
  for i in range(n):
    state, m = run.train_step(state, sharded[i % 2])
  jax.block_until_ready(m)
  return (time.perf_counter() - start) / n


def main(argv: Sequence[str]) -> None:
  from absl import flags  # noqa: PLC0415

  from experiments._cli import run_configs  # noqa: PLC0415
  del argv
  configs = run_configs(flags.FLAGS["config"])
  names = flags.FLAGS["rows"].value or list(configs)
  print("| run | model | image | batch | steps/epoch | steps | GFLOP/step | GPU h (est.) "
        "| CPU s/step | CPU h |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for name in names:
    c = configs[name]
    r = step_cost(c, measure_steps=flags.FLAGS["measure_steps"].value)
    cpu = (f"{r['cpu_s_per_step']:.3f} | {r['cpu_hours']:.2f}" if "cpu_hours" in r else "- | -")
    print(f"| {name} | {c.model.name} | {'x'.join(map(str, image_shape(c)))} | {c.batch_size} "
          f"| {r['steps_per_epoch']:.0f} | {r['total_steps']:.0f} | {r['gflops_per_step']:.1f} "
          f"| {r['gpu_hours']:.2f} | {cpu} |", flush=True)


if __name__ == "__main__":
  from absl import app, flags
  from experiments._cli import parse_flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "A config file.", lock_config=True)
  flags.DEFINE_list("rows", None, "Only these runs (default: all).")
  flags.DEFINE_integer("measure_steps", 0, "Also time this many CPU train steps per run.")
  flags.mark_flags_as_required(["config"])
  app.run(main, flags_parser=parse_flags)
