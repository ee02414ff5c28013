"""Metric logging: a JSONL file, TensorBoard event files, a progress bar, a summary.

``<workdir>/metrics.jsonl`` gets one JSON object per write, ``{"step": s,
"split": "train"|"eval"|"final", "time": seconds since start, <metric>: value}``;
TensorBoard event files (``tensorboardX``, no TensorFlow needed) go to
``<workdir>/tensorboard`` with tags ``<split>/<metric>``. The tqdm progress bar
shows steps/s and the latest losses. Only process 0 writes in a multi-host run.
"""

from __future__ import annotations

import contextlib
import json
import math
import pathlib
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import tqdm

_BAR_KEYS = ("loss", "accuracy")


def _scalar(value: Any) -> float | None:
  try:
    arr = np.asarray(value)
  except Exception:  # noqa: BLE001 - anything not array-like is skipped
    return None
  if arr.size != 1 or not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
    return None
  return float(arr.reshape(()))


def scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
  """The scalar entries of ``metrics`` as Python floats (arrays of size 1 included)."""
  out = {}
  for key, value in metrics.items():
    v = _scalar(value)
    if v is not None:
      out[key] = v
  return out


class MetricLogger:
  """Writes metrics to JSONL + TensorBoard and drives a tqdm progress bar."""

  def __init__(self, workdir: str | pathlib.Path, *, total_steps: int, initial_step: int = 0,
               enabled: bool = True, progress: bool = True, bar_keys: tuple[str, ...] = ()):
    self.workdir = pathlib.Path(workdir)
    self.enabled = enabled
    self._start = time.time()
    self._jsonl = None
    self._tb = None
    self._bar = None
    self._bar_keys = tuple(bar_keys) or _BAR_KEYS
    if not enabled:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    self._jsonl = open(self.workdir / "metrics.jsonl", "a", encoding="utf-8")  # noqa: SIM115
    from tensorboardX import SummaryWriter  # imported lazily: slow import

    # TensorBoard hides the earlier events of the steps a resumed run does again.
    self._tb = SummaryWriter(str(self.workdir / "tensorboard"), purge_step=initial_step + 1)
    if progress:
      self._bar = tqdm.tqdm(total=total_steps, initial=initial_step, unit="step",
                            dynamic_ncols=True, file=sys.stderr, leave=True,
                            mininterval=0.5, smoothing=0.1)

  def write(self, step: int, metrics: Mapping[str, Any], *, split: str = "train") -> dict:
    """Writes the scalar entries of ``metrics`` at ``step``; returns them as floats."""
    values = scalars(metrics)
    if not self.enabled:
      return values
    record = {"step": int(step), "split": split, "time": round(time.time() - self._start, 3)}
    record.update({k: (v if math.isfinite(v) else str(v)) for k, v in values.items()})
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    for key, value in values.items():
      self._tb.add_scalar(f"{split}/{key}", value, int(step))
    self._tb.flush()
    return values

  def progress(self, step: int, metrics: Mapping[str, Any] | None = None) -> None:
    """Moves the bar to ``step`` and shows the chosen entries of ``metrics``."""
    if self._bar is None:
      return
    self._bar.update(max(0, int(step) - self._bar.n))
    if metrics:
      shown = {k: f"{v:.4g}" for k, v in scalars(metrics).items()
               if k in self._bar_keys or k.startswith("loss/")}
      self._bar.set_postfix(shown, refresh=False)

  def message(self, text: str) -> None:
    """Prints a line without breaking the progress bar."""
    if not self.enabled:
      return
    if self._bar is not None:
      self._bar.write(text, file=sys.stderr)
    else:
      print(text, file=sys.stderr)

  def summary(self, metrics: Mapping[str, Any], *, title: str = "final metrics") -> str:
    """Writes the final metrics (split 'final') and prints an aligned table of them."""
    values = scalars(metrics)
    if self._bar is not None:  # finish the bar first so the table is not redrawn over
      self._bar.close()
      self._bar = None
    if self.enabled:
      step = int(values.get("step", 0))
      self.write(step, values, split="final")
    width = max((len(k) for k in values), default=0)
    lines = [f"== {title} ({time.time() - self._start:.1f} s) =="]
    lines += [f"  {k:<{width}}  {v:.6g}" for k, v in sorted(values.items())]
    text = "\n".join(lines)
    self.message(text)
    return text

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None
    if self._tb is not None:
      tb, self._tb = self._tb, None
      writers = list((tb.all_writers or {}).values())
      try:
        tb.close()
      except OSError:   # e.g. disk full: give the writers up, or tensorboardX retries the
        for w in writers:   # flush at exit and its worker thread dies with a traceback
          with contextlib.suppress(Exception):
            w.event_writer._worker.stop()
          w.event_writer._closed = True
        raise
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None

  def __enter__(self) -> MetricLogger:
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def median_step_seconds(workdir: str | pathlib.Path) -> float | None:
  """Median wall time per train step of a run, read back from its ``metrics.jsonl``.

  For runs finished before ``train_and_evaluate`` reported ``median_step_s`` itself (it
  times every step; this reads only the logged ones).

  The step time between consecutive train log lines (``Δtime / Δstep``). The compile
  falls in the first line's own time (since the start), never in a difference; an
  interval across a resume (``time`` restarts) is dropped when its Δtime is not positive,
  and the median outvotes the rest of such intervals and those holding a periodic
  evaluation. Unlike the loop's wall time it counts no compilation, evaluation or paused
  process, so it is the figure to compare objectives' cost by. None when fewer than two
  intervals were logged.
  """
  path = pathlib.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return None
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  rows = [r for r in rows if r.get("split") == "train"]
  per_step = [(cur["time"] - prev["time"]) / (cur["step"] - prev["step"])
              for prev, cur in zip(rows, rows[1:])
              if cur["time"] > prev["time"] and cur["step"] > prev["step"]]
  return float(np.median(per_step)) if len(per_step) >= 2 else None
