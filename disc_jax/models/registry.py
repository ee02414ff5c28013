"""Model registry and the one place where the sowed intermediate names are documented.

Every model is a Flax Linen module called as ``model.apply(variables, x, train=...)`` on
NHWC images ``x`` [B, H, W, C] and returning float32 logits [B, num_classes]. Each sows,
into the ``'intermediates'`` collection, the two arrays the auxiliary losses read:

* ``FEATURES = 'features'``: [B, D], exactly the input of the final Dense layer, which is
  named ``'head'`` (``params['head']['kernel']`` [D, C], ``params['head']['bias']`` [C]),
  so ``head(features) == logits``. Where dropout precedes the head (VGG 'imagenet'
  classifier, MobileNetV2), the train-mode value carries the dropout mask.
* ``LAST_CONV = 'last_conv'``: [B, H', W', C'], the activation maps of the last
  convolutional stage after its non-linearity (Gini/KL paper: "the last convolutional
  layer"), before any pooling.

``apply_with_features`` returns them as ``feats[FEATURES]`` and ``feats[LAST_CONV]``.

'last_conv' shapes [H', W', C'] for 28x28x1 / 32x32x3 / 224x224x3 inputs (C = num_classes):

=================  ==============================  ============  ============  ==============
name (stem)        'features' D: what it is         28x28         32x32         224x224
=================  ==============================  ============  ============  ==============
lenet5             84: fc2 ReLU (``feature_dim``)   10,10,16      12,12,16      108,108,16
lenet_pp           2: fc PReLU (``feature_dim``)    7,7,128       8,8,128       56,56,128
embedding_cnn      ``embedding_dim`` (2), opt. L2   14,14,64      16,16,64      112,112,64
resnet17 (cifar)   C: pooled last_conv = logits     4,4,C         4,4,C         28,28,C
resnet17 (imnet)   C: pooled last_conv = logits     1,1,C         1,1,C         7,7,C
resnet18 (cifar)   512 pooled (or ``feature_dim``)  4,4,512       4,4,512       28,28,512
resnet18 (imnet)   512 pooled (or ``feature_dim``)  1,1,512       1,1,512       7,7,512
resnet50/101,      2048 pooled (or                  4,4,2048      4,4,2048      28,28,2048
resnext50 (cifar)  ``feature_dim``)
same (imnet)       2048 pooled                      1,1,2048      1,1,2048      7,7,2048
vgg13/16           4096 fc ReLU + dropout           (needs 32)    2,2,512       14,14,512
(imagenet clf.)
vgg13/16 (cifar)   512 pooled                       (needs 32)    2,2,512       14,14,512
mobilenet_v2 cif.  1280 pooled (+ dropout)          4,4,1280      4,4,1280      28,28,1280
mobilenet_v2 imn.  1280 pooled (+ dropout)          1,1,1280      1,1,1280      7,7,1280
cvt7 (cifar)       258: LayerNorm(class token)      4,4,258       4,4,258       28,28,258
cvt7 (imnet)       258: LayerNorm(class token)      2,2,258       2,2,258       14,14,258
=================  ==============================  ============  ============  ==============

Which activation 'last_conv' is: LeNet-5 conv2 ReLU, LeNet++ conv3_2 PReLU, embedding CNN
4th conv ReLU, VGG last conv ReLU (all before their pool); ResNets the last residual
block's output (after its ReLU); MobileNetV2 the final 1x1 conv's ReLU6; CvT-7 the
stage-3 convolutional token embedding (after its LayerNorm; no non-linearity, as the
Gini paper uses it). tests/models/test_model_shapes.py checks every row.

Details, layer choices and CIFAR-variant parameter counts are in each module: ``lenet``,
``embedding_cnn``, ``resnet``, ``vgg``, ``mobilenet``, ``cvt``; the centroids of the
intra-class variance loss are loss parameters (``disc_jax.train.objective``).

Batch norm: running statistics in ``'batch_stats'``, updated in train mode with momentum
0.9 (new = 0.9 old + 0.1 batch, PyTorch's momentum=0.1), used unchanged in eval mode.
Dropout draws from the rng stream ``'dropout'`` in train mode only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from disc_jax.models import _layers
from disc_jax.models.cvt import CvT
from disc_jax.models.embedding_cnn import EmbeddingCNN
from disc_jax.models.lenet import LeNet5, LeNetPP
from disc_jax.models.mobilenet import MobileNetV2
from disc_jax.models.resnet import ResNet
from disc_jax.models.vgg import VGG, VGG_CONFIGS

FEATURES = _layers.FEATURES
LAST_CONV = _layers.LAST_CONV

# name -> (module class, fixed architecture fields the caller may not override).
_REGISTRY: dict[str, tuple[type[nn.Module], dict[str, Any]]] = {
    "lenet5": (LeNet5, {}),
    "lenet_pp": (LeNetPP, {}),
    "embedding_cnn": (EmbeddingCNN, {}),
    "resnet17": (ResNet, dict(stage_sizes=(2, 2, 2, 2), block="basic",
                              logits_from_last_conv=True, feature_dim=None)),
    "resnet18": (ResNet, dict(stage_sizes=(2, 2, 2, 2), block="basic",
                              logits_from_last_conv=False)),
    "resnet50": (ResNet, dict(stage_sizes=(3, 4, 6, 3), block="bottleneck",
                              logits_from_last_conv=False)),
    "resnet101": (ResNet, dict(stage_sizes=(3, 4, 23, 3), block="bottleneck",
                               logits_from_last_conv=False)),
    "resnext50_32x4d": (ResNet, dict(stage_sizes=(3, 4, 6, 3), block="bottleneck", groups=32,
                                     width_per_group=4, logits_from_last_conv=False)),
    "vgg13": (VGG, dict(config=VGG_CONFIGS["vgg13"])),
    "vgg16": (VGG, dict(config=VGG_CONFIGS["vgg16"])),
    "mobilenet_v2": (MobileNetV2, {}),
    "cvt7": (CvT, dict(embed_dims=(32, 128, 258), depths=(1, 2, 4), num_heads=(1, 2, 6))),
}
_RESNET_FIXED = ("stage_sizes", "block", "groups", "width_per_group", "logits_from_last_conv")

MODEL_NAMES = tuple(_REGISTRY)


def _field_names(cls: type[nn.Module]) -> set[str]:
  return {f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name")}


def model_kwargs(name: str) -> tuple[str, ...]:
  """The keyword arguments ``get_model(name, ...)`` accepts (besides ``num_classes``).

  >>> model_kwargs('resnet18')
  ('dtype', 'feature_dim', 'stem')
  """
  cls, fixed = _lookup(name)
  blocked = set(fixed) | {"num_classes"}
  if cls is ResNet:
    blocked |= set(_RESNET_FIXED)
  return tuple(sorted(_field_names(cls) - blocked))


def _lookup(name: str) -> tuple[type[nn.Module], dict[str, Any]]:
  if name not in _REGISTRY:
    raise ValueError(f"unknown model name {name!r}; known names: {', '.join(MODEL_NAMES)}")
  return _REGISTRY[name]


def get_model(name: str, *, num_classes: int, **kwargs: Any) -> nn.Module:
  """Build the registered model ``name`` (see the table above).

  Args:
    name: one of ``MODEL_NAMES``.
    num_classes: number of output logits (a positive int).
    **kwargs: architecture options, e.g. ``stem='cifar'`` for ResNets, MobileNetV2 and CvT,
      ``classifier='cifar'`` for VGG, ``feature_dim``/``embedding_dim`` where the papers
      vary the feature width, ``dtype`` (compute dtype; params stay float32) for all.

  Raises:
    ValueError: unknown name (the message lists the names), a bad ``num_classes``, or
      keyword arguments the model does not take (the message names them and the valid ones).

  >>> get_model('lenet_pp', num_classes=10, feature_dim=2).feature_dim
  2
  """
  cls, fixed = _lookup(name)
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
  allowed = model_kwargs(name)
  bad = sorted(set(kwargs) - set(allowed))
  if bad:
    raise ValueError(f"{name} does not take keyword argument(s) {bad}; it accepts "
                     f"num_classes and {list(allowed)}")
  return cls(num_classes=num_classes, **fixed, **kwargs)


def init_variables(model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...]) -> dict:
  """Initialise ``model`` on zeros of ``input_shape`` ([B, H, W, C], or [H, W, C] for B = 1).

  Returns the variables ({'params': ..., 'batch_stats': ... if the model has BN}) without
  'intermediates'. Pure, so it can be jitted or traced with ``jax.eval_shape`` to get the
  shapes without allocating (the parameter-count tests do that). The variables do not
  depend on the batch size.

  >>> v = init_variables(get_model('lenet5', num_classes=10), jax.random.key(0), (28, 28, 1))
  >>> v['params']['head']['kernel'].shape
  (84, 10)
  """
  shape = tuple(input_shape)
  if len(shape) == 3:
    shape = (1,) + shape
  if len(shape) != 4:
    raise ValueError(f"input_shape must be [B, H, W, C] or [H, W, C], got {input_shape}")
  params_rng, dropout_rng = jax.random.split(rng)
  variables = model.init({"params": params_rng, "dropout": dropout_rng},
                         jnp.zeros(shape, jnp.float32), train=False)
  return {k: v for k, v in variables.items() if k != _layers.INTERMEDIATES}


def apply_with_features(model: nn.Module, variables: Mapping[str, Any], x: jax.Array, *,
                        train: bool, rngs: Mapping[str, jax.Array] | None = None
                        ) -> tuple[jax.Array, dict[str, jax.Array], dict[str, Any]]:
  """Run ``model`` and return ``(logits, feats, updates)``.

  ``feats`` maps each sowed name (``FEATURES``, ``LAST_CONV``) to its array; ``updates``
  holds the mutated collections other than 'intermediates': ``{'batch_stats': ...}`` in
  train mode for models with batch norm, ``{}`` otherwise. ``rngs`` must hold a
  ``'dropout'`` key to train models with dropout (Flax raises otherwise).

  >>> m = get_model('lenet5', num_classes=10)
  >>> v = init_variables(m, jax.random.key(0), (28, 28, 1))
  >>> logits, feats, updates = apply_with_features(m, v, jnp.zeros((2, 28, 28, 1)), train=True)
  >>> logits.shape, feats['features'].shape, updates
  ((2, 10), (2, 84), {})
  """
  variables = {k: v for k, v in variables.items() if k != _layers.INTERMEDIATES}
  mutable = [_layers.INTERMEDIATES]
  if train and "batch_stats" in variables:
    mutable.append("batch_stats")
  logits, state = model.apply(variables, x, train=train, rngs=rngs, mutable=mutable)
  state = dict(state)
  sowed = state.pop(_layers.INTERMEDIATES, {})
  feats = {k: v[-1] if isinstance(v, tuple) else v for k, v in sowed.items()}
  return logits, feats, state
