"""The docstring examples of disc_jax.data run and hold."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["augment", "class_subset", "fuzzy_rgb", "pipeline", "registry", "samplers", "source", "synthetic"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
  module = importlib.import_module(f"disc_jax.data.{name}")
  result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0 and result.failed == 0
