"""The built wheel installs without extras and ``disc_jax.losses`` works with jax + numpy alone.

Slow (builds a wheel, creates a virtual environment and installs jax from the package
registry): run with ``python -m pytest -m slow tests/test_packaging.py``.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import disc_jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Importable in a plain install: only what the losses need.
CORE = ("jax", "numpy")
# Must not be installed by a plain `pip install disc_jax` (they belong to the `train` extra).
TRAIN_ONLY = ("flax", "optax", "orbax", "chex", "ml_collections", "tensorflow_datasets",
              "array_record", "grain", "sklearn", "matplotlib", "tensorboardX")

SCRIPT = textwrap.dedent("""
    import importlib.metadata, importlib.util, json, sys
    import numpy as np
    import disc_jax
    import disc_jax.losses as L
    x = np.array([[1.0, 0.0], [3.0, 0.0], [9.0, 9.0]], np.float32)
    y = np.array([0, 0, 0], np.int32)
    keep = np.array([True, True, False])
    value = float(L.center_loss(x, y, np.array([[2.0, 0.0]], np.float32), where=keep))
    print(json.dumps({
        "value": value,
        "version": disc_jax.__version__,
        "metadata_version": importlib.metadata.version("disc_jax"),
        "license": importlib.metadata.metadata("disc_jax")["License-Expression"],
        "present": {m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]},
        "imported": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1:]),
    }))
""")


def _run(*cmd, **kw):
  result = subprocess.run(cmd, capture_output=True, text=True, **kw)
  assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
  return result.stdout


@pytest.mark.slow
def test_wheel_installs_without_extras_and_runs_a_loss(tmp_path):
  import json

  _run(sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT))
  wheel, = (tmp_path / "dist").glob("disc_jax-*.whl")
  assert wheel.name.startswith(f"disc_jax-{disc_jax.__version__}-")
  venv = tmp_path / "venv"
  _run(sys.executable, "-m", "venv", str(venv))
  python = str(venv / "bin" / "python")
  _run(python, "-m", "pip", "install", "-q", str(wheel))  # jax + numpy from the registry
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
  env["JAX_PLATFORMS"] = "cpu"
  out = _run(python, "-c", SCRIPT, *CORE, *TRAIN_ONLY, cwd=str(tmp_path), env=env)
  report = json.loads(out.strip().splitlines()[-1])
  assert report["value"] == pytest.approx(0.5)
  assert report["version"] == report["metadata_version"] == disc_jax.__version__
  assert report["license"] == "Apache-2.0"
  assert all(report["present"][m] for m in CORE), report
  assert not any(report["present"][m] for m in TRAIN_ONLY), report
  assert {m.split(".")[0] for m in report["imported"]} <= set(CORE), report
