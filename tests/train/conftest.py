"""Shared tiny configs for the training tests (tiny shapes: 2 shared CPU cores).

Compilation dominates these tests (one train step of a tiny LeNet compiles in ~16 s on
the shared 2-core machine, and runs in ~10 ms), so XLA's CPU backend is asked for
cheap code generation: ``--xla_backend_optimization_level=0`` and
``--xla_llvm_disable_expensive_passes`` cut a compile ~4x and change no numerics the
tests rely on. They are appended to XLA_FLAGS (after tests/conftest.py's device
count) and only take effect if the XLA backend has not started yet.
"""

from __future__ import annotations

import os

_FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true")
for _flag in _FAST_COMPILE:
  if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

import ml_collections  # noqa: E402
import pytest  # noqa: E402

from disc_jax.train import schema  # noqa: E402


def tiny_config(*, model: str = "lenet5", num_classes: int = 4, image: int = 12,
                examples: int = 256, batch_size: int = 32, **model_kwargs) -> ml_collections.ConfigDict:
  """A config training ``model`` on 'synthetic' images (image x image x 1)."""
  c = schema.get_config()
  c.dataset.name = "synthetic"
  c.dataset.kwargs = ml_collections.ConfigDict(
      {"num_examples": examples, "image_shape": (image, image, 1), "num_classes": num_classes})
  c.model.name = model
  c.model.kwargs = ml_collections.ConfigDict(
      model_kwargs or ({"feature_dim": 8} if model == "lenet5" else {}))
  c.batch_size = batch_size
  c.num_epochs = 2
  c.log_every = 1
  c.final_eval.max_train_examples = 64
  c.final_eval.plot = False
  return c


@pytest.fixture
def tiny():
  return tiny_config
