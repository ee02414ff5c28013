"""The objective's adapters: what each auxiliary term reads from the step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from disc_jax import losses
from disc_jax.train import objective, schema
from disc_jax.train.classification import LossInputs


def _inputs(last_conv: jax.Array, labels: jax.Array, num_classes: int) -> LossInputs:
  return LossInputs(
      logits=jnp.zeros((labels.shape[0], num_classes)), labels=labels,
      intermediates={"last_conv": last_conv, "features": last_conv.mean(axis=(1, 2))},
      head=None, num_classes=num_classes, step=jnp.asarray(0), epoch=jnp.asarray(0.0),
      rng=jax.random.key(0))


def test_gini_kl_read_the_map_as_given_and_stay_finite_on_signed_maps():
  # CvT's last-stage token embedding is signed; the losses pool |A| (the authors' code).
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(12, 3, 3, 5)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 4, size=12), jnp.int32)
  terms = objective.build_terms([schema.aux_loss("gini", 1.0, input="last_conv"),
                                 schema.aux_loss("kl", 1.0, input="last_conv")])
  _, metrics = objective.term_losses(terms, _inputs(x, y, 4), {})
  np.testing.assert_allclose(metrics["loss/gini"], losses.gini_loss(x, y, 4), rtol=1e-6)
  np.testing.assert_allclose(metrics["loss/kl"], losses.kl_loss(jnp.abs(x), y, 4), rtol=1e-6)
  assert np.isfinite(metrics["loss/kl"])
