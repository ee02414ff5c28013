"""Flax Linen backbones that sow 'features' and 'last_conv' (names documented in ``registry``).

>>> from disc_jax import models
>>> model = models.get_model('resnet18', num_classes=10, stem='cifar')
"""
from disc_jax.models.cvt import CvT
from disc_jax.models.embedding_cnn import EmbeddingCNN, l2_normalize
from disc_jax.models.lenet import LeNet5, LeNetPP, PReLU
from disc_jax.models.mobilenet import MobileNetV2
from disc_jax.models.registry import (
    FEATURES,
    LAST_CONV,
    MODEL_NAMES,
    apply_with_features,
    get_model,
    init_variables,
    model_kwargs,
)
from disc_jax.models.resnet import ResNet
from disc_jax.models.vgg import VGG

__all__ = [
    "FEATURES", "LAST_CONV", "MODEL_NAMES", "get_model", "apply_with_features",
    "init_variables", "model_kwargs", "CvT", "EmbeddingCNN", "LeNet5",
    "LeNetPP", "MobileNetV2", "PReLU", "ResNet", "VGG", "l2_normalize",
]
