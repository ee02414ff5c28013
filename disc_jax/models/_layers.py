"""Building blocks shared by the backbones: sow names, batch norm, initialisers, pooling.

The sowed names and their meaning for every model are documented once, in the table of
``disc_jax.models.registry``; this module only defines the constants.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

FEATURES = "features"
LAST_CONV = "last_conv"
INTERMEDIATES = "intermediates"

Dtype = Any

# PyTorch's BatchNorm2d(momentum=0.1) updates ``running = 0.9 * running + 0.1 * batch``;
# Flax's ``momentum`` is the weight of the old value, so 0.9 here is the same rule.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# torchvision's ResNet/VGG/MobileNetV2 convolution init: kaiming_normal_(mode='fan_out',
# nonlinearity='relu'), i.e. N(0, 2 / fan_out).
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def batch_norm(train: bool, dtype: Dtype, name: str | None = None, **kw: Any) -> nn.BatchNorm:
  """BatchNorm with running statistics in 'batch_stats', used (not updated) when not train."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                      epsilon=BN_EPSILON, dtype=dtype, name=name, **kw)


def torch_padding(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
  """Symmetric padding ``kernel // 2``, as PyTorch's ``Conv2d(padding=k // 2)``.

  Flax's 'SAME' pads asymmetrically for even inputs with stride 2, which changes which
  pixels a strided conv sees; explicit symmetric padding keeps the torchvision layout.
  """
  p = kernel // 2
  return ((p, p), (p, p))


def conv(features: int, kernel: int, stride: int = 1, *, dtype: Dtype, name: str | None = None,
         groups: int = 1, use_bias: bool = False, kernel_init: Any = conv_init) -> nn.Conv:
  """A bias-free ``kernel x kernel`` convolution with PyTorch-style symmetric padding."""
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=torch_padding(kernel), feature_group_count=groups,
                 use_bias=use_bias, dtype=dtype, kernel_init=kernel_init, name=name)


def max_pool(x: jax.Array, window: int, stride: int, pad: int = 0) -> jax.Array:
  """Max pooling with symmetric ``-inf`` padding (PyTorch ``MaxPool2d(window, stride, pad)``).

  Non-overlapping, unpadded windows (``window == stride``, ``pad == 0``: LeNet's, VGG's and
  the embedding CNN's 2x2 pools) are the elementwise maximum of the ``window**2`` strided
  slices. The values are those of ``nn.max_pool`` (trailing rows/columns that fill no
  window are dropped, PyTorch's floor mode), but the gradient is elementwise selects
  instead of XLA's ``select_and_scatter``, which is slow on CPU: about 1.5x faster LeNet-5
  train step (results/benchmarks.md). Choice: on ties the gradient is split between the
  tied maxima (JAX's rule for ``maximum``: half to each side of a tied pair; in a 2x2
  window a quarter each) where ``select_and_scatter`` gives it all to one; after a ReLU
  the common ties are all-zero windows, whose ReLU gradient is zero either way
  (tests/models/test_layers.py checks both). Not used: a reshape to
  ``[B, H/k, k, W/k, k, C]`` + max (slower than the slices here, and at
  ``--xla_backend_optimization_level=0``, the test suite's setting, XLA:CPU in jaxlib
  0.10.2 trained the embedding CNN to NaN with it; tests/train/test_devices.py caught it).
  """
  if window == stride and pad == 0:
    hh, ww = x.shape[1] // window, x.shape[2] // window
    parts = [x[:, i:i + hh * window:window, j:j + ww * window:window]
             for i in range(window) for j in range(window)]
    while len(parts) > 1:   # a balanced tree of maxima: a 2x2 window's ties split evenly
      parts = [jnp.maximum(*parts[k:k + 2]) if k + 1 < len(parts) else parts[k]
               for k in range(0, len(parts), 2)]
    return parts[0]
  return nn.max_pool(x, (window, window), strides=(stride, stride),
                     padding=((pad, pad), (pad, pad)))


def global_avg_pool(x: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, C]: mean over the spatial axes."""
  return jnp.mean(x, axis=(1, 2))


def _adaptive_matrix(size: int, out: int) -> np.ndarray:
  """[out, size] averaging weights of PyTorch's adaptive pooling bins.

  Bin ``i`` covers ``[floor(i * size / out), ceil((i + 1) * size / out))``; when
  ``size < out`` bins repeat input pixels, as in ``nn.AdaptiveAvgPool2d``.
  """
  m = np.zeros((out, size), np.float32)
  for i in range(out):
    lo = (i * size) // out
    hi = -((-(i + 1) * size) // out)
    m[i, lo:hi] = 1.0 / (hi - lo)
  return m


def adaptive_avg_pool(x: jax.Array, out: int) -> jax.Array:
  """PyTorch ``AdaptiveAvgPool2d((out, out))`` on [B, H, W, C] -> [B, out, out, C].

  >>> adaptive_avg_pool(jnp.ones((1, 1, 1, 2)), 7).shape
  (1, 7, 7, 2)
  """
  _, h, w, _ = x.shape
  ph = jnp.asarray(_adaptive_matrix(h, out), x.dtype)
  pw = jnp.asarray(_adaptive_matrix(w, out), x.dtype)
  return jnp.einsum("oh,bhwc,pw->bopc", ph, x, pw)


def classify(module: nn.Module, features: jax.Array, num_classes: int, dtype: Dtype,
             **kw: Any) -> jax.Array:
  """Sow ``features`` and apply the final Dense named 'head'; logits come back float32.

  Must be called from inside ``module``'s compact ``__call__`` so the sowed value and the
  'head' parameters sit at the top level of the model's collections.
  """
  module.sow(INTERMEDIATES, FEATURES, features)
  logits = nn.Dense(num_classes, dtype=dtype, name="head", **kw)(features)
  return jnp.asarray(logits, jnp.float32)


def check_input(x: jax.Array, name: str, min_size: int = 1) -> None:
  """ValueError unless ``x`` is [B, H, W, C] with H, W >= ``min_size``."""
  if x.ndim != 4:
    raise ValueError(f"{name}: x must be [batch, height, width, channels], got shape {x.shape}")
  if x.shape[1] < min_size or x.shape[2] < min_size:
    raise ValueError(f"{name}: x is {x.shape[1]}x{x.shape[2]} pixels but this network needs at "
                     f"least {min_size}x{min_size}; resize the input")


def check_choice(value: str, choices: Sequence[str], arg: str) -> None:
  if value not in choices:
    raise ValueError(f"{arg}={value!r} is not one of {tuple(choices)}")

