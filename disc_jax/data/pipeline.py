"""The input pipeline: Source -> fixed-size, normalised numpy batches.

Train mode (``train=True``) is an infinite stream over epochs. The batch of global step
``s`` is a pure function of (seed, s): its indices come from the sampler's permutation of
epoch ``s // steps_per_epoch`` (:mod:`disc_jax.data.samplers`), its augmentation from
``np.random.default_rng([seed, AUGMENT_STREAM, s, k])``. So two pipelines with the same
seed give identical batches, and ``batches(start_step=s)`` resumes a run exactly, with no
replay of earlier steps. ``steps_per_epoch`` drops the last incomplete batch.

With ``second_batch=True`` each batch also carries 'image2'/'label2': ITRA's second
mini-batch S_(2) (itra_representation_alignment.txt, Eq. 2-3), drawn by an independent
sampler of the same kind (its own stream), augmented independently, and meant only for
the matching loss, never for cross-entropy.

Eval mode (``train=False``) is one ordered pass; the last batch is padded with zero
images (label 0) to the fixed batch size and ``'mask'`` (float32, 1 real / 0 pad) says
which rows count. ``augment``, ``sampler`` and ``min_per_class`` are ignored in eval mode,
so train and eval pipelines can share one config.

Per batch: gather uint8 images -> resize to ``image_size`` (bilinear, if given) ->
augmentations in the order given -> ``(x / 255 - mean) / std`` as float32. All steps
are vectorised over the batch (:mod:`disc_jax.data.augment`).

Several processes (``process_count`` P, this one ``process_index`` i): the global batch
of B rows is the same for every P; process i gets rows ``[i * B / P, (i + 1) * B / P)``
of it (the rows of its own devices, which the mesh orders by process), and reads and
decodes only those examples. The sampler's index permutation and the augmentations'
random parameters are cheap and are computed for the whole global batch in every
process, then sliced (:func:`disc_jax.data.augment.apply_all`), so concatenating the
P local batches gives bitwise the single-process batch.

Iteration (``batches``) is a grain pipeline: ``grain.MapDataset.range`` over global
steps, mapped by :meth:`Pipeline.batch`, turned into an ``IterDataset`` that computes up
to ``prefetch`` batches ahead in a background thread (``grain.ReadOptions``), and, with
``num_workers`` > 0, in that many worker processes (``mp_prefetch``: worker w computes
steps w, w + W, ... and grain interleaves them back in order). Every batch is a pure
function of its step, so the stream is the same for any number of workers, and a resume
is the range starting at that step. grain spawns its workers and pickles the pipeline
(source included) into them, so sources must be picklable (every Source of this package
is: TFDS's data source reopens its files when unpickled). A program that starts workers
must guard its entry point with ``if __name__ == "__main__":`` (spawned workers import it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grain
import numpy as np
from absl import flags

from disc_jax.data import augment as augment_lib
from disc_jax.data.registry import DATASETS
from disc_jax.data.samplers import check_batch_split, make_sampler
from disc_jax.data.source import Source

AUGMENT_STREAM = 7919
# The train stream's end for grain's (finite) index range: no run gets near it.
ENDLESS = 1 << 62


def _absl_flags_parsed() -> None:
  """Lets grain's worker processes start outside ``absl.app``.

  grain's multiprocessing prefetch reads one of its absl flags when it starts its workers,
  which raises ``UnparsedFlagAccessError`` unless the program parsed absl flags. Programs
  run through ``absl.app`` (or that parse flags themselves) are left alone; otherwise the
  flags are marked parsed, i.e. all keep their defaults, as with an empty command line.
  """
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _per_channel(value: float | Sequence[float], channels: int, what: str) -> np.ndarray:
  arr = np.atleast_1d(np.asarray(value, np.float32))
  if arr.ndim != 1 or arr.size not in (1, channels):
    raise ValueError(f"{what} must be a scalar or have {channels} values (one per channel), got {value}")
  return np.broadcast_to(arr, (channels,)).astype(np.float32)


class Pipeline:
  """Fixed-size numpy batches of a Source (see module docstring).

  Args:
    source: a Source (:mod:`disc_jax.data.source`); picklable when ``num_workers`` > 0.
    batch_size: global batch size B (divisible by ``num_shards``).
    seed: seeds the per-epoch order and the augmentations.
    train: infinite shuffled/augmented stream (True) or one padded ordered pass (False).
    augment: augmentation specs, e.g. ``("crop:4", "flip", "rotate:15")``.
    mean, std: per-channel normalisation on the [0, 1] scale; None: the DATASETS entry
      of ``source.name``, or 0 / 1 for unregistered names.
    sampler: 'random' or 'balanced' (every class >= ``min_per_class`` per batch).
    min_per_class: minimum examples per class in a batch (needs sampler='balanced').
    second_batch: add ITRA's independent 'image2'/'label2' (train only).
    num_shards: number of devices (over all processes) the global batch is split over.
    image_size: resize to (H, W) (int: square); None keeps the source's size.
    process_index, process_count: this process and the number of processes
      (``jax.process_index()``, ``jax.process_count()``); ``num_shards`` must be a
      multiple of ``process_count`` (each process holds whole devices).
    num_workers: grain worker processes computing batches (0: in this process).
    prefetch: batches computed ahead of the consumer (per worker with workers).

  Attributes:
    local_batch_size: B / process_count, the rows :meth:`batch` returns.
    rows: the slice of the global batch this process holds.

  >>> from disc_jax.data.fuzzy_rgb import FuzzyRGB
  >>> p = Pipeline(FuzzyRGB("test"), batch_size=64, seed=0, train=True, augment=("flip",))
  >>> b = next(p.batches())
  >>> b["image"].shape, b["image"].dtype, b["label"].dtype
  ((64, 32, 32, 3), dtype('float32'), dtype('int32'))
  """

  def __init__(self, source: Source, *, batch_size: int, seed: int = 0, train: bool = True,
               augment: Sequence[str] = (), mean: float | Sequence[float] | None = None,
               std: float | Sequence[float] | None = None, sampler: str = "random", min_per_class: int = 0,
               second_batch: bool = False, num_shards: int = 1, image_size: int | Sequence[int] | None = None,
               process_index: int = 0, process_count: int = 1, num_workers: int = 0, prefetch: int = 2):
    check_batch_split(batch_size, num_shards)
    if second_batch and not train:
      raise ValueError("second_batch=True is ITRA's training-time second mini-batch; use it with train=True only")
    if process_count <= 0 or not 0 <= process_index < process_count:
      raise ValueError(f"need 0 <= process_index < process_count, got process_index={process_index}, "
                       f"process_count={process_count}")
    if num_shards % process_count:
      raise ValueError(f"num_shards={num_shards} (devices) must be a multiple of process_count={process_count}: "
                       f"every process feeds whole devices")
    if num_workers < 0:
      raise ValueError(f"num_workers must be >= 0 (0: no worker processes), got {num_workers}")
    if prefetch < 0:
      raise ValueError(f"prefetch must be >= 0, got {prefetch}")
    self.source, self.batch_size, self.seed, self.train = source, int(batch_size), int(seed), bool(train)
    self.num_shards, self.second_batch = int(num_shards), bool(second_batch)
    self.process_index, self.process_count = int(process_index), int(process_count)
    self.num_workers, self.prefetch = int(num_workers), int(prefetch)
    self.local_batch_size = self.batch_size // self.process_count
    self.rows = slice(self.process_index * self.local_batch_size, (self.process_index + 1) * self.local_batch_size)
    h, w, c = source.image_shape
    if image_size is not None:
      h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    self.image_shape = (int(h), int(w), int(c))
    info = DATASETS.get(source.name)
    mean = mean if mean is not None else (info.mean if info else 0.0)
    std = std if std is not None else (info.std if info else 1.0)
    std_c = _per_channel(std, c, "std")
    if np.any(std_c <= 0):
      raise ValueError(f"std must be positive, got {std}")
    self._scale = (1.0 / (255.0 * std_c)).astype(np.float32)
    self._offset = (-_per_channel(mean, c, "mean") / std_c).astype(np.float32)
    self._augment = augment_lib.parse_augment(augment) if train else []
    if train:
      kw = dict(seed=self.seed, min_per_class=min_per_class, num_shards=self.num_shards)
      self._samplers = [make_sampler(sampler, source, self.batch_size, stream=k, **kw)
                        for k in range(2 if second_batch else 1)]
      self.steps_per_epoch = self._samplers[0].steps_per_epoch
    else:  # one ordered pass: sampler/min_per_class do not apply
      self.steps_per_epoch = -(-len(source) // self.batch_size)

  def _images(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Resized uint8 images and int32 labels of ``indices`` (no source call when empty)."""
    if indices.size == 0:
      return np.zeros((0, *self.image_shape), np.uint8), np.zeros((0,), np.int32)
    raw = self.source.get_batch(indices)
    return augment_lib.resize(raw["image"], self.image_shape[:2]), raw["label"].astype(np.int32)

  def _normalise(self, images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) * self._scale + self._offset

  def batch(self, step: int) -> dict[str, np.ndarray]:
    """This process's rows of the batch of global step ``step`` (train) or of the ``step``-th batch (eval)."""
    if step < 0:
      raise ValueError(f"step must be >= 0, got {step}")
    if not self.train:
      return self._eval_batch(step)
    out = {}
    for k, sampler in enumerate(self._samplers):
      rng = np.random.default_rng([self.seed, AUGMENT_STREAM, int(step), k])
      params = augment_lib.draw_all(self._augment, rng, self.batch_size)
      images, labels = self._images(sampler.batch(step)[self.rows])
      images = augment_lib.apply_all(self._augment, images, params, self.rows)
      suffix = "2" if k else ""
      out["image" + suffix], out["label" + suffix] = self._normalise(images), labels
    return out

  def _eval_batch(self, k: int) -> dict[str, np.ndarray]:
    if k >= self.steps_per_epoch:
      raise ValueError(f"eval step must be < steps_per_epoch={self.steps_per_epoch}, got {k}")
    first = k * self.batch_size + self.rows.start     # global example index of this process's first row
    idx = np.arange(first, min(first + self.local_batch_size, len(self.source)))
    images, labels = self._images(idx)
    n = idx.size
    image = np.zeros((self.local_batch_size, *self.image_shape), np.float32)
    label = np.zeros(self.local_batch_size, np.int32)
    mask = np.zeros(self.local_batch_size, np.float32)
    image[:n], label[:n], mask[:n] = self._normalise(images), labels, 1.0
    return {"image": image, "label": label, "mask": mask}

  def dataset(self, start_step: int = 0) -> grain.IterDataset:
    """The grain ``IterDataset`` of this process's batches from ``start_step`` (see module docstring)."""
    if start_step < 0:
      raise ValueError(f"start_step must be >= 0, got {start_step}")
    stop = ENDLESS if self.train else self.steps_per_epoch
    steps = grain.MapDataset.range(min(int(start_step), stop), stop)
    ds = steps.map(self.batch).to_iter_dataset(
        grain.ReadOptions(num_threads=1 if self.prefetch else 0, prefetch_buffer_size=self.prefetch))
    if self.num_workers:
      _absl_flags_parsed()
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.num_workers,
                                                       per_worker_buffer_size=max(1, self.prefetch)))
    return ds

  def batches(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Train: the infinite stream from global step ``start_step``; eval: the pass from batch ``start_step``.

    Batches are computed ahead (``prefetch``, ``num_workers``), so the caller needs no
    prefetching of its own. Closing the generator (or dropping it) stops the workers.
    """
    it = iter(self.dataset(start_step))
    try:
      for b in it:
        yield {k: np.asarray(v) for k, v in b.items()}
    finally:
      close = getattr(it, "close", None)
      if close is not None:
        close()
