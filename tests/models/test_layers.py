"""The shared layers' pooling: non-overlapping windows (strided-slice maxima) equal reduce_window."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disc_jax.models import _layers as L


def _window(x, window, stride, pad=0):
  return nn.max_pool(x, (window, window), strides=(stride, stride),
                     padding=((pad, pad), (pad, pad)))


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 11, 10, 3), (1, 7, 7, 4)])
@pytest.mark.parametrize("window", [2, 3])
def test_non_overlapping_pool_matches_reduce_window(shape, window):
  # Odd sizes: the trailing rows/columns that fill no window are dropped (floor mode).
  x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
  np.testing.assert_array_equal(L.max_pool(x, window, window), _window(x, window, window))


def test_pool_gradient_matches_after_relu():
  # Ties after a ReLU are all-zero windows, whose ReLU gradient is zero under both rules.
  x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 11, 10, 3)), jnp.float32)
  w = jnp.asarray(np.random.default_rng(2).standard_normal((2, 5, 5, 3)), jnp.float32)
  grads = [jax.grad(lambda x, p=pool: jnp.sum(p(jax.nn.relu(x), 2, 2) * w))(x)
           for pool in (L.max_pool, _window)]
  np.testing.assert_array_equal(*grads)


def test_pool_tie_gradient_is_shared():
  # The documented choice: tied maxima split the gradient (a 2x2 window of ties: a quarter each).
  x = jnp.ones((1, 2, 2, 1))
  g = jax.grad(lambda x: jnp.sum(L.max_pool(x, 2, 2)))(x)
  np.testing.assert_allclose(g, np.full((1, 2, 2, 1), 0.25))


def test_overlapping_and_padded_pools_use_reduce_window():
  x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 9, 9, 2)), jnp.float32)
  np.testing.assert_array_equal(L.max_pool(x, 3, 2, pad=1), _window(x, 3, 2, pad=1))
  assert L.max_pool(x, 3, 2, pad=1).shape == (2, 5, 5, 2)


def test_pool_has_no_select_and_scatter():
  # The reason for the reshape form: its gradient is not XLA's slow select_and_scatter.
  x = jnp.ones((2, 8, 8, 3))
  hlo = jax.jit(jax.grad(lambda x: jnp.sum(L.max_pool(x, 2, 2)))).lower(x).as_text()
  assert "select_and_scatter" not in hlo
  hlo = jax.jit(jax.grad(lambda x: jnp.sum(_window(x, 2, 2)))).lower(x).as_text()
  assert "select_and_scatter" in hlo
