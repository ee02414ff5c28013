r"""Does the host input pipeline keep up with training? Pipeline batches/s vs. train steps/s.

Fashion-MNIST (prepared offline from the original files, read back through TFDS), batch
256, with augmentation off and on, against the train steps/s of LeNet-5 + Adam
(``disc_jax.models.get_model('lenet5')`` + optax, one jitted step). A ratio > 1 means
training is not input-bound. Also measures the two together (the pipeline's grain
iterator, which computes batches ahead, feeding the step).

  python -m experiments.benchmark_pipeline --manual_dir ../shared/data/fashion_mnist \
      --data_dir /tmp/disc_jax_tfds

:func:`run_benchmark` returns the figures as a dict for experiments/benchmark.py.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections.abc import Callable, Iterator

import jax
import numpy as np
import optax

from disc_jax import data as data_lib
from disc_jax import models

AUGMENTS = {
    "off": (),
    "crop+flip": ("crop:4", "flip"),
    "crop+flip+rotate": ("crop:4", "flip", "rotate:15"),
}


def _rate(run: Callable[[int], None], n: int, repeats: int) -> float:
  """Median items/s of ``run(n)`` over ``repeats`` timed runs (after one warm-up run)."""
  run(max(1, n // 5))
  rates = []
  for _ in range(repeats):
    t = time.perf_counter()
    run(n)
    rates.append(n / (time.perf_counter() - t))
  return statistics.median(rates)


def pipeline_rate(pipeline: data_lib.Pipeline, n: int = 100, repeats: int = 3) -> float:
  """Batches/s of ``pipeline.batches()`` alone (host only)."""
  it = pipeline.batches()
  return _rate(lambda k: [next(it) for _ in range(k)], n, repeats)


def make_train_step(num_classes: int, image_shape: tuple[int, int, int], learning_rate: float = 1e-3):
  """(jitted step, initial params, initial opt state) of LeNet-5 + Adam with softmax CE."""
  model = models.get_model("lenet5", num_classes=num_classes)
  params = models.init_variables(model, jax.random.key(0), image_shape)["params"]
  tx = optax.adam(learning_rate)

  def loss_fn(p, image, label):
    logits = model.apply({"params": p}, image, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, label).mean()

  @jax.jit
  def step(p, opt_state, image, label):
    loss, grads = jax.value_and_grad(loss_fn)(p, image, label)
    updates, opt_state = tx.update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state, loss

  return step, params, tx.init(params)


def train_rate(step, params, opt_state, batch: dict[str, np.ndarray], n: int = 50, repeats: int = 3) -> float:
  """Steps/s of the jitted step on one batch already on the device (no input work)."""
  image, label = jax.device_put(batch["image"]), jax.device_put(batch["label"])
  state = [params, opt_state]

  def run(k):
    for _ in range(k):
      state[0], state[1], loss = step(state[0], state[1], image, label)
    jax.block_until_ready(loss)

  return _rate(run, n, repeats)


def end_to_end_rate(step, params, opt_state, batches: Iterator[dict[str, np.ndarray]], n: int = 50,
                    repeats: int = 3) -> float:
  """Steps/s of training fed by ``batches`` (host batch -> device -> step)."""
  state = [params, opt_state]

  def run(k):
    loss = None
    for b in itertools.islice(batches, k):
      state[0], state[1], loss = step(state[0], state[1], b["image"], b["label"])
    jax.block_until_ready(loss)

  return _rate(run, n, repeats)


def run_benchmark(manual_dir: str | None, data_dir: str | None, *, batch_size: int = 256,
                  pipeline_batches: int = 100, train_steps: int = 50, repeats: int = 3) -> dict:
  """All figures (see module docstring) as a JSON-able dict."""
  t = time.perf_counter()
  source = data_lib.load_source("fashion_mnist", "train", data_dir=data_dir, manual_dir=manual_dir)
  load_s = time.perf_counter() - t
  step, params, opt_state = make_train_step(source.num_classes, source.image_shape)
  first = next(data_lib.Pipeline(source, batch_size=batch_size, seed=0).batches())
  train = train_rate(step, params, opt_state, first, train_steps, repeats)
  out = {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
         "batch_size": batch_size, "source_load_s": round(load_s, 2),
         "lenet5_adam_steps_per_s": round(train, 2), "pipeline": {}}
  for name, augment in AUGMENTS.items():
    for sampler in ("random", "balanced"):
      pipe = data_lib.Pipeline(source, batch_size=batch_size, seed=0, augment=augment, sampler=sampler,
                               min_per_class=25 if sampler == "balanced" else 0)
      rate = pipeline_rate(pipe, pipeline_batches, repeats)
      both = end_to_end_rate(step, params, opt_state, pipe.batches(), train_steps, repeats)
      out["pipeline"][f"{name}/{sampler}"] = {
          "batches_per_s": round(rate, 1), "ratio_to_train": round(rate / train, 2),
          "end_to_end_steps_per_s": round(both, 2)}
  return out


def _print(result: dict) -> None:
  print(f"device: {result['device']} ({result['backend']}), batch {result['batch_size']}, "
        f"Fashion-MNIST load {result['source_load_s']} s")
  print(f"LeNet-5 + Adam train steps/s (batch on device): {result['lenet5_adam_steps_per_s']}")
  print(f"{'augment/sampler':32s} {'pipeline batches/s':>19s} {'ratio':>7s} {'end-to-end steps/s':>19s}")
  for name, r in result["pipeline"].items():
    print(f"{name:32s} {r['batches_per_s']:19.1f} {r['ratio_to_train']:7.2f} {r['end_to_end_steps_per_s']:19.2f}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--manual_dir", default=None, help="folder with the original Fashion-MNIST files")
  parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: TFDS's)")
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--pipeline_batches", type=int, default=100)
  parser.add_argument("--train_steps", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--json", default=None, help="also write the figures to this file")
  args = parser.parse_args()
  result = run_benchmark(args.manual_dir, args.data_dir, batch_size=args.batch_size,
                         pipeline_batches=args.pipeline_batches, train_steps=args.train_steps,
                         repeats=args.repeats)
  _print(result)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
