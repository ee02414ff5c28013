"""Group softmax loss with discriminative feature grouping.

Kobayashi, "Group Softmax Loss with Discriminative Feature Grouping", WACV 2021,
eq. 3, 5-13 and Algorithm 1. The D feature components (with the matching rows of
the classifier kernel) are split into G groups; each group gives partial logits

  z̄ᶦ_c = Σ_{j ∈ 𝒢ᶦ} W_jc x_j + |𝒢ᶦ|/D · b_c                       (eq. 3, 5)

and a softmax loss of its own:

  type I  (eq. 7):  ℓᴵ_G  = (1/G) Σᵢ CE(G · z̄ᶦ, y)
  type II (eq. 8):  ℓᴵᴵ_G = Σᵢ CE(z̄ᶦ, y)

The losses of every G in ``groups`` are averaged (eq. 12, 13) and then averaged
over the batch. G = 1 is the plain softmax cross-entropy of
``features @ kernel + bias``, for both types.

Grouping (Sec. 2.3, Table 1b) is one permutation of the D indices, cut into G
equal contiguous blocks for every G, so the groups of G = 4 nest in those of
G = 2 ("hierarchical" grouping, eq. 12-13):

* ``"discriminative"``: indices sorted ascending by the discriminativity score
  λ_j of eq. 9 averaged over the (global) batch, so group 1 holds the least
  discriminative components (eq. 10-11); exact ties keep index order (stable sort).
  Scores equal in exact arithmetic but computed with different rounding (e.g. eagerly
  and under ``jit``, which may fuse the reduction differently) can order differently,
  and so group differently: e.g. identical rows, whose scores are all 0 up to rounding.
* ``"random"``: a uniform random permutation drawn from ``rng`` (one per call,
  i.e. per mini-batch, shared by every G).
* ``"fixed"``: the identity, i.e. contiguous index blocks ("pre-fixed").

The grouping carries no gradient (it is computed under ``stop_gradient``).

``where`` ([B] bool) leaves rows out of λ (so out of the grouping) and out of
the mean, as if sliced out; ``reduction="none"`` returns the per-sample losses
[B] (0 at masked rows). NaN or inf in a selected feature gives NaN; a label
outside [0, C) gives NaN (a ValueError when the labels are concrete).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disc_jax.losses import _batch
from disc_jax.losses import _checks

LOSS_TYPES = ("I", "II")
GROUPINGS = ("discriminative", "random", "fixed")


def _check_classifier(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                      bias: ArrayLike, where: ArrayLike | None = None
                      ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array | None]:
  """Validated (features [B, D], labels [B], kernel [D, C], bias [C], where [B]).

  Masked rows are zeroed and rows with an out-of-range label made NaN
  (``_batch.clean_rows``).
  """
  features = _checks.float_array(features, "features", ndim=2)
  kernel = _checks.float_array(kernel, "kernel", ndim=2)
  bias = _checks.float_array(bias, "bias", ndim=1)
  dim, num_classes = kernel.shape
  if features.shape[1] != dim:
    raise ValueError(
        f"`kernel` must have shape [D, C] with D = features.shape[1] = "
        f"{features.shape[1]}, got {kernel.shape}; pass the Dense kernel [D, C].")
  if bias.shape != (num_classes,):
    raise ValueError(
        f"`bias` must have shape [C] = ({num_classes},) to match `kernel` "
        f"{kernel.shape}, got {bias.shape}.")
  if num_classes < 2:
    raise ValueError(f"`kernel` must have C >= 2 columns (classes), got {kernel.shape}.")
  where = _checks.where_array(where, features.shape[0])
  labels = _checks.label_array(labels, features.shape[0], num_classes=num_classes,
                               where=where)
  features, labels = _batch.clean_rows(features, labels, where=where,
                                       num_classes=num_classes)
  return features, labels, kernel, bias, where


def check_groups(groups: int | Sequence[int], dim: int) -> tuple[int, ...]:
  """``groups`` as a tuple of positive ints that all divide ``dim``, or a ValueError."""
  groups = tuple(groups) if isinstance(groups, Sequence) else (groups,)
  if not groups:
    raise ValueError("`groups` must name at least one group count, e.g. (1, 2, 4).")
  groups = tuple(_checks.positive_int(g, "groups") for g in groups)
  bad = [g for g in groups if dim % g]
  if bad:
    raise ValueError(
        f"`groups` {bad} do not divide the feature dimension D = {dim}; every G "
        f"must split D into equal groups (use divisors of {dim}).")
  return groups


def discriminativity_scores(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                            bias: ArrayLike, *, where: ArrayLike | None = None,
                            axis_name: _batch.AxisName = None) -> jax.Array:
  r"""Batch-averaged discriminativity λ_j of each feature component (eq. 9).

  .. math::
    \lambda_j = \frac{C}{C-1}\Big[z_{jy} - \frac{1}{C}\sum_{c} z_{jc}\Big],
    \qquad z_{jc} = W_{jc} x_j + b_c / D \quad \text{(eq. 3)}

  averaged over the (selected) samples of the global batch (``axis_name``);
  0 when no sample is selected. Computed without materialising the [B, D, C]
  ingredient logits Z.

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1., 1.]]); w = jnp.array([[1., -1.], [0., 0.]])
    >>> discriminativity_scores(x, jnp.array([0]), w, jnp.zeros(2)).tolist()
    [2.0, 0.0]

  Args:
    features: [B, D] float features x.
    labels: [B] integer labels in [0, C).
    kernel: [D, C] classifier weights W.
    bias: [C] classifier bias b.
    where: [B] bool, the samples averaged over (None: all).
    axis_name: mapped axis over which the batch is split, or ``None``.

  Returns:
    [D] scores λ (higher = more discriminative).
  """
  features, labels, kernel, bias, where = _check_classifier(features, labels, kernel, bias,
                                                            where)
  return _scores(features, labels, kernel, bias, where, axis_name)


def _scores(features: jax.Array, labels: jax.Array, kernel: jax.Array, bias: jax.Array,
            where: jax.Array | None, axis_name: _batch.AxisName) -> jax.Array:
  dim, num_classes = kernel.shape
  # z_jy - mean_c z_jc = x_j (W_jy - mean_c W_jc) + (b_y - mean_c b) / D.
  w_margin = kernel.T[labels] - kernel.mean(axis=1)               # [B, D]
  b_margin = bias[labels] - bias.mean()                           # [B]
  per_sample = features * w_margin + b_margin[:, None] / dim      # [B, D]
  if where is not None:
    per_sample = jnp.where(where[:, None], per_sample, jnp.zeros_like(per_sample))
  total = _batch.psum(per_sample.sum(axis=0), axis_name)
  count = _batch.valid_count(features, where, axis_name)
  mean = total / jnp.maximum(count, 1).astype(total.dtype)
  return num_classes / (num_classes - 1) * mean


def grouping_permutation(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                         bias: ArrayLike, *, grouping: str = "discriminative",
                         rng: jax.Array | None = None, where: ArrayLike | None = None,
                         axis_name: _batch.AxisName = None) -> jax.Array:
  """Order of the D feature indices whose G equal contiguous blocks are the groups.

  ``"discriminative"``: argsort of :func:`discriminativity_scores` (ascending,
  stable), so block 1 of every G is the least discriminative (eq. 10-11).
  ``"random"``: ``jax.random.permutation(rng, D)``; under ``shard_map``/``pmap``
  pass the same ``rng`` on every device. ``"fixed"``: ``arange(D)``. The result
  is an int32 [D] array and carries no gradient. ``where`` selects the samples
  λ is averaged over.

  Examples:
    >>> import jax.numpy as jnp
    >>> x = jnp.array([[1., 1., 1., 1.]]); w = jnp.array([[3., 0.], [1., 0.],
    ...                                                 [2., 0.], [0., 0.]])
    >>> grouping_permutation(x, jnp.array([0]), w, jnp.zeros(2)).tolist()
    [3, 1, 2, 0]
  """
  features, labels, kernel, bias, where = _check_classifier(features, labels, kernel, bias,
                                                            where)
  return _permutation(features, labels, kernel, bias, grouping, rng, where, axis_name)


def _permutation(features: jax.Array, labels: jax.Array, kernel: jax.Array,
                 bias: jax.Array, grouping: str, rng: jax.Array | None,
                 where: jax.Array | None, axis_name: _batch.AxisName) -> jax.Array:
  dim = kernel.shape[0]
  if grouping == "discriminative":
    features, kernel, bias = jax.lax.stop_gradient((features, kernel, bias))
    scores = _scores(features, labels, kernel, bias, where, axis_name)
    return jnp.argsort(scores, stable=True).astype(jnp.int32)
  if grouping == "random":
    if rng is None:
      raise ValueError('`rng` is required for grouping="random": pass a '
                       "jax.random.key, a fresh one per step.")
    return jax.random.permutation(rng, dim).astype(jnp.int32)
  if grouping == "fixed":
    return jnp.arange(dim, dtype=jnp.int32)
  raise ValueError(f"`grouping` must be one of {GROUPINGS}, got {grouping!r}.")


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-sample softmax cross-entropy -log p_y over the last axis (eq. 2).

  ``logits`` is [B, ..., C] and ``labels`` [B]; the label logit is picked with a
  one-hot product rather than a gather (exact, and cheaper to compile and to
  differentiate).
  """
  one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
  one_hot = one_hot.reshape(labels.shape + (1,) * (logits.ndim - 2) + one_hot.shape[-1:])
  return jax.nn.logsumexp(logits, axis=-1) - jnp.sum(one_hot * logits, axis=-1)


