"""Dropout on the penultimate features, random and adversarial, as losses.

The group softmax paper (Sec. 3.2 and 4.1, Tables 2 and 4) compares against
DropOut (Srivastava et al., JMLR 2014) at p = 0.2 and 0.5 and adversarial
DropOut (Park, Park, Shin and Moon, "Adversarial Dropout for Supervised and
Semi-Supervised Learning", AAAI 2018) at p = 0.005, both "applied only at the
penultimate layer" with no other dropout in the backbone. Since that layer
feeds a linear head, both are pure functions of ``(features, labels, kernel,
bias)``: the logits are recomputed from the masked features and the head's
kernel [D, C] and bias [C] (Flax Dense layout). Train-time only; evaluation uses
the unmasked model logits.

Both losses are means of per-sample terms, with ``where``, ``reduction`` and
``axis_name`` as the softmax variants (:mod:`disc_jax.losses._softmax_variants`).
The random dropout mask is drawn for all B rows, masked or not, so masking rows
leaves the other rows' draws unchanged: ``where`` equals slicing the batch
exactly when no random mask is drawn (``rate = 0``).
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from disc_jax.losses import _batch
from disc_jax.losses import _checks
from disc_jax.losses._softmax_variants import _COMMON_ARGS, _reduce, cross_entropy, head_inputs


def _check_fraction(value, name: str, *, closed_right: bool) -> float:
  ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
      and math.isfinite(value) and value >= 0 and (value <= 1 if closed_right else value < 1)
  if not ok:
    rng = "[0, 1]" if closed_right else "[0, 1)"
    raise ValueError(f"`{name}` must be a Python float in {rng}, got {value!r}.")
  return float(value)


def _bernoulli_mask(rng, rate: float, shape, dtype) -> jax.Array:
  """{0, 1} mask keeping each unit with probability 1 - rate (all ones at rate 0)."""
  if rate == 0.0:
    return jnp.ones(shape, dtype)
  if rng is None:
    raise ValueError(f"`rng` is required when `rate` > 0 (got rate={rate}); "
                     f"pass a jax.random key.")
  return jax.random.bernoulli(rng, 1.0 - rate, shape).astype(dtype)


def feature_dropout_loss(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                         bias: ArrayLike | None, *, rate: float,
                         rng: jax.Array | None = None, where: ArrayLike | None = None,
                         reduction: str = "mean",
                         axis_name: _batch.AxisName = None) -> jax.Array:
  """Batch-mean CE of the head on dropped-out features (Srivastava et al. 2014).

  x̃ = x ⊙ ε / (1 - p), ε_i ~ Bernoulli(1 - p) i.i.d. per sample and unit
  (inverted dropout, as ``flax.linen.Dropout``: the eval-time head needs no
  rescaling); loss = mean_b -log softmax(x̃ W + b)[y]. ``rate = 0`` is softmax
  cross-entropy (and needs no ``rng``). The paper's settings: rate 0.2 and 0.5.

  Args:
    features: [B, D] penultimate features.
    labels: [B] int class ids in [0, C).
    kernel, bias: the head's [D, C] kernel and [C] bias (None: no bias).
    rate: the drop probability p in [0, 1) (a static Python float).
    rng: jax.random key for the mask (required when rate > 0).
    {common}

  >>> import numpy as np
  >>> x = np.ones((2, 3), np.float32); w = np.zeros((3, 2), np.float32)
  >>> round(float(feature_dropout_loss(x, np.array([0, 1]), w, None, rate=0.0)), 4)
  0.6931
  """
  rate = _check_fraction(rate, "rate", closed_right=False)
  features, labels, kernel, bias, where = head_inputs(features, labels, kernel, bias, where)
  mask = _bernoulli_mask(rng, rate, features.shape, features.dtype)
  dropped = features * mask / (1.0 - rate) if rate else features
  per_sample = cross_entropy(dropped @ kernel + bias, labels)
  # A non-finite unit that the mask drops would vanish (XLA may fuse x * 0 into a select):
  # NaN in, NaN out, whatever the mask.
  per_sample = jnp.where(jnp.isfinite(features).all(axis=1), per_sample, jnp.nan)
  return _reduce(per_sample, reduction, where, axis_name)


feature_dropout_loss.__doc__ = feature_dropout_loss.__doc__.replace("{common}", _COMMON_ARGS)


def _masked_logits(features, mask, kernel, bias):
  """Logits of x ⊙ ε · D / Σε: the reference code's mask normalisation."""
  d = features.shape[1]
  scale = d / jnp.maximum(mask.sum(axis=1, keepdims=True), 1.0)
  return (features * mask * scale) @ kernel + bias


