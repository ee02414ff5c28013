"""CvT-7: a three-stage Convolutional vision Transformer (Wu et al., ICCV 2021).

The Gini/KL paper (Sec. 4.2) trains a "lighter CvT-7 architecture, which contains three
stages": 1, 2 and 4 transformer blocks; convolutional token embeddings of 32, 128 and 258
filters; 1, 2 and 6 attention heads. We use these numbers as printed: 258 looks like a typo
for 256, but 256 is not divisible by 6 heads while 258 is (6 x 43), so 258 is the one
consistent reading (head widths 32, 64, 43). All three are arguments (``embed_dims``,
``depths``, ``num_heads``); a width not divisible by its heads raises a ValueError.

Each stage, as in CvT (Sec. 3.1-3.2 of Wu et al.):
  * convolutional token embedding: Conv(k, stride, pad, bias) -> LayerNorm; the stage-1
    conv is set by ``stem`` (``'imagenet'``: 7x7/4 pad 2 as CvT; ``'cifar'``: 3x3/2 pad 1,
    our choice so that 32x32 images give 16x16, 8x8, 4x4 token maps); stages 2-3 use 3x3/2
    pad 1;
  * blocks ``x + Attn(LN(x))``, ``x + MLP(LN(x))`` (MLP ratio 4, GELU), where the attention's
    q, k, v are convolutional projections: depthwise 3x3 conv (stride 1 for q, 2 for k and
    v: CvT's "squeezed" projection) -> BatchNorm -> flatten -> Dense;
  * the last stage prepends a learned class token (not convolved, concatenated before the
    q/k/v Dense), and LayerNorm of that token is 'features', the input of 'head'.
No position embedding (CvT drops it). Differences from the reference code, on purpose:
attention logits are scaled by head_dim ** -0.5 (the reference scales by the full width);
no stochastic depth; ``dropout_rate`` (default 0, CvT-13's value) drops the attention and
MLP outputs in train mode only, from the 'dropout' rng.

'last_conv' is, as the Gini paper applies its loss there, the convolutional token embedding
of the last stage (after its LayerNorm) as maps [B, H, W, 258]; there is no non-linearity,
so it can be negative.

Parameter counts ('params'; tests/models/test_model_param_counts.py): cifar/100: 4,024,168;
cifar/10: 4,000,858; imagenet/1000: 4,261,108 (the 7x7 stem conv is larger than 3x3).
Most of it is stage 3: four blocks of about 12 * 258^2 weights each.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disc_jax.models import _layers as L

_init = nn.initializers.truncated_normal(0.02)
_LN_EPS = 1e-5
# (kernel, stride, padding) of the convolutional token embeddings.
STEM_EMBED = {"imagenet": (7, 4, 2), "cifar": (3, 2, 1)}
LATER_EMBED = (3, 2, 1)


class ConvProjection(nn.Module):
  """Depthwise 3x3 conv (stride) -> BN -> tokens -> [cls +] Dense: one of q, k, v."""
  dim: int
  stride: int
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x2d: jax.Array, cls: jax.Array | None, *, train: bool) -> jax.Array:
    y = L.conv(self.dim, 3, self.stride, groups=self.dim, dtype=self.dtype, name="dw_conv")(x2d)
    y = L.batch_norm(train, self.dtype, name="bn")(y)
    y = y.reshape(y.shape[0], -1, self.dim)
    if cls is not None:
      y = jnp.concatenate([cls, y], axis=1)
    return nn.Dense(self.dim, dtype=self.dtype, kernel_init=_init, name="linear")(y)


class ConvAttention(nn.Module):
  """Multi-head self-attention with convolutional q/k/v projections."""
  dim: int
  heads: int
  dropout_rate: float = 0.0
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens: jax.Array, hw: tuple[int, int], has_cls: bool, *,
               train: bool) -> jax.Array:
    b = tokens.shape[0]
    cls, x = (tokens[:, :1], tokens[:, 1:]) if has_cls else (None, tokens)
    x2d = x.reshape(b, hw[0], hw[1], self.dim)
    q, k, v = (ConvProjection(self.dim, s, dtype=self.dtype, name=n)(x2d, cls, train=train)
               for n, s in (("q", 1), ("k", 2), ("v", 2)))
    split = lambda t: t.reshape(b, t.shape[1], self.heads, self.dim // self.heads)
    q, k, v = split(q), split(k), split(v)
    scale = (self.dim // self.heads) ** -0.5
    attn = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale, axis=-1)
    out = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(b, -1, self.dim)
    out = nn.Dense(self.dim, dtype=self.dtype, kernel_init=_init, name="proj")(out)
    return nn.Dropout(self.dropout_rate, deterministic=not train)(out)


class Block(nn.Module):
  """Pre-norm transformer block with convolutional attention and an MLP (ratio 4)."""
  dim: int
  heads: int
  mlp_ratio: int = 4
  dropout_rate: float = 0.0
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, hw: tuple[int, int], has_cls: bool, *,
               train: bool) -> jax.Array:
    ln = lambda name: nn.LayerNorm(epsilon=_LN_EPS, dtype=self.dtype, name=name)
    x = x + ConvAttention(self.dim, self.heads, self.dropout_rate, dtype=self.dtype,
                          name="attn")(ln("norm1")(x), hw, has_cls, train=train)
    y = nn.Dense(self.mlp_ratio * self.dim, dtype=self.dtype, kernel_init=_init,
                 name="mlp_fc1")(ln("norm2")(x))
    y = nn.Dense(self.dim, dtype=self.dtype, kernel_init=_init, name="mlp_fc2")(nn.gelu(y))
    return x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class CvT(nn.Module):
  """CvT with per-stage ``embed_dims``/``depths``/``num_heads`` (CvT-7 defaults)."""
  num_classes: int
  embed_dims: Sequence[int] = (32, 128, 258)
  depths: Sequence[int] = (1, 2, 4)
  num_heads: Sequence[int] = (1, 2, 6)
  stem: str = "imagenet"
  mlp_ratio: int = 4
  dropout_rate: float = 0.0
  dtype: L.Dtype = jnp.float32

  def _check(self) -> None:
    L.check_choice(self.stem, ("cifar", "imagenet"), "stem")
    n = len(self.embed_dims)
    if n == 0 or len(self.depths) != n or len(self.num_heads) != n:
      raise ValueError(f"embed_dims, depths and num_heads need one entry per stage, got "
                       f"{self.embed_dims}, {self.depths}, {self.num_heads}")
    for d, h in zip(self.embed_dims, self.num_heads):
      if h < 1 or d % h:
        raise ValueError(f"embed_dims: width {d} is not divisible by its {h} heads; "
                         f"choose widths that are multiples of num_heads")

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    L.check_input(x, "CvT")
    self._check()
    x = jnp.asarray(x, self.dtype)
    b = x.shape[0]
    last = len(self.embed_dims) - 1
    cls = None
    for s, (dim, depth, heads) in enumerate(zip(self.embed_dims, self.depths, self.num_heads)):
      k, stride, pad = STEM_EMBED[self.stem] if s == 0 else LATER_EMBED
      x = nn.Conv(dim, (k, k), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                  dtype=self.dtype, kernel_init=_init, name=f"stage{s}_embed_conv")(x)
      x = nn.LayerNorm(epsilon=_LN_EPS, dtype=self.dtype, name=f"stage{s}_embed_norm")(x)
      hw = x.shape[1:3]
      tokens = x.reshape(b, -1, dim)
      if s == last:
        self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
        cls = self.param("cls_token", _init, (1, 1, dim), jnp.float32)
        tokens = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, dim)).astype(x.dtype), tokens], 1)
      for j in range(depth):
        tokens = Block(dim, heads, self.mlp_ratio, self.dropout_rate, dtype=self.dtype,
                       name=f"stage{s}_block{j}")(tokens, hw, s == last, train=train)
      if s == last:
        cls, tokens = tokens[:, 0], tokens[:, 1:]
      x = tokens.reshape(b, hw[0], hw[1], dim)
    feats = nn.LayerNorm(epsilon=_LN_EPS, dtype=self.dtype, name="norm")(cls)
    return L.classify(self, feats, self.num_classes, self.dtype, kernel_init=_init)
