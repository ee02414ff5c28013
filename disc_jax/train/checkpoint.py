"""Checkpoints with Orbax: periodic, keep-last-N, best-by-metric, resume, preemption,
and ``config.init_from`` (a run started from another run's model weights).

Layout under ``<workdir>/checkpoints/<step>/``: ``state`` (the TrainState pytree,
``StandardSave``: arrays restore with the sharding of the abstract state passed to
:meth:`Checkpointer.restore`) and ``meta`` (JSON: loop bookkeeping such as the
best metric so far). The step of a checkpoint is the number of optimizer updates
done, so the data pipeline resumes with ``Pipeline.batches(start_step=step)``.

Kept: the latest ``keep`` checkpoints plus the best one by ``best_metric``
(``orbax`` preservation policies ``LatestN`` + ``BestN``). Orbax writes each
checkpoint to a temporary folder and renames it when complete, so a run killed in
the middle of a save leaves the previous checkpoint intact; a step whose state does not
read back is moved aside (``<step>.corrupt``) and the previous one restored.

:class:`SignalGuard` turns SIGTERM/SIGINT into a flag the loop polls after every
step; the loop then saves and raises :class:`Interrupted`.
"""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from disc_jax.train.config import ConfigError
from disc_jax.train.state import (  # noqa: F401 - flatten/merge_variables re-exported
    COLLECTIONS, flatten, merge_variables)

STATE_ITEM = "state"   # the TrainState item of a checkpoint step
_META = "meta"


class _NoMetricsWarning(logging.Filter):
  """Drops Orbax's warning for periodic saves made without eval metrics (expected here)."""

  def filter(self, record: logging.LogRecord) -> bool:
    return "did not provide metrics" not in record.getMessage()


logging.getLogger("absl").addFilter(_NoMetricsWarning())


class Checkpointer:
  """A thin wrapper over ``ocp.CheckpointManager`` for one training run."""

  def __init__(self, directory: str | os.PathLike, *, keep: int = 2,
               best_metric: str | None = None, best_mode: str = "max"):
    if keep < 1:
      raise ValueError(f"keep_checkpoints must be >= 1, got {keep}")
    if best_mode not in ("max", "min"):
      raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
    self.directory = pathlib.Path(directory).expanduser().absolute()  # Orbax needs absolute paths
    _quiet_late_io()
    self.best_metric = best_metric
    self._best_is_min = best_mode == "min"
    policies: list[Any] = [ocp.checkpoint_managers.LatestN(n=keep)]
    if best_metric:
      policies.append(ocp.checkpoint_managers.BestN(
          get_metric_fn=lambda m: float(m[best_metric]), reverse=best_mode == "min", n=1,
          keep_checkpoints_without_metrics=False))
    # best_fn is also set so that Orbax stores the metrics with each checkpoint
    # (it only writes them when best_fn is given); what is kept is decided by the
    # explicit preservation policy.
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        best_fn=(lambda m: float(m[best_metric])) if best_metric else None,
        best_mode=best_mode, keep_checkpoints_without_metrics=False,
        create=True, enable_async_checkpointing=True)
    try:
      self._manager = ocp.CheckpointManager(self.directory, options=options,
                                            item_names=(STATE_ITEM, _META))
    except (ValueError, OSError) as e:   # a step's metadata or metrics file is damaged
      steps = sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())
      raise CorruptCheckpoint(
          f"the checkpoints in {self.directory} do not read back ({type(e).__name__}: "
          f"{str(e)[:200]}); move the damaged step folder aside (steps: {steps}; most likely "
          f"the latest, {self.directory / str(steps[-1]) if steps else '-'}) and run again, "
          f"or delete {self.directory} to start from scratch") from e

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, *, meta: Mapping[str, Any] | None = None,
           metrics: Mapping[str, float] | None = None) -> bool:
    """Saves ``state`` at ``step`` (asynchronously; :meth:`wait` blocks until done).

    ``metrics`` (the eval metrics of this step, if any) decide the best checkpoint;
    a step that is already saved is skipped (returns False).
    """
    step = int(step)
    if step in self._manager.all_steps():
      return False
    if metrics is not None and self.best_metric and self.best_metric not in metrics:
      raise ValueError(f"best_metric {self.best_metric!r} is not among the eval metrics "
                       f"{sorted(metrics)}; set config.best_metric to one of them")
    args = ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardSave(state),
                                 _META: ocp.args.JsonSave(dict(meta or {}))})
    return self._manager.save(step, args=args, force=True,
                              metrics=None if metrics is None else
                              {k: float(v) for k, v in metrics.items()})

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict] | None:
    """Restores ``(state, meta)`` at ``step`` (default: the latest), or None if none.

    ``abstract_state`` is a pytree of ``jax.ShapeDtypeStruct`` with shardings (e.g.
    ``jax.eval_shape`` of the init with ``sharding`` set) or of concrete arrays.
    Without ``step``, a checkpoint that does not read back is moved aside to
    ``<step>.corrupt`` with a warning naming it, and the previous step is tried; when
    none reads back (or ``step`` does not), :class:`CorruptCheckpoint` is raised.
    """
    steps = [step] if step is not None else sorted(self._manager.all_steps(), reverse=True)
    for s in steps:
      try:
        restored = self._manager.restore(s, args=ocp.args.Composite(**{
            STATE_ITEM: ocp.args.StandardRestore(abstract_state), _META: ocp.args.JsonRestore()}))
        return restored[STATE_ITEM], dict(restored[_META] or {})
      except Exception as e:  # noqa: BLE001 - whatever Orbax raises on a damaged step
        if step is not None or s == steps[-1]:
          raise CorruptCheckpoint(
              f"the checkpoint {self.directory / str(s)} does not read back ({type(e).__name__}: "
              f"{str(e)[:300]}) and no earlier step does; delete {self.directory} to start "
              "from scratch, or restore that folder from a backup") from e
        aside = next(self.directory / f"{s}.corrupt{i or ''}" for i in range(1000)
                     if not (self.directory / f"{s}.corrupt{i or ''}").exists())
        logging.warning("checkpoint %s does not read back (%s: %s); moved it to %s and "
                        "resuming from the previous step", self.directory / str(s),
                        type(e).__name__, str(e)[:200], aside)
        if jax.process_index() == 0:
          os.replace(self.directory / str(s), aside)
        if jax.process_count() > 1:
          from jax.experimental import multihost_utils  # noqa: PLC0415
          multihost_utils.sync_global_devices(f"disc_jax corrupt checkpoint {s}")
        self._manager.reload()
    return None

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def _quiet_late_io() -> None:
  """After a failed restore or save (a damaged checkpoint, a full disk), the reads and
  writes still in flight complete on tensorstore's threads into Orbax's closed event
  loop, and Python prints each as an 'Event loop is closed' traceback, dozens of them
  around the one message that matters. This drops exactly those (RuntimeError 'Event
  loop is closed' reported as unraisable); anything else still reaches the previous hook."""
  previous = sys.unraisablehook
  if getattr(previous, "_disc_jax_quiet", False):
    return

  def hook(unraisable) -> None:
    exc = unraisable.exc_value
    if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
      return
    previous(unraisable)

  hook._disc_jax_quiet = True
  sys.unraisablehook = hook


