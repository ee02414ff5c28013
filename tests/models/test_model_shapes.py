"""Output and sowed-intermediate shapes of every registered model, train and eval mode.

All models on 28x28x1, 32x32x3 and 224x224x3 through ``jax.eval_shape`` (traces the real
computation, allocates nothing); the small 28x28 ones are also executed under ``jax.jit``
(their executed values are checked in test_model_behaviour.py).
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disc_jax import models

B, C = 2, 10
SIZES = {28: (B, 28, 28, 1), 32: (B, 32, 32, 3), 224: (B, 224, 224, 3)}

# (name, kwargs, D of 'features', {input size: 'last_conv' [H, W, C]}): every model at every
# size it supports; both stems of ResNet-17/18 everywhere, of the others where they differ.
CASES = [
    ("lenet5", {}, 84, {28: (10, 10, 16), 32: (12, 12, 16), 224: (108, 108, 16)}),
    ("lenet_pp", {}, 2, {28: (7, 7, 128), 32: (8, 8, 128), 224: (56, 56, 128)}),
    ("lenet_pp", {"feature_dim": 3}, 3, {28: (7, 7, 128)}),
    ("embedding_cnn", {}, 2, {28: (14, 14, 64), 32: (16, 16, 64), 224: (112, 112, 64)}),
    ("embedding_cnn", {"embedding_dim": 4, "normalize": True}, 4, {28: (14, 14, 64)}),
    ("embedding_cnn", {"widths": (16, 32), "convs_per_stage": 1}, 2,
     {28: (14, 14, 32), 32: (16, 16, 32)}),
    ("embedding_cnn", {"widths": (8, 8, 16), "convs_per_stage": 3}, 2, {28: (7, 7, 16)}),
    ("resnet17", {"stem": "cifar"}, C, {28: (4, 4, C), 32: (4, 4, C), 224: (28, 28, C)}),
    ("resnet17", {"stem": "imagenet"}, C, {28: (1, 1, C), 32: (1, 1, C), 224: (7, 7, C)}),
    ("resnet18", {"stem": "cifar"}, 512,
     {28: (4, 4, 512), 32: (4, 4, 512), 224: (28, 28, 512)}),
    ("resnet18", {"stem": "imagenet"}, 512,
     {28: (1, 1, 512), 32: (1, 1, 512), 224: (7, 7, 512)}),
    ("resnet18", {"stem": "cifar", "feature_dim": 2}, 2, {32: (4, 4, 512)}),
    ("resnet50", {"stem": "cifar"}, 2048, {28: (4, 4, 2048), 32: (4, 4, 2048)}),
    ("resnet50", {"stem": "imagenet"}, 2048, {32: (1, 1, 2048), 224: (7, 7, 2048)}),
    ("resnet101", {"stem": "cifar"}, 2048, {28: (4, 4, 2048), 32: (4, 4, 2048)}),
    ("resnet101", {"stem": "imagenet"}, 2048, {224: (7, 7, 2048)}),
    ("resnext50_32x4d", {"stem": "cifar"}, 2048, {28: (4, 4, 2048), 32: (4, 4, 2048)}),
    ("resnext50_32x4d", {"stem": "imagenet"}, 2048, {224: (7, 7, 2048)}),
    ("vgg13", {"classifier": "cifar"}, 512, {32: (2, 2, 512)}),
    ("vgg13", {"classifier": "imagenet"}, 4096, {224: (14, 14, 512)}),
    ("vgg16", {"classifier": "cifar"}, 512, {32: (2, 2, 512), 224: (14, 14, 512)}),
    ("vgg16", {"classifier": "imagenet"}, 4096, {32: (2, 2, 512), 224: (14, 14, 512)}),
    ("mobilenet_v2", {"stem": "cifar"}, 1280, {28: (4, 4, 1280), 32: (4, 4, 1280)}),
    ("mobilenet_v2", {"stem": "imagenet"}, 1280, {32: (1, 1, 1280), 224: (7, 7, 1280)}),
    ("cvt7", {"stem": "cifar"}, 258, {28: (4, 4, 258), 32: (4, 4, 258)}),
    ("cvt7", {"stem": "imagenet"}, 258, {32: (2, 2, 258), 224: (14, 14, 258)}),
]
PARAMS = [pytest.param(n, kw, d, size, lc, id=f"{n}-{'-'.join(map(str, kw.values()))}-{size}")
          for n, kw, d, sizes in CASES for size, lc in sizes.items()]
SMALL = ("lenet5", "lenet_pp", "embedding_cnn")


def test_every_registered_model_is_covered():
  assert {c[0] for c in CASES} == set(models.MODEL_NAMES)


def _check(logits, feats, updates, d, lc, has_bn, train):
  chex.assert_shape(logits, (B, C))
  assert set(feats) == {models.FEATURES, models.LAST_CONV}
  chex.assert_shape(feats[models.FEATURES], (B, d))
  chex.assert_shape(feats[models.LAST_CONV], (B,) + lc)
  assert set(updates) == ({"batch_stats"} if has_bn and train else set())


@pytest.mark.parametrize("name,kw,d,size,lc", PARAMS)
def test_shapes_eval_shape(name, kw, d, size, lc, key):
  """Eval and train mode, traced with jax.eval_shape (no compile, no allocation).

  Eval mode is read off the initialisation trace itself (``init_with_output`` runs the
  model with ``train=False`` and returns what it sowed), which saves one trace per case.
  """
  model = models.get_model(name, num_classes=C, **kw)
  x = jax.ShapeDtypeStruct(SIZES[size], jnp.float32)
  logits, variables = jax.eval_shape(
      lambda r, x: model.init_with_output({"params": r, "dropout": r}, x, train=False,
                                          mutable=True),
      key(0), x)
  feats = {k: v[0] for k, v in variables.pop("intermediates").items()}
  _check(logits, feats, {}, d, lc, "batch_stats" in variables, False)
  out = jax.eval_shape(
      lambda v, x: models.apply_with_features(model, v, x, train=True,
                                              rngs={"dropout": key(1)}), variables, x)
  _check(*out, d, lc, "batch_stats" in variables, True)
  assert logits.dtype == out[0].dtype == jnp.float32


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize(
    "name,kw,d,size,lc", [p for p in PARAMS if p.values[0] in SMALL and p.values[3] == 28
                          and p.values[1] in ({}, {"embedding_dim": 4, "normalize": True})])
def test_shapes_executed(name, kw, d, size, lc, train, build, key):
  _, variables, apply = build(name, SIZES[size], **kw)
  x = jax.random.normal(jax.random.key(size), SIZES[size])
  logits, feats, updates = apply(variables, x, train=train)  # jax.jit of apply_with_features
  _check(logits, feats, updates, d, lc, "batch_stats" in variables, train)
  assert np.all(np.isfinite(np.asarray(logits)))


def test_vgg_rejects_inputs_below_32(key):
  model = models.get_model("vgg13", num_classes=C)
  with pytest.raises(ValueError, match="at least 32x32"):
    jax.eval_shape(lambda r: models.init_variables(model, r, SIZES[28]), key(0))


def test_non_image_input_is_rejected(key):
  model = models.get_model("lenet5", num_classes=C)
  with pytest.raises(ValueError, match=r"\[batch, height, width, channels\]"):
    model.init(key(0), jnp.zeros((2, 28, 28)), train=False)


def test_bfloat16_compute_keeps_float32_params(key):
  """dtype is the compute dtype: params stay float32, features bf16, logits float32."""
  model = models.get_model("resnet18", num_classes=C, stem="cifar", dtype=jnp.bfloat16)
  variables = jax.eval_shape(lambda r: models.init_variables(model, r, SIZES[32]), key(0))
  assert {l.dtype for l in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
  logits, feats, _ = jax.eval_shape(
      lambda v, x: models.apply_with_features(model, v, x, train=True), variables,
      jax.ShapeDtypeStruct(SIZES[32], jnp.float32))
  assert feats[models.FEATURES].dtype == jnp.bfloat16
  assert feats[models.LAST_CONV].dtype == jnp.bfloat16
  assert logits.dtype == jnp.float32
