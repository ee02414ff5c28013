"""VGG-13 and VGG-16 with batch norm (Simonyan & Zisserman, ICLR 2015; BN as torchvision).

Used by the group softmax paper (VGG16-BN, D = 4096, Food-101) and ITRA (VGG13, CIFAR/STL).

Feature extractor: stages of ``3x3 conv -> BN -> ReLU`` (torchvision's ``vgg*_bn``; the
convs keep their bias, as there), each stage closed by a 2x2/2 max-pool; five pools, so
inputs must be at least 32x32 (28x28 raises a ValueError). 'last_conv' is the last conv's
ReLU output, before the fifth max-pool ([B, 14, 14, 512] at 224, [B, 2, 2, 512] at 32).

Classifier (``classifier=``):
  * ``'imagenet'`` (torchvision): adaptive average pool to 7x7, flatten (25,088),
    ``Dense(hidden_dim) -> ReLU -> Dropout`` twice, then 'head'. D = ``hidden_dim`` (4096).
  * ``'cifar'`` (the CIFAR VGG used with ResNet18/MobileNetV2 in ITRA's setting): global
    average pool of the final 512 maps (a plain flatten at 32x32), then 'head'. D = 512,
    no dropout.

Dropout (rate ``dropout_rate``, 0.5 as torchvision) is active only with ``train=True`` and
draws from the 'dropout' rng. 'features' is exactly the head's input, so in train mode it
carries the dropout mask (set ``dropout_rate=0`` for undropped features).

Parameter counts ('params' only), computed by tests/models/test_model_param_counts.py:
vgg16 imagenet/1000: 138,365,992 (torchvision vgg16_bn); vgg13 imagenet/1000: 133,053,736;
vgg13 cifar/10: 9,416,010; vgg13 cifar/100: 9,462,180; vgg16 cifar/10: 14,728,266;
vgg16 cifar/100: 14,774,436.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from disc_jax.models import _layers as L

# Channels per conv; 'M' is a 2x2/2 max-pool (torchvision's configs 'B' and 'D').
VGG_CONFIGS = {
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}

_linear_init = nn.initializers.normal(0.01)  # torchvision VGG: Linear ~ N(0, 0.01), bias 0


class VGG(nn.Module):
  """VGG with batch norm; see the module docstring for the two classifiers."""
  num_classes: int
  config: Sequence[int | str] = VGG_CONFIGS["vgg16"]
  classifier: str = "imagenet"
  hidden_dim: int = 4096
  dropout_rate: float = 0.5
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    L.check_input(x, "VGG", min_size=32)
    L.check_choice(self.classifier, ("cifar", "imagenet"), "classifier")
    x = jnp.asarray(x, self.dtype)
    n_conv = 0
    for item in self.config:
      if item == "M":
        if n_conv == sum(1 for c in self.config if c != "M"):
          self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
        x = L.max_pool(x, 2, 2)
      else:
        x = L.conv(int(item), 3, dtype=self.dtype, use_bias=True, name=f"conv{n_conv}")(x)
        x = nn.relu(L.batch_norm(train, self.dtype, name=f"bn{n_conv}")(x))
        n_conv += 1
    if self.classifier == "cifar":
      x = L.global_avg_pool(x)
    else:
      x = L.adaptive_avg_pool(x, 7).reshape(x.shape[0], -1)
      for i in range(2):
        x = nn.Dense(self.hidden_dim, dtype=self.dtype, kernel_init=_linear_init,
                     name=f"fc{i}")(x)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(x))
    return L.classify(self, x, self.num_classes, self.dtype, kernel_init=_linear_init)
