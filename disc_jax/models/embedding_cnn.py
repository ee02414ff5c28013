"""The embedding CNN of the intra-class variance paper (Sec. 3.3, MNIST / Fashion-MNIST).

The paper gives this network as a figure in its symbolic notation (Sec. 3.1: convolutions
with BN + ReLU, max-pooling P_2, full connections F_br with BN + ReLU) followed by a
"bottleneck embedding layer" of size n = 2 or 4 whose output is "normalized or
not-normalized" (Sec. 3.3, 4), then the SoftMax classifier; the figure's exact widths are
not in the text we have, so this module builds a small network of exactly those elements,
one stage per entry of ``widths``:

  for w in widths: [conv 3x3xw -> BN -> ReLU] x convs_per_stage -> P_2
  -> flatten -> Dense ``hidden_dim`` (256) -> BN -> ReLU
  -> Dense ``embedding_dim`` (linear: the bottleneck) -> [x / ||x||_2 if ``normalize``] -> 'head'.

The default ``widths=(32, 64), convs_per_stage=2`` is [conv 3x3x32]x2 -> P_2 ->
[conv 3x3x64]x2 -> P_2 -> flatten (7*7*64 = 3,136 at 28x28); the light variant
``widths=(16, 32), convs_per_stage=1`` (used by configs/intra_class_variance for CPU
budget) is conv 3x3x16 -> P_2 -> conv 3x3x32 -> P_2 -> flatten (7*7*32 = 1,568).

The bottleneck is linear so the embedding can occupy the whole plane (as the paper's 2-D
plots do); with ``normalize=True`` it is projected on the unit sphere (the face-descriptor
variant of Sec. 3.2: "embedded vectors are normalized ... to get the unit length").
'features' is the (normalised) embedding, the input of 'head' and of the intra-class
variance loss Eq. (5) (its learned centroids are loss parameters of the train state,
trained like any weight: the paper's "Hadamard layer"); 'last_conv' is the last
stage's last conv ReLU output before its pool ([B, 14, 14, widths[-1]] at 28x28 with two
stages).

FLOPs (XLA's ``cost_analysis`` of the whole jitted train step, forward + backward + Adam,
batch 256, 28x28x1, 10 classes; ``python -m experiments.cost``): default 27.5 GFLOP,
light variant 2.09 GFLOP (about 1/13: the 32->32 and 64->64 convs at full resolution
dominate the default).

Parameter counts ('params', 28x28x1, 10 classes; tests/models/test_model_param_counts.py):
default, embedding_dim 2: 869,056; embedding_dim 4: 869,590. Light variant, embedding_dim
2: 407,312; embedding_dim 4: 407,846 (401,408 of them in the 1,568 -> 256 'fc').
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


def _check_fields(widths, convs_per_stage: int, embedding_dim: int, hidden_dim: int) -> None:
  """ValueError naming the first bad architecture field of :class:`EmbeddingCNN`."""
  def positive_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1

  if not isinstance(widths, (tuple, list)) or not widths or not all(map(positive_int, widths)):
    raise ValueError(f"widths must be a non-empty tuple of positive ints (one per stage), "
                     f"e.g. (32, 64); got {widths!r}")
  if not positive_int(convs_per_stage):
    raise ValueError(f"convs_per_stage must be a positive int (convs before each pool), "
                     f"got {convs_per_stage!r}")
  if not positive_int(embedding_dim):
    raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim!r}")
  if not positive_int(hidden_dim):
    raise ValueError(f"hidden_dim must be a positive int, got {hidden_dim!r}")


class EmbeddingCNN(nn.Module):
  """Small conv net with a low-dimensional (optionally unit-norm) embedding before 'head'."""
  num_classes: int
  embedding_dim: int = 2
  normalize: bool = False
  hidden_dim: int = 256
  widths: tuple[int, ...] = (32, 64)
  convs_per_stage: int = 2
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    _check_fields(self.widths, self.convs_per_stage, self.embedding_dim, self.hidden_dim)
    stages = len(self.widths)
    L.check_input(x, "EmbeddingCNN", min_size=2**stages)
    x = jnp.asarray(x, self.dtype)
    n = 0
    for stage, width in enumerate(self.widths):
      for _ in range(self.convs_per_stage):
        x = L.conv(width, 3, dtype=self.dtype, name=f"conv{n}")(x)
        x = nn.relu(L.batch_norm(train, self.dtype, name=f"bn{n}")(x))
        n += 1
      if stage == stages - 1:
        self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
      x = L.max_pool(x, 2, 2)
    x = x.reshape(x.shape[0], -1)
    x = nn.Dense(self.hidden_dim, use_bias=False, dtype=self.dtype, name="fc")(x)
    x = nn.relu(L.batch_norm(train, self.dtype, name="fc_bn")(x))
    x = nn.Dense(self.embedding_dim, dtype=self.dtype, name="embedding")(x)
    if self.normalize:
      x = l2_normalize(x)
    return L.classify(self, x, self.num_classes, self.dtype)
