"""MobileNetV2 (Sandler et al., "Inverted Residuals and Linear Bottlenecks", CVPR 2018).

torchvision's layout: a 3x3/2 conv (32) stem, the inverted-residual table of the paper's
Table 2 (expansion t, channels c, repeats n, stride s), a 1x1 conv to 1280, global average
pooling, Dropout(0.2) and the 'head'. Conv -> BN -> ReLU6 everywhere except the linear
1x1 projection closing each inverted residual. Used by ITRA on CIFAR-10/100 and STL-10.

Stems (``stem=``):
  * ``'imagenet'``: as torchvision (total stride 32).
  * ``'cifar'``: the stem conv has stride 1 and the second bottleneck stage (c = 24) stride 1
    (total stride 8, so 32x32 inputs end at 4x4), the common CIFAR adaptation.

'last_conv' is the ReLU6 output of the final 1x1 conv (1280 maps). 'features' is the
head's input: the pooled 1280-vector after dropout (identity in eval mode; pass
``dropout_rate=0`` to train without it).

Parameter counts ('params' only), computed by tests/models/test_model_param_counts.py:
imagenet/1000: 3,504,872 (torchvision mobilenet_v2); cifar/10: 2,236,682; cifar/100:
2,351,972 (the stem choice changes strides, not parameters).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from disc_jax.models import _layers as L

# (t, c, n, s) of the paper's Table 2.
INVERTED_RESIDUAL_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
LAST_CHANNELS = 1280


class InvertedResidual(nn.Module):
  """1x1 expand (t > 1) -> 3x3 depthwise (stride) -> linear 1x1 projection (+ x if same shape)."""
  out_features: int
  stride: int
  expansion: int
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    hidden = x.shape[-1] * self.expansion
    y = x
    if self.expansion != 1:
      y = L.conv(hidden, 1, dtype=self.dtype, name="expand_conv")(y)
      y = nn.relu6(L.batch_norm(train, self.dtype, name="expand_bn")(y))
    y = L.conv(hidden, 3, self.stride, groups=hidden, dtype=self.dtype, name="dw_conv")(y)
    y = nn.relu6(L.batch_norm(train, self.dtype, name="dw_bn")(y))
    y = L.conv(self.out_features, 1, dtype=self.dtype, name="project_conv")(y)
    y = L.batch_norm(train, self.dtype, name="project_bn")(y)
    if self.stride == 1 and x.shape[-1] == self.out_features:
      y = x + y
    return y


class MobileNetV2(nn.Module):
  """MobileNetV2 (width multiplier 1.0); see the module docstring for the stems."""
  num_classes: int
  stem: str = "imagenet"
  dropout_rate: float = 0.2
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    L.check_input(x, "MobileNetV2")
    L.check_choice(self.stem, ("cifar", "imagenet"), "stem")
    cifar = self.stem == "cifar"
    x = jnp.asarray(x, self.dtype)
    x = L.conv(32, 3, 1 if cifar else 2, dtype=self.dtype, name="stem_conv")(x)
    x = nn.relu6(L.batch_norm(train, self.dtype, name="stem_bn")(x))
    for i, (t, c, n, s) in enumerate(INVERTED_RESIDUAL_SETTING):
      if cifar and c == 24:
        s = 1
      for j in range(n):
        x = InvertedResidual(c, s if j == 0 else 1, t, dtype=self.dtype,
                             name=f"block{i}_{j}")(x, train=train)
    x = L.conv(LAST_CHANNELS, 1, dtype=self.dtype, name="final_conv")(x)
    x = nn.relu6(L.batch_norm(train, self.dtype, name="final_bn")(x))
    self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
    x = L.global_avg_pool(x)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return L.classify(self, x, self.num_classes, self.dtype,
                      kernel_init=nn.initializers.normal(0.01))
