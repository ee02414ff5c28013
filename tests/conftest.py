"""Test-session setup: 8 fake CPU devices for the multi-device tests.

XLA reads this flag when the backend starts, so it must be set before the first
``import jax`` anywhere in the test session; conftest.py is imported first.
"""
import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir():
  """The folder of original MNIST/Fashion-MNIST/KMNIST files, or skip if absent."""
  env = os.environ.get("DISC_JAX_SHARED_DATA")
  path = pathlib.Path(env) if env else SHARED_DATA
  if not path.is_dir():
    pytest.skip(f"original dataset files not found at {path} (set DISC_JAX_SHARED_DATA)")
  return path