class CorruptCheckpoint(RuntimeError):
  """No checkpoint of the run reads back; the message names it and what to do."""


class Interrupted(Exception):
  """Raised by the loop after it saved a checkpoint in response to SIGTERM/SIGINT."""

  def __init__(self, signum: int, step: int):
    self.signum = signum
    self.step = step
    super().__init__(f"training interrupted by {signal.Signals(signum).name} at step {step}; "
                     "a checkpoint was saved: run the same command again to resume")


class SignalGuard:
  """Context manager: SIGTERM/SIGINT/SIGHUP set :attr:`signum` instead of killing the run
  (SIGHUP: the terminal of a run started without ``nohup`` was closed).

  A second signal of the same kind while the first is being handled falls back to
  the default behaviour, so Ctrl-C twice still stops a stuck save. Outside the main
  thread (where Python cannot install handlers) it does nothing.

  >>> with SignalGuard() as guard:
  ...   guard.requested
  False
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

  def __init__(self):
    self.signum: int | None = None
    self._previous: dict[int, Any] = {}

  @property
  def requested(self) -> bool:
    return self.signum is not None

  def _handle(self, signum, frame):  # noqa: ARG002
    if self.signum is not None:  # second signal: restore the default and re-raise
      signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
      signal.raise_signal(signum)
      return
    self.signum = signum

  def __enter__(self) -> SignalGuard:
    if threading.current_thread() is threading.main_thread():
      for sig in self.SIGNALS:
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()

# ---------------------------------------------------------------- config.init_from
# The group softmax paper fine-tunes ImageNet-trained networks on Food-101 (Sec. 4.3).
# initialize() copies a checkpoint's params and batch_stats (Orbax partial restore, as host
# arrays placed with the fresh state's shardings) into a fresh TrainState; step, optimizer
# state, loss params and PRNG key stay fresh. ``path``: a run's workdir, its checkpoints
# folder (the latest step) or one step's folder. ``skip``: parameter paths kept at their
# fresh init (e.g. 'head' when the class count differs), matching a path or below it.


def find_checkpoint(path: str | os.PathLike) -> pathlib.Path:
  """The ``<step>/state`` folder that ``path`` (workdir, checkpoints folder or step) names.

  Raises ConfigError (a ValueError) when ``path`` does not exist or holds no complete
  checkpoint.
  """
  root = pathlib.Path(path).expanduser().absolute()
  if not root.is_dir():
    raise ConfigError(f"config.init_from: {root} is not a directory; point it at a disc_jax "
                     "run's workdir, its checkpoints folder or one checkpoint step's folder")
  if (root / STATE_ITEM).is_dir():
    return root / STATE_ITEM
  folder = root / "checkpoints" if (root / "checkpoints").is_dir() else root
  steps = [int(p.name) for p in folder.iterdir()
           if p.name.isdigit() and (p / STATE_ITEM).is_dir()]
  if not steps:
    raise ConfigError(f"config.init_from: no checkpoint under {root} (looked for "
                     f"{folder}/<step>/{STATE_ITEM}); train that run first, or point init_from at "
                     "a disc_jax run's workdir, its checkpoints folder or one step's folder")
  return folder / str(max(steps)) / STATE_ITEM


def load_model_variables(path: str | os.PathLike) -> dict[str, Any]:
  """``{'params': ..., 'batch_stats': ...}`` of the checkpoint ``path`` names, as numpy."""
  state_dir = find_checkpoint(path)
  tree = ocp.PyTreeCheckpointHandler().metadata(epath.Path(state_dir)).tree
  missing = [c for c in COLLECTIONS if c not in tree]
  if missing:
    raise ConfigError(f"config.init_from: {state_dir} has no {missing} (it holds {sorted(tree)}); "
                     "it is not a disc_jax TrainState checkpoint")
  item = {c: tree[c] for c in COLLECTIONS}
  restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
  checkpointer = ocp.PyTreeCheckpointer()
  try:
    return checkpointer.restore(state_dir, args=ocp.args.PyTreeRestore(
        item=item, restore_args=restore_args, partial_restore=True))
  finally:
    checkpointer.close()


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