"""Fixtures for the model tests: cheap PRNG keys and a per-session cache of built models.

Model initialisation compiles one random generator per parameter, and on a loaded 2-core
CPU that compile costs seconds per model (threefry: about 10 s for LeNet++; 'rbg' is 3-4x
cheaper). The behaviour tests only need reasonable weights, not the initialisers' exact
draws, so ``build`` takes the variable shapes from ``jax.eval_shape(init_variables)`` and
fills them from a NumPy generator (kernels ~ N(0, 1/fan_in), BN scale/var 1, biases and
means 0). ``init_variables`` itself is executed under jit in test_model_behaviour.py.
"""
from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from disc_jax import models


def rbg_key(seed: int) -> jax.Array:
  return jax.random.key(seed, impl="rbg")


@pytest.fixture(scope="session")
def key():
  return rbg_key


def numpy_variables(shapes, seed: int = 0):
  """Variables with the structure of ``shapes`` (ShapeDtypeStructs), drawn on the host."""
  rng = np.random.default_rng(seed)

  def fill(path, s):
    leaf = path[-1].key
    if leaf in ("scale", "var"):
      return np.ones(s.shape, s.dtype)
    if leaf in ("bias", "mean"):
      return np.zeros(s.shape, s.dtype)
    if leaf == "slope":
      return np.full(s.shape, 0.25, s.dtype)
    fan_in = int(np.prod(s.shape[:-1])) if len(s.shape) > 1 else 1
    return (rng.standard_normal(s.shape) / np.sqrt(fan_in)).astype(s.dtype)

  return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.fixture(scope="session")
def build():
  """``build(name, input_shape, **kw) -> (model, variables, apply)``, built once per session.

  ``apply(variables, x, train=..., rngs=...)`` is ``apply_with_features`` jitted for this
  model (``train`` static), so tests sharing a model share its compiled functions.
  """
  cache: dict = {}

  def _build(name: str, input_shape: tuple[int, ...], num_classes: int = 10, **kw):
    k = (name, tuple(input_shape), num_classes, tuple(sorted(kw.items())))
    if k not in cache:
      model = models.get_model(name, num_classes=num_classes, **kw)
      shapes = jax.eval_shape(lambda r: models.init_variables(model, r, input_shape),
                              rbg_key(0))
      apply = jax.jit(functools.partial(models.apply_with_features, model),
                      static_argnames="train")
      cache[k] = (model, numpy_variables(shapes), apply)
    return cache[k]

  return _build
