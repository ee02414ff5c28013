"""One run per workdir: the lock, the config check on resume, and the log cut back on resume.

:func:`claim` (used by :func:`~disc_jax.train.loop.train_and_evaluate` around the whole run)

* takes ``<workdir>/.lock`` (JSON: host, pid, since), created with ``O_CREAT | O_EXCL``.
  A second run on a locked workdir raises :class:`WorkdirLocked` naming the holder. The
  holder touches the file every :data:`HEARTBEAT_S`; a lock left by a dead process of
  this host, not touched for :data:`STALE_S` (a holder on another host that was
  killed), or empty/unreadable for :data:`TORN_S` (its writer died before writing it),
  is taken over with a warning. A ``--workdir`` that is a file raises :class:`WorkdirError`. The lock is removed when the run ends, also on
  an exception. Only process 0 of a multi-process run takes it (the others share that
  run).
* on a workdir that holds checkpoints, compares their ``config.json`` with this run's
  config (:func:`config_differences`) and raises :class:`ConfigMismatch` when they differ
  in a field that changes results, or when ``config.json`` is missing or unreadable (the
  checkpoints cannot be checked, so they are not resumed). Safe to change on resume (:data:`RESUME_KEYS`): the
  training length (``num_epochs``, ``num_steps``; a schedule that depends on the total
  number of steps, e.g. cosine, is then rebuilt for the new total), and every field of
  :data:`IGNORED_KEYS` (logging, evaluation and checkpoint cadence, devices, data paths,
  plots).
* ``config.json`` always holds the config the run STARTED with: it is written on a fresh
  run only. A resume that changed an allowed field appends
  ``{"step": s, "changed": {key: [old, new]}}`` to ``config_history.jsonl``.

:func:`trim_metrics` cuts ``metrics.jsonl`` back to the step a run resumes from, so the
log holds each step once.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import pathlib
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import ml_collections

from disc_jax.train.config import ConfigError, get_config, to_plain

CONFIG_JSON = "config.json"
CONFIG_HISTORY = "config_history.jsonl"
LOCK = ".lock"
# Fields that do not change what a run computes: a resumed run may differ in them.
IGNORED_KEYS = ("log_every", "checkpoint_every", "keep_checkpoints", "eval_every",
                "num_devices", "distributed", "dataset.data_dir", "dataset.manual_dir",
                "final_eval.plot")
# Also safe to change when resuming: train longer (or shorter).
RESUME_KEYS = IGNORED_KEYS + ("num_epochs", "num_steps")
HEARTBEAT_S = 60.0    # the holder touches the lock this often
STALE_S = 600.0       # a lock untouched this long is stale, whichever host holds it
TORN_S = 5.0          # an empty or unreadable lock this old is stale (its writer died)

log = logging.getLogger(__name__)


class WorkdirError(RuntimeError):
  """A workdir cannot be used for this run; the message says why and what to do."""


class WorkdirLocked(WorkdirError):
  """Another run holds the workdir's lock."""


class ConfigMismatch(WorkdirError, ValueError):
  """The workdir holds a run of a config that differs in a field that changes results."""


# ---------------------------------------------------------------- config comparison

