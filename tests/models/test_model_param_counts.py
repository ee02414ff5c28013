"""Parameter counts ('params' only) against torchvision and the documented CIFAR variants.

Counted on ``jax.eval_shape`` of the initialiser: no weights are allocated.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest

from disc_jax import models


def _count(name, shape, num_classes, key, **kw):
  model = models.get_model(name, num_classes=num_classes, **kw)
  variables = jax.eval_shape(lambda r: models.init_variables(model, r, shape), key(0))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables["params"]))


IMAGENET = (224, 224, 3)
CIFAR = (32, 32, 3)
MNIST = (28, 28, 1)
LIGHT = {"widths": (16, 32), "convs_per_stage": 1}   # configs/intra_class_variance


@pytest.mark.parametrize("name,kw,expected", [
    ("resnet18", {"stem": "imagenet"}, 11_689_512),
    ("resnet50", {"stem": "imagenet"}, 25_557_032),
    ("resnext50_32x4d", {"stem": "imagenet"}, 25_028_904),
    ("vgg16", {"classifier": "imagenet"}, 138_365_992),
    ("mobilenet_v2", {"stem": "imagenet"}, 3_504_872),
])
def test_torchvision_counts(name, kw, expected, key):
  assert _count(name, IMAGENET, 1000, key, **kw) == expected


# The counts stated in the module docstrings (resnet.py, vgg.py, mobilenet.py, cvt.py,
# lenet.py, embedding_cnn.py); a change to an architecture must update its docstring.
@pytest.mark.parametrize("name,shape,classes,kw,expected", [
    ("resnet17", CIFAR, 10, {"stem": "cifar"}, 8_859_752),
    ("resnet17", CIFAR, 100, {"stem": "cifar"}, 9_320_912),
    ("resnet18", CIFAR, 10, {"stem": "cifar"}, 11_173_962),
    ("resnet18", CIFAR, 100, {"stem": "cifar"}, 11_220_132),
    ("resnet50", CIFAR, 100, {"stem": "cifar"}, 23_705_252),
    ("resnet101", IMAGENET, 1000, {"stem": "imagenet"}, 44_549_160),
    ("resnet101", CIFAR, 100, {"stem": "cifar"}, 42_697_380),
    ("resnext50_32x4d", CIFAR, 100, {"stem": "cifar"}, 23_177_124),
    ("vgg13", IMAGENET, 1000, {"classifier": "imagenet"}, 133_053_736),
    ("vgg13", CIFAR, 10, {"classifier": "cifar"}, 9_416_010),
    ("vgg16", CIFAR, 100, {"classifier": "cifar"}, 14_774_436),
    ("mobilenet_v2", CIFAR, 10, {"stem": "cifar"}, 2_236_682),
    ("cvt7", CIFAR, 100, {"stem": "cifar"}, 4_024_168),
    ("cvt7", IMAGENET, 1000, {"stem": "imagenet"}, 4_261_108),
    ("lenet5", MNIST, 10, {}, 61_706),
    ("lenet_pp", MNIST, 10, {}, 797_634),
    ("embedding_cnn", MNIST, 10, {"embedding_dim": 2}, 869_056),
    ("embedding_cnn", MNIST, 10, {"embedding_dim": 4}, 869_590),
    ("embedding_cnn", MNIST, 10, {"embedding_dim": 2, **LIGHT}, 407_312),
    ("embedding_cnn", MNIST, 10, {"embedding_dim": 4, **LIGHT}, 407_846),
])
def test_documented_counts(name, shape, classes, kw, expected, key):
  assert _count(name, shape, classes, key, **kw) == expected


@pytest.mark.parametrize("dim", [2, 4])
def test_light_embedding_cnn_count_by_hand(dim, key):
  """conv 3x3 1->16, BN, P_2, conv 3x3 16->32, BN, P_2, fc 7*7*32->256 (no bias), BN,
  embedding 256->dim, head dim->10."""
  convs = 9 * 1 * 16 + 2 * 16 + 9 * 16 * 32 + 2 * 32
  fc = 7 * 7 * 32 * 256 + 2 * 256
  assert _count("embedding_cnn", MNIST, 10, key, embedding_dim=dim, **LIGHT) == (
      convs + fc + 256 * dim + dim + dim * 10 + 10)


def test_resnet17_replaces_the_dense_by_a_num_classes_conv(key):
  """ResNet-17 = ResNet-18 - fc - (3x3 512->512 conv) + (3x3 512->C conv, its BN, 1x1
  projection 512->C and its BN), CIFAR stem."""
  c = 100
  r18 = _count("resnet18", CIFAR, c, key, stem="cifar")
  fc = 512 * c + c
  conv_512 = 9 * 512 * 512 + 2 * 512
  conv_c = 9 * 512 * c + 2 * c
  proj_c = 512 * c + 2 * c
  assert _count("resnet17", CIFAR, c, key, stem="cifar") == r18 - fc - conv_512 + conv_c + proj_c
