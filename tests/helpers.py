"""Helpers shared by the test modules (importable: ``from tests.helpers import ...``).

The fixtures built on them live in ``tests/conftest.py``; this module holds what a
test module needs at import time (parametrisation lists) or as a plain function.
"""
from __future__ import annotations

import os

import jax
import numpy as np

# One fresh random seed per test session, drawn in tests/conftest.py and shown in the
# test ids of the reference tests; DISC_JAX_TEST_SEED=<seed> replays a session.
FRESH_SEED = int(os.environ["DISC_JAX_TEST_SEED"])
NUM_DEVICES = 8  # --xla_force_host_platform_device_count in tests/conftest.py
AXIS = "data"


def data_mesh(num_devices: int = NUM_DEVICES, axis: str = AXIS) -> jax.sharding.Mesh:
  """A 1-D mesh over the fake CPU devices, for ``jax.shard_map`` tests."""
  return jax.make_mesh((num_devices,), (axis,), axis_types=(jax.sharding.AxisType.Auto,))


def head_batch(seed: int = 0, b: int = 6, d: int = 5, c: int = 4, dtype=np.float64):
  """Random ``(features [b, d], labels [b], kernel [d, c], bias [c])`` for head losses."""
  r = np.random.default_rng(seed)
  x = r.normal(size=(b, d)).astype(dtype)
  w = r.normal(size=(d, c)).astype(dtype)
  bias = (0.3 * r.normal(size=c)).astype(dtype)
  y = r.integers(0, c, size=b).astype(np.int32)
  return x, y, w, bias


def np_cross_entropy_rows(logits, y):
  """Float64 NumPy softmax cross-entropy per row."""
  z = logits - logits.max(axis=1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
  return -logp[np.arange(len(y)), y]


def edge_case_batch(kind: str) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
  """``(features [8, 3], labels, rng)`` of a batch-statistics edge case; ``rng`` draws any
  loss parameters next. Kinds: 'identical_features', 'one_sample_of_a_class',
  'all_samples_one_class', 'every_class_a_singleton', 'single_sample'; anything else is the
  plain batch of classes 0-2."""
  rng = np.random.default_rng(5)
  x = rng.normal(size=(8, 3))
  labels = np.array([0, 1, 2, 0, 1, 2, 0, 1], np.int32)
  if kind == "identical_features":
    x[:] = x[0]
  elif kind == "one_sample_of_a_class":
    labels[2] = 7
  elif kind == "all_samples_one_class":
    labels[:] = 3
  elif kind == "every_class_a_singleton":
    labels = np.arange(8, dtype=np.int32)
  elif kind == "single_sample":
    x, labels = x[:1], labels[:1]
  return x, labels, rng
