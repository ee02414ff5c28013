"""A model on a ('data',) mesh of 8 fake CPU devices gives the single-device results."""
from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from disc_jax import models


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_data_parallel_matches_single_device(train, build, mesh):
  if jax.device_count() < 8:
    pytest.skip("needs 8 devices (tests/conftest.py sets 8 fake CPU devices)")
  _, variables, apply = build("embedding_cnn", (2, 28, 28, 1))  # jitted apply_with_features
  x = jax.random.normal(jax.random.key(0), (16, 28, 28, 1))
  step = lambda v, x: apply(v, x, train=train)
  ref = step(variables, x)

  xs = jax.device_put(x, NamedSharding(mesh, P("data")))
  vs = jax.device_put(variables, NamedSharding(mesh, P()))
  assert len(xs.sharding.device_set) == 8 and xs.addressable_shards[0].data.shape[0] == 2
  out = step(vs, xs)
  # Train-mode batch norm normalises with the statistics of the whole global batch.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), ref, out)
  logits, feats, updates = out
  assert logits.shape == (16, 10) and feats[models.FEATURES].shape == (16, 2)
  assert set(updates) == ({"batch_stats"} if train else set())
