"""The docstring examples of disc_jax.losses run and hold (they are part of the API docs)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import disc_jax.losses

MODULES = sorted(m.name for m in pkgutil.iter_modules(disc_jax.losses.__path__))
# Modules whose public functions carry examples; the helpers' have none.
WITH_EXAMPLES = {"_centers", "_feature_dropout", "_gini_kl", "_group_softmax", "_mmd",
                 "_sigma2r", "_snnl", "_softmax_variants"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
  module = importlib.import_module(f"disc_jax.losses.{name}")
  result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
  assert result.failed == 0
  assert (result.attempted > 0) == (name in WITH_EXAMPLES)
