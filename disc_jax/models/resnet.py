"""ResNet-17/18/50/101 and ResNeXt-50 (32x4d) with a CIFAR or an ImageNet stem.

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), in torchvision's
layout (v1.5: the stride of a bottleneck sits on its 3x3 conv; projection shortcuts only
where shape changes). ResNeXt (Xie et al., CVPR 2017) is the bottleneck with a grouped
3x3 conv of ``groups * width_per_group * planes / 64`` channels.

Stems:
  * ``'imagenet'``: 7x7/2 conv (64), BN, ReLU, 3x3/2 max-pool (pad 1): torchvision.
  * ``'cifar'``: 3x3/1 conv (64), BN, ReLU, no max-pool (the usual CIFAR variant, used
    by the Gini/KL, sigma^2R and ITRA papers on 32x32 images).

ResNet-17 (Gini/KL paper, Sec. 4.2 "Baselines"): ResNet-18 "removing the fully connected
layer at the end and adjusting the last convolutional layer to have the number of filters
equal to the number of class labels". Our reading: the last conv of the last basic block
(layer4[1].conv2) has ``num_classes`` filters; since its output no longer matches the
block's 512-channel identity, that block gets a 1x1 projection shortcut (+BN), as any
torchvision block whose channel count changes. The block ends with its ReLU (so the
activations the Gini loss reads are non-negative, as its Eq. 2 normalisation needs), and
global average pooling of these maps gives the logits. There is no 'head': the sowed
'features' are the pooled maps, i.e. the logits themselves (D = num_classes).

``feature_dim`` (ResNet-18/50/...): when set, a linear Dense 'embedding' maps the pooled
vector to ``feature_dim`` before the head, as the sigma^2R paper (Sec. 4, Fuzzy-RGB) does
to "reduce the second-last layer of a Resnet18 from 512 to 2 channels".

Parameter counts ('params' only; BN running stats are in 'batch_stats'), computed with
``jax.eval_shape`` by tests/models/test_model_param_counts.py:

  ============  ================  ==============  ===============
  model         imagenet, 1000    cifar, 10       cifar, 100
  ============  ================  ==============  ===============
  resnet17      13,940,192 (*)    8,859,752       9,320,912
  resnet18      11,689,512        11,173,962      11,220,132
  resnet50      25,557,032        23,520,842      23,705,252
  resnet101     44,549,160        42,512,970      42,697,380
  resnext50     25,028,904        22,992,714      23,177,124
  ============  ================  ==============  ===============

(*) ResNet-17 is only defined by the Gini/KL paper (CIFAR-100 / Caltech-101); the
ImageNet-stem count with 1000 classes is given for completeness.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disc_jax.models import _layers as L


class BasicBlock(nn.Module):
  """Two 3x3 convs (ResNet-18/34); ``out_features`` overrides conv2's width (ResNet-17)."""
  planes: int
  stride: int = 1
  out_features: int | None = None
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    out = self.out_features or self.planes
    y = L.conv(self.planes, 3, self.stride, dtype=self.dtype, name="conv1")(x)
    y = nn.relu(L.batch_norm(train, self.dtype, name="bn1")(y))
    y = L.conv(out, 3, dtype=self.dtype, name="conv2")(y)
    y = L.batch_norm(train, self.dtype, name="bn2")(y)
    if self.stride != 1 or x.shape[-1] != out:
      x = L.conv(out, 1, self.stride, dtype=self.dtype, name="downsample_conv")(x)
      x = L.batch_norm(train, self.dtype, name="downsample_bn")(x)
    return nn.relu(y + x)


class Bottleneck(nn.Module):
  """1x1 -> 3x3 (stride, groups) -> 1x1 (4 x planes) bottleneck (ResNet-50/101, ResNeXt)."""
  planes: int
  stride: int = 1
  groups: int = 1
  width_per_group: int = 64
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    width = int(self.planes * (self.width_per_group / 64.0)) * self.groups
    out = 4 * self.planes
    y = L.conv(width, 1, dtype=self.dtype, name="conv1")(x)
    y = nn.relu(L.batch_norm(train, self.dtype, name="bn1")(y))
    y = L.conv(width, 3, self.stride, groups=self.groups, dtype=self.dtype, name="conv2")(y)
    y = nn.relu(L.batch_norm(train, self.dtype, name="bn2")(y))
    y = L.conv(out, 1, dtype=self.dtype, name="conv3")(y)
    y = L.batch_norm(train, self.dtype, name="bn3")(y)
    if self.stride != 1 or x.shape[-1] != out:
      x = L.conv(out, 1, self.stride, dtype=self.dtype, name="downsample_conv")(x)
      x = L.batch_norm(train, self.dtype, name="downsample_bn")(x)
    return nn.relu(y + x)


class ResNet(nn.Module):
  """A ResNet/ResNeXt; see the module docstring for stems, ResNet-17 and ``feature_dim``.

  Sows 'last_conv' (output of the last residual block, after its ReLU) and 'features'
  (the globally average-pooled maps, or their ``feature_dim`` embedding).
  """
  num_classes: int
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block: str = "basic"
  groups: int = 1
  width_per_group: int = 64
  stem: str = "imagenet"
  feature_dim: int | None = None
  logits_from_last_conv: bool = False
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    L.check_input(x, type(self).__name__)
    L.check_choice(self.stem, ("cifar", "imagenet"), "stem")
    L.check_choice(self.block, ("basic", "bottleneck"), "block")
    if self.logits_from_last_conv and (self.block != "basic" or self.feature_dim is not None):
      raise ValueError("logits_from_last_conv (ResNet-17) needs block='basic' and "
                       "feature_dim=None")
    x = jnp.asarray(x, self.dtype)
    if self.stem == "imagenet":
      x = L.conv(64, 7, 2, dtype=self.dtype, name="stem_conv")(x)
      x = nn.relu(L.batch_norm(train, self.dtype, name="stem_bn")(x))
      x = L.max_pool(x, 3, 2, pad=1)
    else:
      x = L.conv(64, 3, 1, dtype=self.dtype, name="stem_conv")(x)
      x = nn.relu(L.batch_norm(train, self.dtype, name="stem_bn")(x))
    last_stage = len(self.stage_sizes) - 1
    for i, n_blocks in enumerate(self.stage_sizes):
      planes = 64 * 2**i
      for j in range(n_blocks):
        stride = 2 if i > 0 and j == 0 else 1
        name = f"layer{i + 1}_{j}"
        if self.block == "basic":
          out = (self.num_classes if self.logits_from_last_conv and i == last_stage
                 and j == n_blocks - 1 else None)
          x = BasicBlock(planes, stride, out, dtype=self.dtype, name=name)(x, train=train)
        else:
          x = Bottleneck(planes, stride, self.groups, self.width_per_group,
                         dtype=self.dtype, name=name)(x, train=train)
    self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
    x = L.global_avg_pool(x)
    if self.logits_from_last_conv:
      self.sow(L.INTERMEDIATES, L.FEATURES, x)
      return jnp.asarray(x, jnp.float32)
    if self.feature_dim is not None:
      x = nn.Dense(self.feature_dim, dtype=self.dtype, name="embedding")(x)
    return L.classify(self, x, self.num_classes, self.dtype)
