"""Helpers shared by the test modules (importable: ``from tests.helpers import ...``).

The fixtures built on them live in ``tests/conftest.py``; this module holds what a
test module needs at import time (parametrisation lists) or as a plain function.
"""
from __future__ import annotations

import os

import jax

# One fresh random seed per test session, drawn in tests/conftest.py and shown in the
# test ids of the reference tests; DISC_JAX_TEST_SEED=<seed> replays a session.
FRESH_SEED = int(os.environ["DISC_JAX_TEST_SEED"])
NUM_DEVICES = 8  # --xla_force_host_platform_device_count in tests/conftest.py
AXIS = "data"


def data_mesh(num_devices: int = NUM_DEVICES, axis: str = AXIS) -> jax.sharding.Mesh:
  """A 1-D mesh over the fake CPU devices, for ``jax.shard_map`` tests."""
  return jax.make_mesh((num_devices,), (axis,), axis_types=(jax.sharding.AxisType.Auto,))
