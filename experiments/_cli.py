"""What the experiment entry points share: the runs a ``--config`` flag names, and turning a
stopped run into an exit code."""

from __future__ import annotations

import contextlib
import importlib.util
import pathlib
import sys
import types
from collections.abc import Iterator

import ml_collections
from ml_collections import config_flags
from ml_collections.config_flags import config_path

from configs.base import parse_run
from disc_jax.train import Interrupted


@contextlib.contextmanager
def exit_on_stop() -> Iterator[None]:
  """Inside the block, a run stopped by a signal exits with ``128 + signum`` (its message
  says how to resume) and one stopped by a non-finite value exits with 1, without a
  traceback: both are outcomes the user acts on, not bugs."""
  try:
    yield
  except Interrupted as e:
    print(e, file=sys.stderr)
    sys.exit(128 + e.signum)
  except FloatingPointError as e:
    print(f"stopped: {e}", file=sys.stderr)
    sys.exit(1)


def load_module(path: str) -> types.ModuleType:
  """The config module at ``path`` (e.g. 'configs/default.py')."""
  name = "disc_jax_config_" + pathlib.Path(path).stem
  spec = importlib.util.spec_from_file_location(name, path)
  if spec is None or spec.loader is None:
    raise ValueError(f"--config: cannot load {path!r}; pass a config file such as "
                     "configs/default.py")
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