def json_plain(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as config.json stores it (tuples -> lists, odd values -> str)."""
  return json.loads(json.dumps(to_plain(config), default=str))


def flat_items(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
  """Dotted ``(key, leaf)`` pairs of a nested dict (empty dicts are leaves)."""
  if isinstance(tree, dict) and tree:
    for key, value in tree.items():
      yield from flat_items(value, f"{prefix}{key}.")
  else:
    yield prefix[:-1], tree


def config_differences(saved: Mapping[str, Any], config: ml_collections.ConfigDict, *,
                       ignored: tuple[str, ...] = IGNORED_KEYS) -> list[str]:
  """The dotted keys where ``saved`` (a config.json) and ``config`` differ (``ignored`` aside).

  A key missing from ``saved`` while ``config`` has the schema's default there is no
  difference: the field was added to the schema after that run was saved, and its
  default changes nothing (so older runs stay resumable).

  >>> c = get_config()
  >>> saved = json_plain(c); saved["batch_size"] = 7; saved["log_every"] = 1
  >>> del saved["init_from"]
  >>> config_differences(saved, c)
  ['batch_size']
  """
  want = dict(flat_items(json_plain(config)))
  got = dict(flat_items(dict(saved)))
  defaults = dict(flat_items(json_plain(get_config())))
  keys = sorted(set(want) | set(got))
  skip = lambda k: any(k == i or k.startswith(i + ".") for i in ignored)  # noqa: E731
  new_default = lambda k: k not in got and k in defaults and want.get(k) == defaults[k]  # noqa: E731
  return [k for k in keys if not skip(k) and not new_default(k)
          and want.get(k, "<absent>") != got.get(k, "<absent>")]


def has_checkpoints(workdir: pathlib.Path) -> bool:
  folder = workdir / "checkpoints"
  return folder.is_dir() and any(p.name.isdigit() for p in folder.iterdir())


def local_path(workdir: str | os.PathLike) -> pathlib.Path:
  """``workdir`` as an absolute local path; a URL (``gs://...``) raises :class:`ConfigError`:
  the run writes its workdir with local file operations (lock, logs, config)."""
  if "://" in str(workdir):
    raise ConfigError(f"workdir {str(workdir)!r} is a URL; the run writes its workdir with "
                      "local file operations, so pass a local path or a mounted one (NFS, or "
                      "a bucket mounted with gcsfuse) that every host sees")
  return pathlib.Path(workdir).expanduser().absolute()


def check_config(workdir: pathlib.Path, config: ml_collections.ConfigDict) -> dict[str, list]:
  """Raises :class:`ConfigMismatch` if ``workdir`` holds checkpoints of another config;
  returns the allowed changes ``{key: [saved, new]}`` (empty on a fresh run)."""
  path = workdir / CONFIG_JSON
  if not has_checkpoints(workdir):
    return {}
  fix = (f"restore {path} from a backup, or delete {workdir} (or its checkpoints folder) to "
         "start again")
  if not path.exists():
    raise ConfigMismatch(f"{workdir} holds checkpoints but no {CONFIG_JSON}, so they cannot be "
                         f"checked against this run's config; {fix}")
  try:
    saved = json.loads(path.read_text())
  except ValueError as e:
    raise ConfigMismatch(f"{path} does not read back ({e}), so the checkpoints in {workdir} "
                         f"cannot be checked against this run's config; {fix}") from None
  if not isinstance(saved, dict):
    raise ConfigMismatch(f"{path} holds no config (a JSON {type(saved).__name__}); {fix}")
  diff = config_differences(saved, config, ignored=RESUME_KEYS)
  want, got = dict(flat_items(json_plain(config))), dict(flat_items(saved))
  if diff:
    shown = "; ".join(f"{k}: {got.get(k, '<absent>')!r} -> {want.get(k, '<absent>')!r}"
                      for k in diff[:8])
    raise ConfigMismatch(
        f"{workdir} holds checkpoints of a run whose config differs from this one in "
        f"{len(diff)} field(s) that change results ({shown}{' ...' if len(diff) > 8 else ''}); "
        f"resuming would mix two runs. Pass another workdir (with "
        f"--config.init_from={workdir} to start from its latest weights), or delete {workdir} "
        f"to start again (only {', '.join(RESUME_KEYS)} may change on resume)")
  allowed = config_differences(saved, config, ignored=())
  return {k: [got.get(k), want.get(k)] for k in allowed}


def record_config(workdir: pathlib.Path, config: ml_collections.ConfigDict,
                  changed: Mapping[str, list], step: int) -> None:
  """Writes ``config.json`` on a fresh run, or appends a resume's changes to the history."""
  if not (workdir / CONFIG_JSON).exists() or not has_checkpoints(workdir):
    (workdir / CONFIG_JSON).write_text(json.dumps(to_plain(config), indent=2, default=str))
  elif changed:
    with open(workdir / CONFIG_HISTORY, "a", encoding="utf-8") as f:
      f.write(json.dumps({"step": int(step), "changed": dict(changed)}, default=str) + "\n")


# ---------------------------------------------------------------- the lock

def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:   # another user's live process
    return True
  return True


class WorkdirLock:
  """``<workdir>/.lock`` held by this process (see the module docstring)."""

  def __init__(self, workdir: str | os.PathLike):
    self.path = pathlib.Path(workdir) / LOCK
    self.held = False
    self._stop = threading.Event()

  def acquire(self) -> None:
    me = {"host": socket.gethostname(), "pid": os.getpid(),
          "since": datetime.datetime.now().isoformat(timespec="seconds")}
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
      except FileExistsError:
        holder = self._holder()
        dead = (holder.get("host") == me["host"] and isinstance(holder.get("pid"), int)
                and not _alive(holder["pid"]))
        age = time.time() - self._touched()
        silent = age > STALE_S
        torn = not holder and age > TORN_S     # its writer died between create and write
        if dead or silent or torn:
          log.warning("taking over the stale lock %s of process %s on %s (%s) since %s",
                      self.path, holder.get("pid"), holder.get("host"),
                      "no longer running" if dead else "unreadable" if torn
                      else f"untouched for over {STALE_S:.0f} s",
                      holder.get("since"))
          self.path.unlink(missing_ok=True)
          continue
        raise WorkdirLocked(
            f"{self.path.parent} is in use by another run (host {holder.get('host', '?')}, pid "
            f"{holder.get('pid', '?')}, since {holder.get('since', '?')}); wait for it to end, "
            f"pass another workdir, or, if that run is gone, delete {self.path}") from None
      with os.fdopen(fd, "w") as f:
        json.dump(me, f)
      self.held = True
      threading.Thread(target=self._heartbeat, daemon=True, name="workdir-lock").start()
      return
    raise WorkdirLocked(f"could not take the lock {self.path}; delete it if no run uses it")

  def _touched(self) -> float:
    try:
      return self.path.stat().st_mtime
    except OSError:
      return time.time()

  def _heartbeat(self) -> None:
    while not self._stop.wait(HEARTBEAT_S):
      with contextlib.suppress(OSError):
        os.utime(self.path)

  def _holder(self) -> dict[str, Any]:
    try:
      value = json.loads(self.path.read_text())
      return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
      return {}

  def release(self) -> None:
    self._stop.set()
    if self.held and self._holder().get("pid") == os.getpid():
      self.path.unlink(missing_ok=True)
    self.held = False

  def __enter__(self) -> WorkdirLock:
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()


@contextlib.contextmanager
def claim(workdir: pathlib.Path, config: ml_collections.ConfigDict, *, lead: bool
          ) -> Iterator[dict[str, list]]:
  """The workdir for one run: locked (by process 0), config checked; yields the allowed
  config changes of a resume (for :func:`record_config`)."""
  if not lead:   # every process checks the config, so all of them stop alike
    yield check_config(workdir, config)
    return
  if workdir.exists() and not workdir.is_dir():
    raise WorkdirError(f"--workdir {workdir} is a file, not a folder; pass a folder (it is "
                       "created when missing)")
  workdir.mkdir(parents=True, exist_ok=True)
  with WorkdirLock(workdir):
    yield check_config(workdir, config)


# ---------------------------------------------------------------- the log on resume

def trim_metrics(workdir: pathlib.Path, step: int) -> int:
  """Keeps the ``metrics.jsonl`` rows a run resuming at ``step`` will not write again:
  train/eval rows up to ``step`` and final rows before it. Returns the rows dropped."""
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return 0
  lines = path.read_text(encoding="utf-8").splitlines()
  kept = []
  for line in lines:
    try:
      row = json.loads(line)
    except ValueError:   # a line cut short by a crash
      continue
    s = int(row.get("step", 0))
    if s < step or (s == step and row.get("split") != "final"):
      kept.append(line)
  if len(kept) != len(lines):
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    os.replace(tmp, path)
  return len(lines) - len(kept)



def read_json(path: pathlib.Path) -> dict[str, Any]:
  """The JSON object in ``path``, or {} when it is missing or unreadable."""
  try:
    value = json.loads(path.read_text())
  except (OSError, ValueError):
    return {}
  return value if isinstance(value, dict) else {}


def restart_hint(workdir: pathlib.Path, steps: list[int]) -> str:
  """How to go on after a non-finite stop, given the checkpoint steps kept in ``workdir``."""
  fresh = f"delete {workdir} to start from scratch"
  if not steps:
    return f"nothing was checkpointed; {fresh} (with another learning rate or weights)"
  folder = workdir / "checkpoints"
  later = " ".join(str(folder / str(s)) for s in steps[1:])
  return (f"no checkpoint holds a non-finite value: the latest is {folder / str(steps[-1])} "
          f"(kept: steps {steps}). The same command resumes from it and will likely meet "
          f"the same value; to go on with another config, train in a new workdir with "
          f"--config.init_from={folder / str(steps[-1])} (model weights only), or "
          + (f"resume from the earliest kept step {steps[0]} after deleting {later}, or "
             if len(steps) > 1 else "") + fresh)
