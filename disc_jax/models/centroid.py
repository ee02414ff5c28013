"""``CentroidLayer``: the intra-class variance paper's "Hadamard layer" holding class centroids.

Paper (Sec. 2, before Eq. 5): to learn the centroids C = [C_1 .. C_K] by SGD, "we join an
additional Hadamard H layer with the constant input 1_{N x K}, parameters matrix C":
H(1, C) = 1 * C = C (footnote 9: H = X * W, elementwise). The layer therefore just returns
its parameter; the loss L_var = 1/N_b sum_j ||x_j - C_{y_j}||^2 (Eq. 5,
``disc_jax.losses.intra_class_variance_loss``) reads it, and the optimiser updates C like
any other weight, instead of Wen et al.'s moving-average rule (Eq. 7).

Layout: C is stored as [num_classes, D] (one row per class, the layout the losses take),
the transpose of the paper's N x K. Initialisation: N(0, 1) entries by default (the
sigma^2R paper's choice for its centres; the intra-class variance paper does not state
one); pass ``centroid_init`` to change it.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


class CentroidLayer(nn.Module):
  """Trainable class centroids C [num_classes, dim] in 'params'['centroids'].

  ``__call__()`` returns C; ``__call__(x)`` with ``x`` broadcastable to [num_classes, dim]
  returns the Hadamard product ``x * C`` (the paper's H(X, C); X = ones gives C).

  >>> layer = CentroidLayer(num_classes=3, dim=2)
  >>> params = layer.init(jax.random.key(0))
  >>> layer.apply(params).shape
  (3, 2)
  """
  num_classes: int
  dim: int
  centroid_init: Callable[..., Any] = nn.initializers.normal(1.0)

  @nn.compact
  def __call__(self, x: jax.Array | None = None) -> jax.Array:
    for arg in ("num_classes", "dim"):
      value = getattr(self, arg)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"CentroidLayer: {arg} must be a positive int, got {value!r}")
    c = self.param("centroids", self.centroid_init, (self.num_classes, self.dim), jnp.float32)
    return c if x is None else x * c
