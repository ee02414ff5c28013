"""What the experiment entry points share: the runs a ``--config`` flag names, and turning a
stopped or failed run into one readable paragraph and an exit code."""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import logging
import os
import pathlib
import re
import signal
import sys
import tempfile
import threading
import traceback
import types
from collections.abc import Iterator, Sequence

import ml_collections
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags
from ml_collections.config_flags import config_path

from configs.base import parse_run
from disc_jax.data import CorruptDatasetError, DatasetNotPreparedError
from disc_jax.data.offline import CorruptFileError, MissingFileError
from disc_jax.train import Interrupted
from disc_jax.train.checkpoint import CorruptCheckpoint
from disc_jax.train.config import ConfigError
from disc_jax.train.step import DistributedSetupError
from disc_jax.train.workdir import WorkdirError

ERROR_LOG = "error.log"
_STOPS = (signal.SIGTERM, signal.SIGHUP)   # outside the loop: a message, exit 128 + signum
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EACCES, errno.EROFS, errno.EPERM)


class Stopped(Exception):
  """SIGTERM or SIGHUP outside the training loop (start-up, final evaluation)."""

  def __init__(self, signum: int):
    self.signum = signum
    super().__init__(signal.Signals(signum).name)


def _raise_stopped(signum, frame):  # noqa: ARG001
  raise Stopped(signum)


def _chain(e: BaseException) -> Iterator[BaseException]:
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    yield e
    e = e.__cause__ or e.__context__


def explain(e: BaseException, workdir: pathlib.Path | None) -> str | None:
  """One paragraph for an error a person can act on (None: a bug, keep the traceback)."""
  where = workdir or "the workdir"
  for c in _chain(e):
    if isinstance(c, (ConfigError, WorkdirError, CorruptCheckpoint, CorruptDatasetError,
                      DatasetNotPreparedError, MissingFileError, CorruptFileError,
                      DistributedSetupError)):
      return str(c)
    code = c.errno if isinstance(c, OSError) else None
    text = str(c)
    path = getattr(c, "filename", None) or where
    if code in _DISK_FULL or "No space left on device" in text or "Disk quota exceeded" in text:
      return (f"the disk is full: writing {path} failed ({text[:200]}). Free space there (old "
              f"checkpoints, other runs) or pass another --workdir; the same command then "
              "resumes from the latest complete checkpoint (a save cut short is discarded)")
    if code in _READ_ONLY or "Read-only file system" in text or "Permission denied" in text:
      return (f"cannot write {path} ({text[:200]}): the workdir is read-only or not yours. "
              "Pass a --workdir you can write to, or fix its permissions")
  return None


def _write_log(text: str, workdir: pathlib.Path | None) -> pathlib.Path | None:
  """Writes ``text`` to ``<workdir>/error.log``, else to a temporary file; returns where."""
  fallback = pathlib.Path(tempfile.gettempdir()) / f"disc_jax_error_{os.getpid()}.log"
  for path in ([workdir / ERROR_LOG] if workdir is not None else []) + [fallback]:
    try:
      path.write_text(text)
    except OSError:
      continue
    return path
  return None


class _BackgroundErrors(logging.Filter):
  """Keeps Orbax's ERROR records off stderr (a failed background save logs the same
  traceback from several threads); the failure reaches the main thread as an exception,
  explained in one paragraph, and the records go into the traceback file."""

  def __init__(self):
    super().__init__()
    self.records: list[str] = []

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.ERROR and "/orbax/" in record.pathname.replace(os.sep, "/"):
      text = record.getMessage()
      if record.exc_info:
        text += "\n" + "".join(traceback.format_exception(*record.exc_info))
      self.records.append(f"[{record.pathname}:{record.lineno}] {text}")
      return False
    return True


def _report(e: BaseException, text: str, workdir: pathlib.Path | None,
            background: Sequence[str] = ()) -> None:
  """Prints ``error: text``; the traceback goes to stderr with ``--verbosity=1``, else to
  ``<workdir>/error.log`` (or a temporary file when the workdir cannot take it). A
  config error's message is all there is to it: its traceback is not kept."""
  verbose = flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].value >= 1
  full = "".join(traceback.format_exception(e))
  if background:
    full += "\n\nErrors logged by background threads:\n" + "\n".join(background)
  if verbose:
    print(full, file=sys.stderr)
  where = None
  if not verbose and not isinstance(e, ConfigError):
    where = _write_log(full, workdir)
    if where is None:
      print(full, file=sys.stderr)
  print(f"error: {text}" + (f" (full traceback: {where})" if where else ""), file=sys.stderr)


