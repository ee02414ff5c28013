r"""Does the host input pipeline keep up with training? Pipeline batches/s vs. train steps/s.

Two sections (``--sections``):

* ``pipeline`` (below): Fashion-MNIST through :class:`disc_jax.data.Pipeline`.
* ``jpeg``: the ImageNet-style input work per image -- JPEG decode, random-resized-crop
  to 224 x 224, horizontal flip -- on JPEGs of ImageNet-like size written locally
  (500 x 375, smooth content plus noise, quality 90), as a grain pipeline
  (``MapDataset`` over file paths -> decode/crop/flip -> batch) computed in the main
  process (0 workers, one core: the per-core rate) and in 1, 2, 4 grain worker processes
  (``mp_prefetch``). Beside it, the LeNet-5 + Adam train step's images/s on this
  machine, so the input rate per core can be set against what a device consumes.
  Random-resized-crop follows the usual Inception-style recipe (area 8-100 %, aspect
  3/4-4/3, 10 tries, else a centre crop), drawn from ``default_rng([seed, index])``.

Fashion-MNIST (prepared offline from the original files, read back through TFDS), batch
256, with augmentation off and on, against the train steps/s of LeNet-5 + Adam
(``disc_jax.models.get_model('lenet5')`` + optax, one jitted step). A ratio > 1 means
training is not input-bound. Also measures the two together (the pipeline's grain
iterator, which computes batches ahead, feeding the step).

  python -m experiments.benchmark_pipeline --manual_dir ../shared/data/fashion_mnist \
      --data_dir /tmp/disc_jax_tfds
  python -m experiments.benchmark_pipeline --sections jpeg --jpeg_dir /tmp/disc_jax_jpegs

:func:`run_benchmark` returns the figures as a dict for experiments/benchmark.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import pathlib
import statistics
import time
from collections.abc import Callable, Iterator, Sequence

import grain
import jax
import numpy as np
import optax
from absl import flags
from PIL import Image

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


def write_jpegs(folder: str | pathlib.Path, n: int = 256, size: tuple[int, int] = (500, 375),
                quality: int = 90, seed: int = 0) -> list[str]:
  """Writes ``n`` JPEGs of ``size`` (W, H) into ``folder`` (kept if already there); returns their paths.

  Content: a random 16 x 12 colour field upsampled bicubically (smooth regions and edges,
  like a photo) plus Gaussian noise of std 24, so files are about ImageNet's mean size
  (about 110 kB).
  """
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  paths = []
  for i in range(n):
    path = folder / f"img_{i:05d}.jpg"
    coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    noise = rng.normal(0, 24, (size[1], size[0], 3))
    if not path.exists():
      smooth = np.asarray(Image.fromarray(coarse).resize(size, Image.BICUBIC), np.float64)
      Image.fromarray(np.clip(smooth + noise, 0, 255).astype(np.uint8)).save(path, quality=quality)
    paths.append(str(path))
  return paths


@dataclasses.dataclass(frozen=True)
class DecodeCropFlip:
  """JPEG path -> uint8 [size, size, 3]: decode, random-resized-crop, flip (pure in (seed, index))."""

  size: int = 224
  seed: int = 0
  scale: tuple[float, float] = (0.08, 1.0)
  ratio: tuple[float, float] = (3 / 4, 4 / 3)

  def crop_box(self, rng: np.random.Generator, width: int, height: int) -> tuple[int, int, int, int]:
    area = width * height
    for _ in range(10):
      target = area * rng.uniform(*self.scale)
      aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
      w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
      if 0 < w <= width and 0 < h <= height:
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        return x, y, x + w, y + h
    side = min(width, height)
    x, y = (width - side) // 2, (height - side) // 2
    return x, y, x + side, y + side

  def __call__(self, index: int, path: str) -> np.ndarray:
    rng = np.random.default_rng([self.seed, index])
    with Image.open(path) as img:
      img = img.convert("RGB")
      box = self.crop_box(rng, *img.size)
      out = np.asarray(img.resize((self.size, self.size), Image.BILINEAR, box=box))
    return out[:, ::-1] if rng.random() < 0.5 else out


def jpeg_dataset(paths: Sequence[str], batch_size: int, workers: int, epochs: int = 1000) -> grain.IterDataset:
  """Batches of decoded/cropped/flipped images, computed in ``workers`` grain processes (0: here)."""
  ds = grain.MapDataset.source(list(paths)).repeat(epochs).map_with_index(DecodeCropFlip()).batch(batch_size)
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
  if workers:
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()   # grain reads an absl flag when starting workers
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=2))
  return it


def jpeg_rate(paths: Sequence[str], workers: int, batch_size: int = 32, batches: int = 24) -> tuple[float, float]:
  """(images per wall second, images per CPU second of this process) of :func:`jpeg_dataset`.

  Timed after the first ``workers + 1`` batches (worker start-up). With 0 workers all the
  work runs in this process's one thread, so images per CPU second is the per-core rate,
  which other load on the machine does not change (the wall rate it does); with workers
  it is what receiving the batches costs the consumer.
  """
  it = iter(jpeg_dataset(paths, batch_size, workers))
  try:
    for _ in range(workers + 1):
      next(it)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(batches):
      next(it)
    n = batches * batch_size
    return n / (time.perf_counter() - t), n / max(time.process_time() - c, 1e-9)
  finally:
    it.close()


def lenet_images_per_s(batch_size: int = 256, steps: int = 30, repeats: int = 3) -> float:
  """Images/s of the LeNet-5 + Adam step on a random 28 x 28 x 1 batch already on the device."""
  step, params, opt_state = make_train_step(10, (28, 28, 1))
  rng = np.random.default_rng(0)
  batch = {"image": rng.normal(size=(batch_size, 28, 28, 1)).astype(np.float32),
           "label": rng.integers(0, 10, batch_size).astype(np.int32)}
  return batch_size * train_rate(step, params, opt_state, batch, steps, repeats)


def run_jpeg_benchmark(jpeg_dir: str, *, num_files: int = 256, workers: Sequence[int] = (0, 1, 2, 4),
                       batch_size: int = 32, batches: int = 24) -> dict:
  """The ``jpeg`` section (see module docstring) as a JSON-able dict."""
  paths = write_jpegs(jpeg_dir, num_files)
  sizes = [os.path.getsize(p) for p in paths]
  out = {"cpu_count": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()],
         "num_files": len(paths), "jpeg_size": "500x375", "mean_file_kb": round(sum(sizes) / len(sizes) / 1024, 1),
         "batch_size": batch_size, "batches_timed": batches, "images_per_s": {},
         "images_per_cpu_s_of_main_process": {}}
  for w in workers:
    wall, cpu = jpeg_rate(paths, w, batch_size, batches)
    out["images_per_s"][str(w)] = round(wall, 1)
    out["images_per_cpu_s_of_main_process"][str(w)] = round(cpu, 1)
  out["lenet5_adam_images_per_s"] = round(lenet_images_per_s(), 1)
  out["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
  return out


def _print_jpeg(r: dict) -> None:
  print(f"JPEG decode + random-resized-crop 224 + flip: {r['num_files']} files {r['jpeg_size']}, "
        f"mean {r['mean_file_kb']} kB, batch {r['batch_size']}, {r['cpu_count']} CPUs, "
        f"load {r['load_avg_start']} -> {r['load_avg_end']}")
  print(f"{'grain workers':>14s} {'images/s':>10s} {'images per CPU-s of main process':>34s}")
  for w, rate in r["images_per_s"].items():
    print(f"{w:>14s} {rate:10.1f} {r['images_per_cpu_s_of_main_process'][w]:34.1f}")
  print(f"LeNet-5 + Adam train step (batch 256, on device): {r['lenet5_adam_images_per_s']} images/s")


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
  parser.add_argument("--sections", default="pipeline", help="comma-separated: pipeline, jpeg")
  parser.add_argument("--jpeg_dir", default="/tmp/disc_jax_jpegs", help="where the jpeg section writes its JPEGs")
  parser.add_argument("--jpeg_files", type=int, default=256)
  parser.add_argument("--jpeg_workers", default="0,1,2,4", help="grain worker counts to time")
  parser.add_argument("--jpeg_batches", type=int, default=24, help="batches of 32 timed per worker count")
  parser.add_argument("--json", default=None, help="also write the figures to this file")
  args = parser.parse_args()
  sections = [s.strip() for s in args.sections.split(",") if s.strip()]
  unknown = sorted(set(sections) - {"pipeline", "jpeg"})
  if unknown:
    parser.error(f"unknown sections {unknown}; choose from pipeline, jpeg")
  result = {}
  if "pipeline" in sections:
    result = run_benchmark(args.manual_dir, args.data_dir, batch_size=args.batch_size,
                           pipeline_batches=args.pipeline_batches, train_steps=args.train_steps,
                           repeats=args.repeats)
    _print(result)
  if "jpeg" in sections:
    result["jpeg"] = run_jpeg_benchmark(args.jpeg_dir, num_files=args.jpeg_files,
                                        workers=[int(w) for w in args.jpeg_workers.split(",")],
                                        batches=args.jpeg_batches)
    _print_jpeg(result["jpeg"])
  if args.json:
    with open(args.json, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  main()
