"""The embedding CNN of the intra-class variance paper (Sec. 3.3, MNIST / Fashion-MNIST).

The paper gives this network as a figure in its symbolic notation (Sec. 3.1: convolutions
with BN + ReLU, max-pooling P_2, full connections F_br with BN + ReLU) followed by a
"bottleneck embedding layer" of size n = 2 or 4 whose output is "normalized or
not-normalized" (Sec. 3.3, 4), then the SoftMax classifier; the figure's exact widths are
not in the text we have, so this module fixes a small network of exactly those elements:

  [conv 3x3x32 -> BN -> ReLU] x 2 -> P_2 -> [conv 3x3x64 -> BN -> ReLU] x 2 -> P_2 ->
  flatten (7*7*64 = 3,136 at 28x28) -> Dense ``hidden_dim`` (256) -> BN -> ReLU ->
  Dense ``embedding_dim`` (linear: the bottleneck) -> [x / ||x||_2 if ``normalize``] -> 'head'.

The bottleneck is linear so the embedding can occupy the whole plane (as the paper's 2-D
plots do); with ``normalize=True`` it is projected on the unit sphere (the face-descriptor
variant of Sec. 3.2: "embedded vectors are normalized ... to get the unit length").
'features' is the (normalised) embedding, the input of 'head' and of the intra-class
variance loss Eq. (5) with the centroids of ``CentroidLayer``; 'last_conv' is the fourth
conv's ReLU output before its pool ([B, 14, 14, 64] at 28x28).

Parameter counts ('params', 28x28x1, 10 classes; tests/models/test_model_param_counts.py):
embedding_dim 2: 869,056; embedding_dim 4: 869,590.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from disc_jax.models import _layers as L

_EPS = 1e-12


def l2_normalize(x: jax.Array, axis: int = -1) -> jax.Array:
  """``x / max(||x||_2, 1e-12)`` along ``axis``.

  >>> l2_normalize(jnp.array([[3.0, 4.0]])).tolist()
  [[0.6000000238418579, 0.800000011920929]]
  """
  sq = jnp.sum(jnp.square(x.astype(jnp.float32)), axis=axis, keepdims=True)
  return (x * jax.lax.rsqrt(jnp.maximum(sq, _EPS**2))).astype(x.dtype)


class EmbeddingCNN(nn.Module):
  """Small conv net with a low-dimensional (optionally unit-norm) embedding before 'head'."""
  num_classes: int
  embedding_dim: int = 2
  normalize: bool = False
  hidden_dim: int = 256
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    L.check_input(x, "EmbeddingCNN", min_size=4)
    if self.embedding_dim < 1:
      raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
    x = jnp.asarray(x, self.dtype)
    n = 0
    for width in (32, 64):
      for _ in range(2):
        x = L.conv(width, 3, dtype=self.dtype, name=f"conv{n}")(x)
        x = nn.relu(L.batch_norm(train, self.dtype, name=f"bn{n}")(x))
        n += 1
      if width == 64:
        self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
      x = L.max_pool(x, 2, 2)
    x = x.reshape(x.shape[0], -1)
    x = nn.Dense(self.hidden_dim, use_bias=False, dtype=self.dtype, name="fc")(x)
    x = nn.relu(L.batch_norm(train, self.dtype, name="fc_bn")(x))
    x = nn.Dense(self.embedding_dim, dtype=self.dtype, name="embedding")(x)
    if self.normalize:
      x = l2_normalize(x)
    return L.classify(self, x, self.num_classes, self.dtype)
