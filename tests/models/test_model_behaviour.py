"""Executed behaviour of the backbones: head/features, ResNet-17, batch norm, dropout, jit,
the registry's errors and the helpers."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disc_jax import models

C = 10
MNIST = (2, 28, 28, 1)
# VGG-13 with the torchvision classifier but a 16-wide hidden layer: dropout on a small net.
VGG_SMALL = dict(classifier="imagenet", hidden_dim=16)


def _x(shape, seed=0):
  return jax.random.normal(jax.random.key(seed), shape) + 0.5


def _head(variables, feats):
  return nn.Dense(C).apply({"params": variables["params"]["head"]}, feats[models.FEATURES])


@pytest.mark.parametrize("name,kw,train", [
    ("lenet5", {}, False), ("lenet_pp", {}, False), ("embedding_cnn", {}, False),
    ("embedding_cnn", {}, True), ("embedding_cnn", {"embedding_dim": 4, "normalize": True}, True),
])
def test_head_of_features_reproduces_logits(name, kw, train, build):
  _, variables, apply = build(name, MNIST, **kw)
  logits, feats, _ = apply(variables, _x(MNIST), train=train)
  np.testing.assert_allclose(_head(variables, feats), logits, rtol=1e-5, atol=1e-5)
  assert variables["params"]["head"]["kernel"].shape == (feats[models.FEATURES].shape[1], C)


def test_normalized_embedding_has_unit_norm(build):
  _, variables, apply = build("embedding_cnn", MNIST, embedding_dim=4, normalize=True)
  _, feats, _ = apply(variables, _x(MNIST), train=True)
  np.testing.assert_allclose(np.linalg.norm(feats[models.FEATURES], axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(models.l2_normalize(jnp.array([[3.0, 4.0], [0.0, 0.0]])),
                             [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_resnet17_logits_are_pooled_last_conv(build):
  """Gini/KL paper: ResNet-17 has no Dense; the last conv has num_classes maps."""
  _, variables, apply = build("resnet17", (2, 8, 8, 3), stem="cifar")
  assert "head" not in variables["params"]
  logits, feats, _ = apply(variables, _x((2, 8, 8, 3)), train=False)
  last = feats[models.LAST_CONV]
  assert last.shape == (2, 1, 1, C) and np.all(np.asarray(last) >= 0)  # after the block ReLU
  np.testing.assert_allclose(logits, last.mean(axis=(1, 2)), rtol=1e-6)
  np.testing.assert_allclose(feats[models.FEATURES], logits, rtol=1e-6)


def test_batch_norm_updates_in_train_and_is_used_in_eval(build):
  _, variables, apply = build("embedding_cnn", MNIST)
  x = _x(MNIST)
  stats = variables["batch_stats"]
  _, _, upd = apply(variables, x, train=True)
  new = upd["batch_stats"]
  assert jax.tree.structure(new) == jax.tree.structure(stats)
  assert not np.allclose(new["bn0"]["mean"], stats["bn0"]["mean"])
  # Momentum 0.9: running' = 0.9 running + 0.1 batch, and the batch statistic does not depend
  # on the running one, so shifting the old stats by d shifts the new ones by 0.9 d.
  shifted = jax.tree.map(lambda s: s + 1.0, stats)
  _, _, upd2 = apply({**variables, "batch_stats": shifted}, x, train=True)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(b - a, 0.9, rtol=1e-4),
               new, upd2["batch_stats"])
  # Train mode normalises with batch statistics: an example's logits depend on its batch.
  lt, _, _ = apply(variables, x, train=True)
  lt1, _, _ = apply(variables, x[:1], train=True)
  assert not np.allclose(lt[:1], lt1, atol=1e-4)
  # Eval mode: nothing is updated, the running statistics are used (logits change with
  # them) and each example is normalised on its own.
  le, _, upd_e = apply(variables, x, train=False)
  assert upd_e == {}
  le1, _, _ = apply(variables, x[:1], train=False)
  np.testing.assert_allclose(le[:1], le1, rtol=1e-5, atol=1e-5)
  le_shift, _, _ = apply({**variables, "batch_stats": shifted}, x, train=False)
  assert not np.allclose(le, le_shift, atol=1e-4)


def test_dropout_only_in_train_mode_with_explicit_rng(build, key):
  model, variables, apply = build("vgg13", (2, 32, 32, 3), **VGG_SMALL)
  x = _x((2, 32, 32, 3))
  run = lambda r, train: apply(variables, x, train=train, rngs={"dropout": r})
  e1, _, _ = run(key(1), False)
  e2, _, _ = run(key(2), False)
  np.testing.assert_array_equal(e1, e2)                       # eval: deterministic
  t1, f1, _ = run(key(1), True)
  t1b, _, _ = run(key(1), True)
  t2, _, _ = run(key(2), True)
  np.testing.assert_array_equal(t1, t1b)                      # same rng, same mask
  assert not np.allclose(t1, t2)                              # rngs differ, masks differ
  assert not np.allclose(t1, e1)
  feats = np.asarray(f1[models.FEATURES])
  assert 0 < np.mean(feats == 0) < 1                          # masked head input ...
  np.testing.assert_allclose(_head(variables, f1), t1, rtol=1e-5, atol=1e-5)  # ... is 'features'
  # Eval mode needs no rng; train mode without one is an error (traced only: no compile).
  jax.eval_shape(lambda: models.apply_with_features(model, variables, x, train=False))
  with pytest.raises(Exception, match="dropout"):
    jax.eval_shape(lambda: models.apply_with_features(model, variables, x, train=True))


def test_jit_matches_eager(build):
  model, variables, apply = build("lenet5", MNIST)
  x = _x(MNIST)
  eager = models.apply_with_features(model, variables, x, train=True)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               eager, apply(variables, x, train=True))


def test_init_variables_shapes_and_no_intermediates(key):
  model = models.get_model("lenet5", num_classes=C)
  v3 = jax.eval_shape(lambda r: models.init_variables(model, r, (28, 28, 1)), key(0))
  v4 = jax.eval_shape(lambda r: models.init_variables(model, r, (5, 28, 28, 1)), key(0))
  assert set(v3) == {"params"} and jax.tree.map(lambda s: s.shape, v3) == jax.tree.map(
      lambda s: s.shape, v4)
  with pytest.raises(ValueError, match="input_shape"):
    models.init_variables(model, key(0), (28, 28))


def test_init_variables_under_jit(key):
  """Executed init: the variables eval_shape promised, with torchvision-style scales."""
  model = models.get_model("embedding_cnn", num_classes=C)
  init = jax.jit(lambda r: models.init_variables(model, r, MNIST))
  v = init(key(0))
  shapes = jax.eval_shape(lambda r: models.init_variables(model, r, MNIST), key(0))
  assert jax.tree.map(lambda a: (a.shape, a.dtype), v) == jax.tree.map(
      lambda a: (a.shape, a.dtype), shapes)
  assert set(v) == {"params", "batch_stats"}
  k = np.asarray(v["params"]["conv3"]["kernel"])             # 3x3, 64 -> 64
  np.testing.assert_allclose(k.std(), np.sqrt(2.0 / (9 * 64)), rtol=0.05)   # kaiming fan_out
  np.testing.assert_array_equal(v["params"]["bn0"]["scale"], 1.0)
  np.testing.assert_array_equal(v["batch_stats"]["bn0"]["var"], 1.0)
  np.testing.assert_array_equal(v["batch_stats"]["bn0"]["mean"], 0.0)
  v2 = init(key(1))
  assert not np.allclose(v2["params"]["conv3"]["kernel"], k)  # the rng is used


def test_registry_errors():
  with pytest.raises(ValueError, match="unknown model name 'resnet34'.*lenet5.*cvt7"):
    models.get_model("resnet34", num_classes=C)
  with pytest.raises(ValueError, match=r"resnet18 does not take.*\['stem_size', 'width'\]"):
    models.get_model("resnet18", num_classes=C, width=2, stem_size=3)
  with pytest.raises(ValueError, match="feature_dim"):       # ResNet-17 has no feature layer
    models.get_model("resnet17", num_classes=C, feature_dim=2)
  with pytest.raises(ValueError, match="stage_sizes"):       # architecture fields are fixed
    models.get_model("resnet50", num_classes=C, stage_sizes=(1, 1, 1, 1))
  for bad in (0, -3, 2.0, True, None):
    with pytest.raises(ValueError, match="num_classes"):
      models.get_model("lenet5", num_classes=bad)
  assert set(models.MODEL_NAMES) == {
      "lenet5", "lenet_pp", "embedding_cnn", "resnet17", "resnet18", "resnet50", "resnet101",
      "resnext50_32x4d", "vgg13", "vgg16", "mobilenet_v2", "cvt7"}
  assert models.model_kwargs("vgg16") == ("classifier", "dropout_rate", "dtype", "hidden_dim")


@pytest.mark.parametrize("name,kw,match", [
    ("resnet18", {"stem": "tiny"}, "stem='tiny'"),
    ("vgg16", {"classifier": "small"}, "classifier='small'"),
    ("mobilenet_v2", {"stem": "x"}, "stem='x'"),
    ("embedding_cnn", {"embedding_dim": 0}, "embedding_dim"),
    ("embedding_cnn", {"widths": ()}, "widths"),
    ("embedding_cnn", {"widths": (16, 0)}, "widths"),
    ("embedding_cnn", {"widths": 32}, "widths"),
    ("embedding_cnn", {"convs_per_stage": 0}, "convs_per_stage"),
    ("embedding_cnn", {"convs_per_stage": 1.5}, "convs_per_stage"),
])
def test_bad_option_values_raise(name, kw, match, key):
  model = models.get_model(name, num_classes=C, **kw)
  with pytest.raises(ValueError, match=match):
    jax.eval_shape(lambda r: models.init_variables(model, r, (2, 32, 32, 3)), key(0))


def test_cvt_width_must_divide_heads(key):
  """The Gini paper's 258 = 6 x 43 is valid; 256 with 6 heads is not."""
  assert 258 % 6 == 0 and models.get_model("cvt7", num_classes=C).embed_dims[-1] == 258
  model = models.CvT(num_classes=C, embed_dims=(32, 128, 256))
  with pytest.raises(ValueError, match="256 is not divisible by its 6 heads"):
    jax.eval_shape(lambda r: models.init_variables(model, r, (2, 32, 32, 3)), key(0))
