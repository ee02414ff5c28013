"""Test-session setup, read before any test module imports jax.

* 8 fake CPU devices for the multi-device tests
  (``--xla_force_host_platform_device_count=8``).
* Shared fixtures: ``x64`` (float64 inside the test) and ``mesh`` (1-D mesh over
  the 8 devices); importable helpers and constants are in ``tests/helpers.py``.
* Cheap XLA code generation: compilation, not execution, dominates these tests (a
  tiny LeNet train step compiles in ~16 s on a loaded 2-core machine and runs in
  ~10 ms), so ``--xla_backend_optimization_level=0`` and
  ``--xla_llvm_disable_expensive_passes`` cut compile time ~4x. They change no
  numerics the tests rely on (the float64 reference tests pass under them).

XLA reads XLA_FLAGS once, when its backend starts, so they are set here, for every
test process (pytest-xdist workers included), and the same for every test.
"""
import os

_FLAGS = ("--xla_force_host_platform_device_count=8",
          "--xla_backend_optimization_level=0",
          "--xla_llvm_disable_expensive_passes=true")
for _flag in _FLAGS:
  if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One fresh random seed per test session, for the tests that also run on unseen random
# inputs. It is chosen once here, in the main process, and inherited through the
# environment by pytest-xdist's workers (which must collect identical test ids); it is
# shown in the test ids, and DISC_JAX_TEST_SEED=<seed> replays a failing session.
os.environ.setdefault("DISC_JAX_TEST_SEED", str(int.from_bytes(os.urandom(4), "little") % 2**31))

import pathlib  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from tests.helpers import FRESH_SEED, data_mesh  # noqa: E402,F401  (re-exported)

SHARED_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir():
  """The folder of original MNIST/Fashion-MNIST/KMNIST files, or skip if absent."""
  env = os.environ.get("DISC_JAX_SHARED_DATA")
  path = pathlib.Path(env) if env else SHARED_DATA
  if not path.is_dir():
    pytest.skip(f"original dataset files not found at {path} (set DISC_JAX_SHARED_DATA)")
  return path


@pytest.fixture
def x64():
  """Run the test with float64 enabled (the reference tests compare in float64)."""
  with jax.enable_x64(True):
    yield


@pytest.fixture(scope="session")
def mesh():
  """A 1-D ``("data",)`` mesh over the 8 fake CPU devices."""
  return data_mesh()