def adversarial_dropout_mask(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                             bias: ArrayLike | None, *, delta: float,
                             base_mask: ArrayLike | None = None) -> jax.Array:
  """The adversarial dropout mask ε^adv [B, D] in {0, 1} (Park et al. 2018).

  ε^adv ≈ argmax_{ε : ε differs from ε^s in at most ⌊δ·D⌋ units} CE(y, f(x; ε)),
  found as in the paper's Algorithm 1 / the authors' code with one linearised
  step: the Jacobian J = ∂CE/∂ε at ε^s (= x ⊙ ∂CE/∂x̃ for the linear head)
  gives each flip the first-order loss increase (1 - 2ε^s_i) J_i; the ⌊δ·D⌋
  flips of largest positive increase are made (fewer if fewer increase the
  loss). The divergence is the cross-entropy with the labels (the paper's
  supervised "SAdD"). ``base_mask`` ε^s defaults to all ones, as in the
  authors' code, so the adversary only *drops* units (the most prominent ones,
  cf. the group softmax paper's Fig. 2c). No gradient flows through the mask.

  Args:
    features, labels, kernel, bias: as in ``adversarial_dropout_loss``.
    delta: the flip budget δ in [0, 1] as a fraction of D (static float).
    base_mask: [B, D] {0, 1} starting mask ε^s, or None for all ones.
  """
  delta = _check_fraction(delta, "delta", closed_right=True)
  features, labels, kernel, bias, _ = head_inputs(features, labels, kernel, bias)
  return _adversarial_mask(features, labels, kernel, bias, delta, base_mask)


def _adversarial_mask(features, labels, kernel, bias, delta: float, base_mask) -> jax.Array:
  b, d = features.shape
  base = jnp.ones((b, d), features.dtype) if base_mask is None \
      else jnp.asarray(base_mask, features.dtype)
  if base.shape != (b, d):
    raise ValueError(f"`base_mask` must have the shape of `features` {(b, d)}, "
                     f"got {base.shape}.")
  budget = int(d * delta)
  if budget == 0:
    return jax.lax.stop_gradient(base)
  features, kernel, bias = map(jax.lax.stop_gradient, (features, kernel, bias))
  scale = d / jnp.maximum(base.sum(axis=1, keepdims=True), 1.0)
  logits = _masked_logits(features, base, kernel, bias)
  residual = jax.nn.softmax(logits) - jax.nn.one_hot(labels, kernel.shape[1],
                                                     dtype=logits.dtype)
  jac = features * scale * (residual @ kernel.T)          # ∂CE/∂ε at ε^s (scale fixed)
  gain = (1.0 - 2.0 * base) * jac                         # loss increase of each flip
  top_gain, top_idx = jax.lax.top_k(gain, budget)
  flip = jnp.zeros((b, d), bool).at[jnp.arange(b)[:, None], top_idx].set(top_gain > 0)
  return jax.lax.stop_gradient(jnp.where(flip, 1.0 - base, base))