def group_logits(features: jax.Array, kernel: jax.Array, bias: jax.Array,
                 permutation: jax.Array, num_groups: int) -> jax.Array:
  """Group logits z̄ᶦ of eq. 5 for the blocks of ``permutation``: [B, G, C].

  Block i holds ``permutation[i*D/G:(i+1)*D/G]``; each group gets the bias
  share |𝒢ᶦ|/D · b = b/G, so the G group logits sum to ``features @ kernel + bias``.
  """
  batch, dim = features.shape
  size = dim // num_groups
  x = features[:, permutation].reshape(batch, num_groups, size)
  w = kernel[permutation].reshape(num_groups, size, kernel.shape[1])
  return jnp.einsum("bgk,gkc->bgc", x, w) + bias / num_groups


def group_softmax_loss(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                       bias: ArrayLike, *, groups: int | Sequence[int] = (1, 2, 4),
                       loss_type: str = "II", grouping: str = "discriminative",
                       rng: jax.Array | None = None, where: ArrayLike | None = None,
                       reduction: str = "mean",
                       axis_name: _batch.AxisName = None) -> jax.Array:
  r"""Group softmax loss, type I (eq. 7, 12) or type II (eq. 8, 13).

  .. math::
    \ell^{I} = \frac{1}{|\mathbb{G}|}\sum_{G\in\mathbb{G}} \frac{1}{G}
      \sum_{i=1}^{G} -\log\frac{\exp(G\bar z^i_y)}{\sum_c \exp(G\bar z^i_c)},\qquad
    \ell^{II} = \frac{1}{|\mathbb{G}|}\sum_{G\in\mathbb{G}}
      \sum_{i=1}^{G} -\log\frac{\exp(\bar z^i_y)}{\sum_c \exp(\bar z^i_c)}

  with the group logits z̄ᶦ of eq. 5 (:func:`group_logits`) on the grouping of
  :func:`grouping_permutation`, averaged over the (global) batch. Both are upper
  bounds of the softmax loss (Prop. 1); G = 1 equals
  ``softmax_cross_entropy_with_integer_labels(features @ kernel + bias, labels)``.
  The grouping is shared by the whole mini-batch (global with ``axis_name``) and
  carries no gradient; gradients reach ``features``, ``kernel`` and ``bias``.

  Examples:
    >>> import jax, jax.numpy as jnp
    >>> x = jax.random.normal(jax.random.key(0), (4, 8))
    >>> w = jax.random.normal(jax.random.key(1), (8, 3))
    >>> y = jnp.array([0, 1, 2, 0])
    >>> loss = group_softmax_loss(x, y, w, jnp.zeros(3), groups=(1, 2, 4))
    >>> bool(loss >= group_softmax_loss(x, y, w, jnp.zeros(3), groups=(1,)))
    True

  Args:
    features: [B, D] float penultimate features x.
    labels: [B] integer class ids in [0, C).
    kernel: [D, C] final Dense kernel W.
    bias: [C] final Dense bias b.
    groups: the set 𝔾 of group counts G (each must divide D); a single int is
      one G. The paper uses (1, 2) for type I and (1, 2, 4) for type II.
    loss_type: ``"I"`` (eq. 7, logits scaled by G, losses averaged over groups)
      or ``"II"`` (eq. 8, group losses summed).
    grouping: ``"discriminative"`` (eq. 9-11), ``"random"`` or ``"fixed"``
      (the ablations of Table 1b).
    rng: PRNG key, required for ``grouping="random"``.
    where: [B] bool, the rows that take part (None: all), as if
      ``features[where]``, ``labels[where]`` had been passed: they are left out
      of λ (hence of the grouping) and of the mean.
    reduction: ``"mean"`` (the scalar above) or ``"none"`` (the per-sample
      losses [B], 0 at masked rows; the grouping is still the batch's).
    axis_name: mapped axis of ``shard_map``/``pmap`` over which the batch is
      split: λ is then averaged, and the loss averaged, over the global batch
      (each device passes the mask of its own rows).

  Returns:
    The scalar loss, or the [B] per-sample losses.

  References:
    Kobayashi, Group Softmax Loss with Discriminative Feature Grouping, WACV 2021.
  """
  features, labels, kernel, bias, where = _check_classifier(features, labels, kernel, bias,
                                                            where)
  reduction = _checks.reduction(reduction)
  groups = check_groups(groups, kernel.shape[0])
  if loss_type not in LOSS_TYPES:
    raise ValueError(f"`loss_type` must be one of {LOSS_TYPES}, got {loss_type!r}.")
  if grouping not in GROUPINGS:
    raise ValueError(f"`grouping` must be one of {GROUPINGS}, got {grouping!r}.")
  if grouping == "random" and rng is None:
    raise ValueError('`rng` is required for grouping="random": pass a '
                     "jax.random.key, a fresh one per step.")
  dtype = jnp.result_type(features, kernel, bias)
  features, kernel, bias = (a.astype(dtype) for a in (features, kernel, bias))
  permutation = None
  if any(g > 1 for g in groups):
    permutation = _permutation(features, labels, kernel, bias, grouping, rng, where,
                               axis_name)
  per_sample = jnp.zeros(features.shape[0], dtype)
  for g in groups:
    if g == 1:  # ℓ_1 = ℓ_1^I = ℓ_1^II: the plain softmax loss (eq. 2).
      per_sample += _cross_entropy(features @ kernel + bias, labels)
      continue
    logits = group_logits(features, kernel, bias, permutation, g)    # [B, G, C]
    if loss_type == "I":
      per_sample += _cross_entropy(g * logits, labels).mean(axis=1)  # eq. 7
    else:
      per_sample += _cross_entropy(logits, labels).sum(axis=1)       # eq. 8
  per_sample = per_sample / len(groups)                               # eq. 12, 13
  return _batch.reduce(per_sample, reduction, where=where, axis_name=axis_name)
