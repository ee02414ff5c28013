"""Checkpoints with Orbax: periodic, keep-last-N, best-by-metric, resume, preemption.

Layout under ``<workdir>/checkpoints/<step>/``: ``state`` (the TrainState pytree,
``StandardSave``: arrays restore with the sharding of the abstract state passed to
:meth:`Checkpointer.restore`) and ``meta`` (JSON: loop bookkeeping such as the
best metric so far). The step of a checkpoint is the number of optimizer updates
done, so the data pipeline resumes with ``Pipeline.batches(start_step=step)``.

Kept: the latest ``keep`` checkpoints plus the best one by ``best_metric``
(``orbax`` preservation policies ``LatestN`` + ``BestN``). Orbax writes each
checkpoint to a temporary folder and renames it when complete, so a run killed in
the middle of a save leaves the previous checkpoint intact.

:class:`SignalGuard` turns SIGTERM/SIGINT into a flag the loop polls after every
step; the loop then saves and raises :class:`Interrupted`.
"""

from __future__ import annotations

import logging
import os
import pathlib
import signal
import threading
from collections.abc import Mapping
from typing import Any

import orbax.checkpoint as ocp

STATE_ITEM = "state"   # the TrainState item of a checkpoint step (also read by .init_from)
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
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=(STATE_ITEM, _META))

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
    """
    step = self.latest_step() if step is None else step
    if step is None:
      return None
    restored = self._manager.restore(step, args=ocp.args.Composite(**{
        STATE_ITEM: ocp.args.StandardRestore(abstract_state), _META: ocp.args.JsonRestore()}))
    return restored[STATE_ITEM], dict(restored[_META] or {})

  def best_step(self) -> int | None:
    """The step of the best checkpoint by ``best_metric`` (None if none has metrics)."""
    if not self.best_metric:
      return None
    return self._manager.best_step()

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


class Interrupted(Exception):
  """Raised by the loop after it saved a checkpoint in response to SIGTERM/SIGINT."""

  def __init__(self, signum: int, step: int):
    self.signum = signum
    self.step = step
    super().__init__(f"training interrupted by {signal.Signals(signum).name} at step {step}; "
                     "a checkpoint was saved: run the same command again to resume")


class SignalGuard:
  """Context manager: SIGTERM/SIGINT set :attr:`signum` instead of killing the run.

  A second signal of the same kind while the first is being handled falls back to
  the default behaviour, so Ctrl-C twice still stops a stuck save. Outside the main
  thread (where Python cannot install handlers) it does nothing.

  >>> with SignalGuard() as guard:
  ...   guard.requested
  False
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

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
