"""The objective: what each term reads, its weight schedule, its parameters, its metrics."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import base
from disc_jax import losses
from disc_jax.train import objective

B, C, D = 12, 4, 5


def _outputs(seed=0):
  rng = np.random.default_rng(seed)
  last_conv = jnp.asarray(rng.normal(size=(B, 3, 3, D)), jnp.float32)
  return ({"logits": jnp.asarray(rng.normal(size=(B, C)), jnp.float32),
           "features": last_conv.mean(axis=(1, 2)), "last_conv": last_conv},
          jnp.asarray(rng.integers(0, C, size=B), jnp.int32))


def _loss_fn(aux, spe=10, **fields):
  config = base.get_config()
  config.aux_losses = aux
  for key, value in fields.items():
    config[key] = value
  return config, objective.make_loss_fn(config, num_classes=C, steps_per_epoch=spe)


def test_gini_kl_read_the_map_as_given_and_stay_finite_on_signed_maps():
  # CvT's last-stage token embedding is signed; the losses pool |A| (the authors' code).
  out, y = _outputs()
  _, fn = _loss_fn([base.aux_loss("gini", 1.0, input="last_conv"),
                    base.aux_loss("kl", 1.0, input="last_conv")])
  _, metrics = fn(out, y, {}, None, jnp.asarray(0), jax.random.key(0))
  np.testing.assert_allclose(metrics["loss/gini"], losses.gini_loss(out["last_conv"], y, C),
                             rtol=1e-6)
  np.testing.assert_allclose(metrics["loss/kl"], losses.kl_loss(jnp.abs(out["last_conv"]), y, C),
                             rtol=1e-6)
  assert np.isfinite(metrics["loss/kl"])


def test_total_is_cross_entropy_plus_weighted_terms():
  out, y = _outputs(1)
  config, fn = _loss_fn([base.aux_loss("snnl", 0.3), base.aux_loss("snnl", 0.7,
                                                                   input="last_conv")])
  total, metrics = fn(out, y, {}, None, jnp.asarray(0), jax.random.key(0))
  ce = optax.softmax_cross_entropy_with_integer_labels(out["logits"], y).mean()
  want = (ce + 0.3 * losses.soft_nearest_neighbor_loss(out["features"], y)
          + 0.7 * losses.soft_nearest_neighbor_loss(out["last_conv"].mean((1, 2)), y))
  np.testing.assert_allclose(total, want, rtol=1e-6)
  assert sorted(metrics) == ["cls_loss", "loss/snnl", "loss/snnl_1", "weight/snnl",
                             "weight/snnl_1"]


@pytest.mark.parametrize("start_epoch, first_on", [(0, 0), (1, 0), (2, 1), (10, 9)])
def test_start_epoch_counts_epochs_from_one(start_epoch, first_on):
  # The authors' loop: for epoch in range(1, E + 1): terms zeroed while epoch < start_epoch.
  out, y = _outputs()
  _, fn = _loss_fn([base.aux_loss("snnl", 0.5, start_epoch=start_epoch)], spe=3)
  weights = [float(fn(out, y, {}, None, jnp.asarray(s), jax.random.key(0))[1]["weight/snnl"])
             for s in range(0, 33, 3)]
  assert weights == [0.0] * first_on + [0.5] * (11 - first_on)


def test_sigma2r_params_shapes_labels_and_growth_metrics():
  config, fn = _loss_fn([base.aux_loss("sigma2r", 0.01, kwargs={"z": 40.0},
                                       param_optimizer=base.optimizer("adam", 0.1))])
  params = objective.init_loss_params(config, jax.random.key(0), C, {"features": D})
  chex.assert_shape([params["sigma2r"]["centers"], params["sigma2r"]["growth"]], [(C, D), (C,)])
  assert objective.param_labels(config) == {"sigma2r": "aux:sigma2r"}
  out, y = _outputs()
  _, metrics = fn(out, y, params, None, jnp.asarray(0), jax.random.key(0))
  for c in range(C):
    w = params["sigma2r"]["growth"][c]
    np.testing.assert_allclose(metrics[f"w_K/sigma2r/{c}"], w)
    np.testing.assert_allclose(metrics[f"K/sigma2r/{c}"], 1e-3 + 40.0 * jax.nn.sigmoid(w),
                               rtol=1e-6)


def test_wen_terms_are_frozen_and_updated_by_the_wen_rule():
  config, _ = _loss_fn([base.aux_loss("center", 0.1, center_update="wen", alpha=0.5)])
  assert objective.param_labels(config) == {"center": objective.FROZEN}
  out, y = _outputs()
  params = objective.init_loss_params(config, jax.random.key(1), C, {"features": D})
  new = objective.wen_update(config, out, y, params, jnp.asarray(0), steps_per_epoch=10)
  chex.assert_trees_all_close(
      new["center"]["centers"],
      losses.update_centers(params["center"]["centers"], out["features"], y, 0.5))


def test_learned_centers_only_of_terms_reading_features():
  config, _ = _loss_fn([base.aux_loss("center", 0.1), base.aux_loss("intra_class_variance", 0.1,
                                                                    input="last_conv")])
  params = objective.init_loss_params(config, jax.random.key(2), C, {"features": D,
                                                                     "last_conv": D})
  assert list(objective.learned_centers(config, params)) == ["center"]


def test_loss_needing_the_head_says_so():
  out, y = _outputs()
  config = base.get_config()
  config.classification_loss.name = "sigsoftmax"
  fn = objective.make_loss_fn(config, num_classes=C, steps_per_epoch=1)
  with pytest.raises(ValueError, match=r"needs the classifier params\['head'\]"):
    fn(out, y, {}, None, jnp.asarray(0), jax.random.key(0))