def adversarial_dropout_loss(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                             bias: ArrayLike | None, *, delta: float = 0.005,
                             weight: ArrayLike = 1.0, rate: float = 0.0,
                             rng: jax.Array | None = None, where: ArrayLike | None = None,
                             reduction: str = "mean",
                             axis_name: _batch.AxisName = None) -> jax.Array:
  """Batch-mean CE(y, f(x; ε^s)) + weight · CE(y, f(x; ε^adv)) (Park et al. 2018).

  The paper trains "on the original and the reconfigured network
  simultaneously": the loss of the network with its ordinary mask ε^s plus λ
  times the loss with the adversarial mask (``adversarial_dropout_mask``).
  Choices, each from the authors' code unless stated:

  * ``delta`` is the group softmax paper's p = 0.005 (Sec. 3.2: the adversary
    may change ⌊δ·D⌋ of the D penultimate units, e.g. 10 of ResNet-50's 2048;
    it found 0.01-0.05 unstable on Food-101); Park et al. used 0.05.
  * ε^s is all ones (``rate = 0``): the authors apply no random dropout at this
    layer. ``rate > 0`` draws ε^s ~ Bernoulli(1 - rate) with ``rng`` (our
    extension).
  * Masked features are rescaled by D / Σε (the code's normalisation), so the
    all-ones mask leaves the features unchanged.
  * Both terms use the same features; the authors' adversarial term sees a
    second augmentation of the image, which a loss on one batch cannot.
  * ``weight`` (λ) defaults to 1; the authors ramp λ up to 10 over 80 epochs
    (``adversarial_dropout_weight``).
  With ``delta`` giving no flips (δ·D < 1) the loss is (1 + weight)·CE. The
  per-sample term (``reduction="none"``) is CE_i(ε^s) + weight · CE_i(ε^adv).

  Args:
    features, labels, kernel, bias: the penultimate features [B, D], int class
      ids [B] in [0, C), and the head's kernel [D, C] and bias [C] (or None).
    delta: the flip budget δ in [0, 1] (static float).
    weight: λ >= 0, the weight of the adversarial term (may be traced).
    rate: the drop probability of ε^s in [0, 1) (static float).
    rng: jax.random key for ε^s (required when rate > 0).
    {common}
  """
  rate = _check_fraction(rate, "rate", closed_right=False)
  delta = _check_fraction(delta, "delta", closed_right=True)
  if _is_negative(weight):
    raise ValueError(f"`weight` must be a finite number >= 0, got {weight!r}.")
  features, labels, kernel, bias, where = head_inputs(features, labels, kernel, bias, where)
  base = _bernoulli_mask(rng, rate, features.shape, features.dtype)
  adv = _adversarial_mask(features, labels, kernel, bias, delta, base)
  clean = cross_entropy(_masked_logits(features, base, kernel, bias), labels)
  adversarial = cross_entropy(_masked_logits(features, adv, kernel, bias), labels)
  per_sample = clean + jnp.asarray(weight, clean.dtype) * adversarial
  return _checks.nan_unless_valid(_reduce(per_sample, reduction, where, axis_name), weight,
                                  positive=False)


adversarial_dropout_loss.__doc__ = adversarial_dropout_loss.__doc__.replace(
    "{common}", _COMMON_ARGS)


def _is_negative(value) -> bool:
  """True for a concrete negative or non-finite scalar (tracers are not checked)."""
  if not _checks.is_concrete(value):
    return False
  v = float(np.asarray(value))
  return not math.isfinite(v) or v < 0


def adversarial_dropout_weight(epoch: ArrayLike, *, weight_max: float = 10.0,
                               rampup_epochs: float = 80.0) -> jax.Array:
  """λ(epoch) = weight_max · exp(-5 (1 - min(epoch / rampup_epochs, 1))²).

  The ramp-up of the adversarial term in Park et al.'s code (λ_max = 10, 80
  epochs); ``rampup_epochs = 0`` gives the constant ``weight_max``.

  >>> round(float(adversarial_dropout_weight(80)), 4)
  10.0
  """
  if not isinstance(weight_max, numbers.Real) or weight_max < 0:
    raise ValueError(f"`weight_max` must be a number >= 0, got {weight_max!r}.")
  if not isinstance(rampup_epochs, numbers.Real) or rampup_epochs < 0:
    raise ValueError(f"`rampup_epochs` must be a number >= 0, got {rampup_epochs!r}.")
  if rampup_epochs == 0:
    return jnp.asarray(weight_max, jnp.float32)
  t = jnp.clip(jnp.asarray(epoch, jnp.float32) / rampup_epochs, 0.0, 1.0)
  return weight_max * jnp.exp(-5.0 * (1.0 - t) ** 2)
