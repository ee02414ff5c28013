"""``config.init_from``: start a run from the model weights of another run's checkpoint.

The group softmax paper fine-tunes ImageNet-trained networks on Food-101 (Table 2's
fine-tune columns: "CNNs are first pre-trained on ImageNet by the standard softmax loss
and then the identical pre-trained CNNs are fine-tuned ... by the methods (losses)",
group_softmax_loss.txt, Sec. 4.3). :func:`initialize` copies the model's ``params`` and
``batch_stats`` from a checkpoint of :mod:`.checkpoint` into a freshly initialised
:class:`~.state.TrainState`; everything else (step 0, optimizer and plateau state, the
losses' own params, the PRNG key) stays fresh, so the run trains as if from scratch but
from the loaded weights. A resumed run does not call it: its own checkpoint wins.

``path`` may be a run's workdir, its ``checkpoints`` folder (the latest step is read,
i.e. the run's final model), or one step's folder (``checkpoints/<step>``). Only the
two model collections are read (Orbax partial restore), as host numpy arrays, then
placed with the shardings of the fresh state, so the source run's device count does not
matter.

``skip`` names parameter paths that keep their fresh initialisation, e.g. ``('head',)``
when the class count differs (1000 ImageNet classes -> 101 Food-101 classes): an entry
matches a path equal to it or below it ('head' matches 'head/kernel' and 'head/bias').
Every other parameter must exist in both trees with the same shape; a mismatch raises
a ValueError naming the path and both shapes.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from disc_jax.train.checkpoint import STATE_ITEM

COLLECTIONS = ("params", "batch_stats")


def find_checkpoint(path: str | os.PathLike) -> pathlib.Path:
  """The ``<step>/state`` folder that ``path`` (workdir, checkpoints folder or step) names.

  Raises ValueError when ``path`` does not exist or holds no complete checkpoint.
  """
  root = pathlib.Path(path).expanduser().absolute()
  if not root.is_dir():
    raise ValueError(f"config.init_from: {root} is not a directory; point it at a disc_jax "
                     "run's workdir, its checkpoints folder or one checkpoint step's folder")
  if (root / STATE_ITEM).is_dir():
    return root / STATE_ITEM
  folder = root / "checkpoints" if (root / "checkpoints").is_dir() else root
  steps = [int(p.name) for p in folder.iterdir()
           if p.name.isdigit() and (p / STATE_ITEM).is_dir()]
  if not steps:
    raise ValueError(f"config.init_from: no checkpoint under {root} (looked for "
                     f"{folder}/<step>/{STATE_ITEM}); train that run first, or point init_from at "
                     "a disc_jax run's workdir, its checkpoints folder or one step's folder")
  return folder / str(max(steps)) / STATE_ITEM


def load_model_variables(path: str | os.PathLike) -> dict[str, Any]:
  """``{'params': ..., 'batch_stats': ...}`` of the checkpoint ``path`` names, as numpy."""
  state_dir = find_checkpoint(path)
  tree = ocp.PyTreeCheckpointHandler().metadata(epath.Path(state_dir)).tree
  missing = [c for c in COLLECTIONS if c not in tree]
  if missing:
    raise ValueError(f"config.init_from: {state_dir} has no {missing} (it holds {sorted(tree)}); "
                     "it is not a disc_jax TrainState checkpoint")
  item = {c: tree[c] for c in COLLECTIONS}
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
  checkpointer = ocp.PyTreeCheckpointer()
  try:
    return checkpointer.restore(state_dir, args=ocp.args.PyTreeRestore(
        item=item, restore_args=restore_args, partial_restore=True))
  finally:
    checkpointer.close()


def _path_str(key_path) -> str:
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in key_path)


def flatten(tree: Any) -> dict[str, Any]:
  """``{'a/b/c': leaf}`` of a nested dict tree.

  >>> sorted(flatten({"head": {"kernel": 1, "bias": 2}, "conv": {"bias": 3}}))
  ['conv/bias', 'head/bias', 'head/kernel']
  """
  return {_path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _skipped(path: str, skip: Sequence[str]) -> bool:
  return any(path == s or path.startswith(s.rstrip("/") + "/") for s in skip)


def merge_variables(target: Mapping[str, Any], loaded: Mapping[str, Any],
                    skip: Sequence[str] = ()) -> dict[str, Any]:
  """``target`` (fresh model variables) with every leaf not in ``skip`` taken from ``loaded``.

  Loaded leaves are numpy arrays of ``target``'s dtype; skipped leaves are ``target``'s own
  objects (so :func:`initialize` can keep them where they are).

  >>> t = {"params": {"head": {"kernel": np.zeros((2, 3))}, "conv": {"w": np.zeros(2)}}}
  >>> l = {"params": {"head": {"kernel": np.ones((2, 5))}, "conv": {"w": np.ones(2)}}}
  >>> out = merge_variables(t, l, skip=["head"])
  >>> out["params"]["conv"]["w"].tolist(), out["params"]["head"]["kernel"].shape
  ([1.0, 1.0], (2, 3))
  >>> merge_variables(t, l)  # doctest: +ELLIPSIS
  Traceback (most recent call last):
  ...
  ValueError: config.init_from: params/head/kernel has shape (2, 5) in the checkpoint but (2, 3) in this model; ...
  """
  skip = [str(s) for s in skip]
  for s in skip:
    if not s or not any(_skipped(p, [s]) for c in COLLECTIONS
                        for p in flatten(target.get(c, {}))):
      top = sorted(target.get("params", {}))
      raise ValueError(f"config.init_from_skip: {s!r} matches no parameter of this model; use "
                       f"a path such as one of its top-level modules {top}")
  out = {}
  for collection in COLLECTIONS:
    want = flatten(target.get(collection, {}))
    got = flatten(loaded.get(collection, {}))
    kept = {p for p in want if not _skipped(p, skip)}
    missing = sorted(kept - set(got))
    extra = sorted(p for p in set(got) - set(want) if not _skipped(p, skip))
    if missing or extra:
      raise ValueError(
          f"config.init_from: the checkpoint's {collection} do not match this model: missing "
          f"{missing[:6]}{' ...' if len(missing) > 6 else ''}, unexpected "
          f"{extra[:6]}{' ...' if len(extra) > 6 else ''}; use the same model (name and "
          "kwargs) as the checkpoint's run, or list the differing modules in init_from_skip")
    for p in sorted(kept):
      have, new = np.shape(got[p]), np.shape(want[p])
      if have != new:
        raise ValueError(
            f"config.init_from: {collection}/{p} has shape {have} in the checkpoint but {new} "
            f"in this model; use the same model and class count, or add "
            f"{p.split('/')[0]!r} to config.init_from_skip to keep its fresh initialisation")

    def pick(key_path, leaf, got=got, collection=collection):
      p = _path_str(key_path)
      return leaf if _skipped(p, skip) else np.asarray(got[p], dtype=np.dtype(leaf.dtype))

    out[collection] = jax.tree_util.tree_map_with_path(pick, target.get(collection, {}))
  return out


def initialize(state, path: str | os.PathLike, skip: Sequence[str] = ()):
  """``state`` with ``params``/``batch_stats`` loaded from ``path`` (see module docstring).

  Loaded arrays take the sharding of the leaves they replace; skipped leaves are kept.
  """
  target = {"params": state.params, "batch_stats": state.batch_stats}
  merged = merge_variables(target, load_model_variables(path), skip)

  def place(leaf, value):
    if value is leaf:   # skipped: the fresh initialisation stays
      return leaf
    return jax.make_array_from_callback(leaf.shape, leaf.sharding, lambda idx: value[idx])

  placed = jax.tree.map(place, target, merged)
  return state.replace(params=placed["params"], batch_stats=placed["batch_stats"])
