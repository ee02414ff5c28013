"""Batch samplers: which example indices make up the batch of each global step.

A sampler is a pure function of (seed, stream, epoch): ``sampler.batch(step)`` needs no
state, so a pipeline resumes at any step without replaying earlier ones, and two
samplers with different ``stream`` numbers are independent draws (ITRA's second batch).

* :class:`RandomSampler` -- a fresh permutation per epoch, cut into ``len // B`` batches
  (the remainder is dropped, a different remainder each epoch).
* :class:`BalancedSampler` -- sigma2r_loss.txt sec. 4: "we apply a balanced data sampler
  to extract each batch ... each batch will have about 25 instances per class for
  [10 classes and] batch size 256", needed because Eq. 8's neighbourhood statistics
  must not meet a class with fewer than n samples. Each batch gives every class
  ``B // C`` slots and ``B % C`` random classes one more (so 256 / 10 -> six classes with
  26, four with 25); ``min_per_class`` is checked against ``B // C``. Each class's
  examples are drawn from per-class permutations, so over an epoch every example of a
  class is seen before any repeats (small classes are cycled: oversampled).
  With ``num_shards`` > 1 the classes are dealt round-robin to the shards, so each
  device's slice is balanced too (each class differs by at most 1 between shards).

ITRA (itra_representation_alignment.txt, sec. 3, Eq. 2): "we sample from the training
data another mini-batch S_(2)"; the pipeline gets it from a second sampler of the same
kind with its own stream.
"""

from __future__ import annotations

import numpy as np

from disc_jax.data.source import Source, source_labels


def check_batch_split(batch_size: int, num_shards: int) -> None:
  """ValueError unless ``batch_size`` is positive and splits evenly over ``num_shards`` devices."""
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}")
  if num_shards <= 0 or batch_size % num_shards:
    raise ValueError(f"batch_size={batch_size} must be divisible by num_shards={num_shards} so every device "
                     f"gets the same number of examples; pick a multiple of {num_shards}")


def _check_batch(num_examples: int, batch_size: int, num_shards: int) -> int:
  check_batch_split(batch_size, num_shards)
  steps = num_examples // batch_size
  if steps == 0:
    raise ValueError(f"batch_size={batch_size} is larger than the dataset ({num_examples} examples)")
  return steps


class RandomSampler:
  """Uniform batches without replacement within an epoch (permutation per epoch).

  >>> s = RandomSampler(10, 4, seed=0)
  >>> s.steps_per_epoch, len(set(np.concatenate([s.batch(0), s.batch(1)]).tolist()))
  (2, 8)
  """

  def __init__(self, num_examples: int, batch_size: int, *, seed: int, stream: int = 0, num_shards: int = 1):
    self.steps_per_epoch = _check_batch(num_examples, batch_size, num_shards)
    self.num_examples, self.batch_size = int(num_examples), int(batch_size)
    self.seed, self.stream = int(seed), int(stream)
    self._cached: tuple[int, np.ndarray] | None = None

  def epoch(self, epoch: int) -> np.ndarray:
    """int64 [steps_per_epoch, batch_size]: the indices of every batch of ``epoch``.

    The last epoch asked for is cached as one (epoch, indices) pair, read and replaced
    as a whole, so threads asking for different epochs (a prefetching thread and a
    direct ``batch`` call) each get their own epoch's indices.
    """
    cached = self._cached
    if cached is None or cached[0] != epoch:
      cached = (epoch, self._make_epoch(epoch))
      self._cached = cached
    return cached[1]

  def _make_epoch(self, epoch: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, self.stream, epoch])
    perm = rng.permutation(self.num_examples)
    return perm[: self.steps_per_epoch * self.batch_size].reshape(self.steps_per_epoch, self.batch_size)

  def batch(self, step: int) -> np.ndarray:
    """int64 [batch_size]: the indices of global step ``step``."""
    epoch, k = divmod(int(step), self.steps_per_epoch)
    return self.epoch(epoch)[k]


