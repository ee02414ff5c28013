"""LeNet-5 and LeNet++ (the 2-D feature network of the center-loss and sigma^2R papers).

LeNet-5 (LeCun et al. 1998), as the sigma^2R paper uses it on Fashion-MNIST (Sec. 5,
"the original ... LeNet"), in its common modern form:
  conv 5x5x6 (pad 2) -> ReLU -> max-pool 2 -> conv 5x5x16 -> ReLU -> max-pool 2 ->
  Dense 120 -> ReLU -> Dense 84 -> ReLU -> 'head'.
Choices: ReLU and max-pooling replace the original tanh and subsampling layers; conv1
pads by 2, so a 28x28 image is seen as LeCun's 32x32 field (flatten 5*5*16 = 400; a 32x32
input flattens to 6*6*16 = 576). 'last_conv' is conv2's ReLU output before its pool
([B, 10, 10, 16] at 28x28), 'features' the 84-vector (``feature_dim``).

LeNet++ (Wen et al., "A Discriminative Feature Learning Approach for Deep Face
Recognition", ECCV 2016, Fig. 2/Table 1; sigma^2R paper Fig. 4: "a LeNet with PReLU
activation" whose "penultimate layer uses only two neurons"):
  [conv 5x5x32 (pad 2) -> PReLU] x 2 -> max-pool 2 ->
  [conv 5x5x64 (pad 2) -> PReLU] x 2 -> max-pool 2 ->
  [conv 5x5x128 (pad 2) -> PReLU] x 2 -> max-pool 2 ->
  Dense ``feature_dim`` (2) -> PReLU -> 'head'.
PReLU slopes are per channel, initialised to 0.25 (He et al. 2015; Caffe's default,
``channel_shared=false``). Pools round down (PyTorch), so 28x28 ends at 3x3x128 (Caffe's
ceil mode would give 4x4). 'features' is the 2-D PReLU output the papers plot; 'last_conv'
the last conv's PReLU output before the pool ([B, 7, 7, 128] at 28x28).

Parameter counts ('params', 10 classes): lenet5 28x28x1: 61,706; lenet5 32x32x3: 83,126;
lenet_pp 28x28x1: 797,634; lenet_pp 32x32x3: 801,026
(tests/models/test_model_param_counts.py).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from disc_jax.models import _layers as L


class PReLU(nn.Module):
  """Parametric ReLU with one learnable slope per channel (last axis)."""
  init_slope: float = 0.25

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    slope = self.param("slope", nn.initializers.constant(self.init_slope), (x.shape[-1],))
    return jnp.where(x >= 0, x, jnp.asarray(slope, x.dtype) * x)


def _conv5(features: int, pad: int, dtype: L.Dtype, name: str) -> nn.Conv:
  return nn.Conv(features, (5, 5), padding=((pad, pad), (pad, pad)), dtype=dtype, name=name)


class LeNet5(nn.Module):
  """LeNet-5 with ReLU and max-pooling; see the module docstring."""
  num_classes: int
  feature_dim: int = 84
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    del train  # no batch norm or dropout
    L.check_input(x, "LeNet5", min_size=12)
    x = jnp.asarray(x, self.dtype)
    x = L.max_pool(nn.relu(_conv5(6, 2, self.dtype, "conv1")(x)), 2, 2)
    x = nn.relu(_conv5(16, 0, self.dtype, "conv2")(x))
    self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
    x = L.max_pool(x, 2, 2).reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(120, dtype=self.dtype, name="fc1")(x))
    x = nn.relu(nn.Dense(self.feature_dim, dtype=self.dtype, name="fc2")(x))
    return L.classify(self, x, self.num_classes, self.dtype)


class LeNetPP(nn.Module):
  """LeNet++ with PReLU and a ``feature_dim``-wide (2) feature layer; see the module docstring."""
  num_classes: int
  feature_dim: int = 2
  dtype: L.Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    del train  # no batch norm or dropout
    L.check_input(x, "LeNetPP", min_size=8)
    x = jnp.asarray(x, self.dtype)
    for stage, width in enumerate((32, 64, 128)):
      for k in range(2):
        x = _conv5(width, 2, self.dtype, f"conv{stage + 1}_{k + 1}")(x)
        x = PReLU(name=f"prelu{stage + 1}_{k + 1}")(x)
      if stage == 2:
        self.sow(L.INTERMEDIATES, L.LAST_CONV, x)
      x = L.max_pool(x, 2, 2)
    x = x.reshape(x.shape[0], -1)
    x = PReLU(name="prelu_fc")(nn.Dense(self.feature_dim, dtype=self.dtype, name="fc")(x))
    return L.classify(self, x, self.num_classes, self.dtype)
