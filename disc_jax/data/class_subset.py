"""Class subsets: keep C classes of a dataset and relabel them 0..C-1.

The group softmax paper's Table 3(a) trains on ImageNet subsets of C = 100, 200, 500
classes, "randomly picking up the sub-set of C categories" (group_softmax_loss.txt,
Sec. 4.2). A subset is given either as

* a mapping ``{'num_classes': C, 'seed': s}``: C classes drawn at random with a fixed
  seed (``seed`` defaults to 0). Our choice, which the paper leaves open: the classes
  are the first C of one permutation ``default_rng(seed).permutation(K)``, so with one
  seed the subsets are nested (100 ⊂ 200 ⊂ 500) and differ only by the classes added;
* or an explicit sequence of original class ids.

Kept classes are relabelled in sorted order of their original id (the smallest kept id
becomes 0), and :class:`ClassSubsetSource` applies the same mapping to any split, so
train and eval splits share one label space. The wrapped Source keeps the base name, so
the pipeline normalises with the base dataset's statistics.

>>> choose_classes(10, [7, 2, 5]).tolist()
[2, 5, 7]
>>> from disc_jax.data.source import ArraySource
>>> base = ArraySource(np.zeros((6, 1, 1, 1), np.uint8), np.array([0, 7, 2, 5, 7, 3]), 10)
>>> sub = ClassSubsetSource(base, [7, 2, 5])
>>> len(sub), sub.num_classes, sub.get_batch(np.arange(4))["label"].tolist()
(4, 3, [2, 0, 1, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from disc_jax.data.source import Source, check_indices, source_labels

SPEC_KEYS = ("num_classes", "seed")


def _int(value: Any, what: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"class_subset: {what} must be an int, got {value!r}")
  return int(value)


def choose_classes(total: int, spec: Mapping[str, Any] | Sequence[int]) -> np.ndarray:
  """The kept original class ids (sorted int32) of a subset ``spec`` of ``total`` classes.

  Raises ValueError for an unknown key, C outside [1, total], or ids that repeat or lie
  outside [0, total).

  >>> a = choose_classes(1000, {"num_classes": 100, "seed": 0})
  >>> b = choose_classes(1000, {"num_classes": 200, "seed": 0})
  >>> a.size, bool(np.isin(a, b).all())
  (100, True)
  """
  if isinstance(spec, Mapping):
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown or "num_classes" not in spec:
      raise ValueError(f"class_subset: got keys {sorted(spec)}; give {{'num_classes': C, "
                       f"'seed': s}} (seed optional, default 0) or a list of class ids")
    count = _int(spec["num_classes"], "num_classes")
    seed = _int(spec.get("seed", 0), "seed")
    if seed < 0:
      raise ValueError(f"class_subset: seed must be a non-negative int, got {seed}")
    if not 1 <= count <= total:
      raise ValueError(f"class_subset: num_classes must lie in [1, {total}] (the dataset has "
                       f"{total} classes), got {count}")
    return np.sort(np.random.default_rng(seed).permutation(total)[:count]).astype(np.int32)
  if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
    raise ValueError(f"class_subset must be {{'num_classes': C, 'seed': s}} or a list of class "
                     f"ids, got {spec!r}")
  ids = [_int(v, "every class id") for v in spec]
  if not ids:
    raise ValueError("class_subset: the list of class ids is empty; name at least one class")
  if len(set(ids)) != len(ids):
    raise ValueError(f"class_subset: class ids repeat in {ids}; list each class once")
  bad = [v for v in ids if not 0 <= v < total]
  if bad:
    raise ValueError(f"class_subset: class ids {bad} lie outside [0, {total}) (the dataset has "
                     f"{total} classes)")
  return np.sort(np.asarray(ids, np.int32))


def subset_size(total: int, spec: Mapping[str, Any] | Sequence[int] | None) -> int:
  """The class count after applying ``spec`` (``total`` when ``spec`` is None).

  >>> subset_size(1000, None), subset_size(1000, {"num_classes": 100}), subset_size(5, [0, 3])
  (1000, 100, 2)
  """
  return total if spec is None else int(choose_classes(total, spec).size)


class ClassSubsetSource:
  """The examples of ``base`` whose label is in ``classes``, relabelled 0..C-1 (sorted ids).

  Attributes: ``classes`` (the kept original ids, sorted; new label k is original id
  ``classes[k]``), ``labels`` (new labels of the kept examples, in base order), and the
  Source attributes; ``name`` is the base's name (its normalisation applies).
  """

  def __init__(self, base: Source, classes: Sequence[int] | np.ndarray):
    classes = np.asarray(classes)
    total = int(base.num_classes)
    self.classes = choose_classes(total, [int(c) for c in classes.tolist()])
    to_new = np.full(total, -1, np.int32)
    to_new[self.classes] = np.arange(self.classes.size, dtype=np.int32)
    base_labels = source_labels(base)
    self._index = np.flatnonzero(to_new[base_labels] >= 0)
    self.labels = to_new[base_labels[self._index]]
    self._base = base
    self.num_classes = int(self.classes.size)
    self.image_shape = tuple(base.image_shape)
    self.name = base.name
    names = getattr(base, "label_names", None)
    self.label_names = tuple(names[c] for c in self.classes) if names else None

  def __len__(self) -> int:
    return int(self._index.size)

  def get_batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
    idx = check_indices(indices, len(self))
    return {"image": self._base.get_batch(self._index[idx])["image"], "label": self.labels[idx]}

  def __repr__(self) -> str:
    return f"ClassSubsetSource({self.name!r}, {self.num_classes} of {self._base.num_classes} classes)"