class BalancedSampler(RandomSampler):
  """Class-balanced batches (see module docstring).

  >>> labels = np.repeat(np.arange(3), 10)
  >>> b = BalancedSampler(labels, 9, seed=0, min_per_class=3).batch(0)
  >>> np.bincount(labels[b]).tolist()
  [3, 3, 3]
  """

  def __init__(self, labels: np.ndarray, batch_size: int, *, seed: int, stream: int = 0,
               min_per_class: int = 0, num_shards: int = 1):
    labels = np.asarray(labels)
    super().__init__(labels.size, batch_size, seed=seed, stream=stream, num_shards=num_shards)
    self.classes, counts = np.unique(labels, return_counts=True)
    num_classes = self.classes.size
    if min_per_class < 0:
      raise ValueError(f"min_per_class must be >= 0, got {min_per_class}")
    if min_per_class * num_classes > batch_size:
      raise ValueError(f"min_per_class={min_per_class} for {num_classes} classes needs batch_size >= "
                       f"{min_per_class * num_classes}, got {batch_size}; lower min_per_class or raise batch_size")
    self.min_per_class, self.num_shards = int(min_per_class), int(num_shards)
    order = np.argsort(labels, kind="stable")
    self._members = np.split(order, np.cumsum(counts)[:-1])   # example indices of each class

  def _make_epoch(self, epoch: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, self.stream, epoch])
    steps, bsz, ncls = self.steps_per_epoch, self.batch_size, self.classes.size
    # quota[s, c]: slots of class c in batch s -- B // C each, B % C random classes get one more.
    quota = np.full((steps, ncls), bsz // ncls, np.int64)
    extra = bsz % ncls
    if extra:
      lucky = np.argsort(rng.random((steps, ncls)), axis=1)[:, :extra]
      np.put_along_axis(quota, lucky, bsz // ncls + 1, axis=1)
    col_start = np.cumsum(quota, axis=1) - quota              # where class c starts in batch s
    out = np.empty((steps, bsz), np.int64)
    for c, members in enumerate(self._members):
      q = quota[:, c]
      total = int(q.sum())
      reps = -(-total // members.size)
      stream = np.concatenate([rng.permutation(members) for _ in range(reps)])[:total]
      step_of = np.repeat(np.arange(steps), q)
      rank = np.arange(total) - np.repeat(np.cumsum(q) - q, q)
      out[step_of, col_start[step_of, c] + rank] = stream
    # Deal the class-grouped columns round-robin to the shards, then shuffle within a shard.
    per_shard = bsz // self.num_shards
    pos = np.arange(bsz)
    dealt = np.empty_like(out)
    dealt[:, (pos % self.num_shards) * per_shard + pos // self.num_shards] = out
    dealt = dealt.reshape(steps, self.num_shards, per_shard)
    shuffle = np.argsort(rng.random(dealt.shape), axis=-1)
    return np.take_along_axis(dealt, shuffle, axis=-1).reshape(steps, bsz)


def make_sampler(kind: str, source: Source, batch_size: int, *, seed: int, stream: int = 0,
                 min_per_class: int = 0, num_shards: int = 1) -> RandomSampler:
  """The sampler named ``kind`` ('random' or 'balanced') over the examples of ``source``."""
  if kind == "random":
    if min_per_class:
      raise ValueError(f"min_per_class={min_per_class} needs sampler='balanced' (random batches guarantee no minimum)")
    return RandomSampler(len(source), batch_size, seed=seed, stream=stream, num_shards=num_shards)
  if kind == "balanced":
    return BalancedSampler(source_labels(source), batch_size, seed=seed, stream=stream, min_per_class=min_per_class,
                           num_shards=num_shards)
  raise ValueError(f"sampler must be 'random' or 'balanced', got {kind!r}")