@contextlib.contextmanager
def exit_on_stop(workdir: str | pathlib.Path | None = None) -> Iterator[None]:
  """Inside the block, a run stopped by a signal exits with ``128 + signum`` (its message
  says how to resume), one stopped by a non-finite value with 1, and one that failed in a
  way a person can fix (:func:`explain`: a config field that cannot run, an original data
  file missing or damaged, disk full, read-only workdir, a workdir in use or of another
  config, a corrupt checkpoint or prepared dataset, no cluster for ``config.distributed``)
  with 1 and one paragraph; the full traceback, with Orbax's background-thread errors,
  goes to ``<workdir>/error.log`` (to stderr with ``--verbosity=1``). Other errors keep
  their traceback: they are bugs. SIGTERM or SIGHUP outside the training loop (start-up,
  final evaluation) exits with ``128 + signum`` and a message instead of killing the
  process."""
  workdir = None if workdir is None else pathlib.Path(workdir).expanduser().absolute()
  main = threading.current_thread() is threading.main_thread()
  previous = {sig: signal.signal(sig, _raise_stopped) for sig in _STOPS} if main else {}
  verbose = flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].value >= 1
  background = _BackgroundErrors()
  handler = absl_logging.get_absl_handler()
  if not verbose:
    handler.addFilter(background)
  reported = False
  try:
    yield
  except Interrupted as e:
    print(e, file=sys.stderr)
    sys.exit(128 + e.signum)
  except (Stopped, KeyboardInterrupt) as e:
    signum = getattr(e, "signum", signal.SIGINT)
    print(f"stopped by {signal.Signals(signum).name} outside the training loop's own stop "
          "(start-up, final evaluation, or a second signal during a save): nothing after the "
          "latest complete checkpoint was lost; run the same command again to resume",
          file=sys.stderr)
    sys.exit(128 + signum)
  except FloatingPointError as e:
    print(f"stopped: {e}", file=sys.stderr)
    sys.exit(1)
  except Exception as e:  # noqa: BLE001 - explained or re-raised
    text = explain(e, workdir)
    if text is None:
      raise
    _report(e, text, workdir, background.records)
    reported = True
    sys.exit(1)
  finally:
    handler.removeFilter(background)
    if background.records and not reported:   # e.g. a save cut short by a second signal
      where = _write_log("\n\n".join(background.records), workdir)
      print(f"({len(background.records)} error(s) logged by Orbax's background threads: "
            f"{where or 'see below'})", file=sys.stderr)
      if where is None:
        print("\n\n".join(background.records), file=sys.stderr)
    for sig, handler in previous.items():
      signal.signal(sig, handler)


def _config_error(text: str, argv: list[str], frames: list[tuple[str, int]]) -> str:
  """``error: --config=<file>: <the error>`` and the config file's line that raised it."""
  config = next((a.partition("=")[2] for a in argv if a.startswith("--config=")), "")
  path = pathlib.Path(config.partition(":")[0]).absolute() if config else None
  mine = [(f, n) for f, n in frames if path and pathlib.Path(f).absolute() == path]
  where = f" (raised at {mine[-1][0]}, line {mine[-1][1]})" if mine else ""
  return f"error: --config={config}: {text}{where}" if config else f"error: {text}"


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing (``app.run(main, flags_parser=parse_flags)``), with a config file
  that does not load, or a ``--config.<field>`` override of a field the config lacks,
  reported in one or two lines (the error, and the config file's line that raised it)
  instead of a traceback through absl and ml_collections; exits 1 like absl's own flag
  errors."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    text = str(e)
    if "Traceback (most recent call last)" not in text:   # absl's own: one line
      print(f"FATAL Flags parsing error: {text}\nPass --helpshort or --helpfull to see help "
            "on flags.", file=sys.stderr)
      sys.exit(1)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    frames = [(m.group(1), int(m.group(2))) for m in
              (re.match(r'File "([^"]+)", line (\d+)', ln) for ln in lines) if m]
    message = _config_error(lines[-1], argv, frames)
  except Exception as e:  # noqa: BLE001 - a config file that does not load, or an override
    key = str(e).strip("'\"") if isinstance(e, (AttributeError, KeyError)) else None
    bad = [a.partition("=")[0] for a in argv
           if key and a.startswith("--config.")
           and key in re.split(r"[.\[\]]", a.partition("=")[0])]
    if bad:     # ml_collections' error for an override of a field the config lacks
      message = (f"error: {', '.join(bad)}: the config has no field {key!r}; the fields are "
                 "those of disc_jax.train.config.get_config (and the keys the config file "
                 "sets in a 'kwargs' entry)")
    else:
      text = "".join(traceback.format_exception_only(e)).strip().splitlines()[-1]
      frames = [(f.filename, f.lineno) for f in traceback.extract_tb(e.__traceback__)]
      if isinstance(e, SyntaxError) and e.filename:
        frames.append((e.filename, e.lineno or 0))
      message = _config_error(text, argv, frames)
  print(message, file=sys.stderr)
  sys.exit(1)


def load_module(path: str) -> types.ModuleType:
  """The config module at ``path`` (e.g. 'configs/default.py')."""
  name = "disc_jax_config_" + pathlib.Path(path).stem
  spec = importlib.util.spec_from_file_location(name, path)
  if spec is None or spec.loader is None or not pathlib.Path(path).is_file():
    raise ConfigError(f"--config: no config file {path!r}; pass a config file such as "
                      "configs/default.py (or configs/<paper>/<table>.py)")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def run_configs(config_flag) -> dict[str, ml_collections.ConfigDict]:
  """``{run name: config}`` that a ``--config`` flag asks for.

  ``--config=file.py:run=<name>`` is that one run, with the command's ``--config.x=y``
  overrides. ``--config=file.py`` of a file that defines ``RUNS`` is every run of it, each
  with the same overrides; of a file without ``RUNS``, its single config (named 'run').
  """
  path, _, arg = config_flags.get_config_filename(config_flag).partition(":")
  module = load_module(path)
  names = getattr(module, "RUNS", None)
  if arg or names is None:
    return {parse_run(arg) or "run": config_flag.value}
  overrides = config_flags.get_override_values(config_flag)
  out = {}
  for name in names:
    config = module.get_config(f"run={name}")
    for key, value in overrides.items():
      config_path.set_value(key, config, value)
    out[name] = config
  return out
