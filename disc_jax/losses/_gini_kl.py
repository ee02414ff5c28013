"""Gini impurity and KL losses on class-averaged activations.

Croitoru, Grigore and Ionescu, "Discriminability-enforcing loss to improve
representation learning" (CVPR 2022 workshops), eq. 1-7. Both losses start from
the same matrix S̄ (channels x classes) of eq. 2-4:

  M = global average pooling of |A|, the activations' magnitudes   [m, c]
  Ȳ = one-hot labels, each column divided by its count   [m, n]   (eq. 4)
  S = Mᵀ Ȳ: s_ij = mean activation of channel i on class j       (eq. 3)
  s̄_ij = s_ij / Σ_k s_ik: each channel's mass spread over classes (eq. 2)

Choices the paper leaves open (shared by both losses):

* The statistics are those of the *global* batch: with ``axis_name`` the class
  sums and counts are ``psum``-ed, so a per-device call inside ``jax.shard_map``
  or ``jax.pmap`` returns the value of the concatenated batch.
* A class absent from the batch has a zero Ȳ column (not 0/0), so its S and S̄
  columns are zero and its terms vanish.
* A channel whose class means sum to zero (a dead ReLU channel) has an S̄ row of
  0 instead of 0/0: it adds 1 to the Gini sum and nothing to H^S. The division
  uses the double-``where`` trick, so its gradient is 0 rather than NaN.
* M pools the magnitudes |A| over the spatial axes, as the authors' code does
  (CroitoruAlin/discern, utils.py ``gini_index``: ``mean(abs(activation_maps),
  dim=(2, 3))``). On ReLU maps this is the plain average; on signed maps (CvT's
  token embeddings) it keeps every S̄ row a probability distribution.
* ``where`` leaves rows out of the class sums and counts (so out of S̄, H^S and
  H^Y), as if sliced out. With no (selected) row there is no histogram and both
  losses are 0 -- not the Gini value 1 of an all-dead S̄.
* NaN or inf in a selected activation gives NaN (the guards above test for an
  exact 0, which NaN never is); a label outside [0, n) gives NaN (a ValueError
  when the labels are concrete).
* Both are batch-level statistics of S̄ (a ratio of class sums), not means of
  per-example terms, so they have no ``reduction`` argument and no per-example form.
* Inputs of lower precision than float32 are computed (and returned) in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from disc_jax.losses import _batch
from disc_jax.losses import _checks


def _pool(activations: jax.Array) -> jax.Array:
  """[B, ..., C] -> [B, C]: global average pooling of |A| over every middle axis."""
  dtype = jnp.promote_types(activations.dtype, jnp.float32)
  x = jnp.abs(activations.astype(dtype))
  return x.mean(axis=tuple(range(1, x.ndim - 1))) if x.ndim > 2 else x


def _safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
  """``num / den`` with 0 where ``den == 0``, and a 0 (not NaN) gradient there."""
  zero = den == 0
  return jnp.where(zero, 0.0, num / jnp.where(zero, 1.0, den))


def _checked(activations: ArrayLike, labels: ArrayLike, num_classes: int,
             where: ArrayLike | None
             ) -> tuple[jax.Array, jax.Array, int, jax.Array | None]:
  """Validated (activations [B, ..., C], labels [B], num_classes, where [B]).

  Masked rows come back zeroed, rows with a (traced) out-of-range label NaN.
  """
  activations = _checks.float_array(activations, "activations", min_ndim=2)
  num_classes = _checks.positive_int(num_classes, "num_classes")
  where = _checks.where_array(where, activations.shape[0], batch_name="activations")
  labels = _checks.label_array(labels, activations.shape[0], num_classes=num_classes,
                               batch_name="activations", where=where)
  activations, labels = _batch.clean_rows(activations, labels, where=where,
                                          num_classes=num_classes)
  return activations, labels, num_classes, where


def class_activation_shares(activations: ArrayLike, labels: ArrayLike,
                            num_classes: int, *, where: ArrayLike | None = None,
                            axis_name: _batch.AxisName = None
                            ) -> tuple[jax.Array, jax.Array]:
  """S̄ of eq. 2-4 and the class counts of the global batch.

  Args:
    activations: [B, ..., C] channels-last activations; their magnitudes are
      pooled over every middle axis.
    labels: [B] integer class ids in [0, num_classes).
    num_classes: n, the number of classes.
    where: [B] bool, the rows that take part (None: all).
    axis_name: mapped axis of ``shard_map``/``pmap`` over which the batch is
      split, or ``None`` for a single-device batch.

  Returns:
    ``(s_bar, counts)``: s_bar [C, num_classes], each row channel i's class-mean
    activations normalised to sum to 1 (a zero row for a channel whose class
    means sum to 0; zero columns for absent classes), and counts [num_classes].
  """
  activations, labels, num_classes, where = _checked(activations, labels, num_classes, where)
  pooled = _pool(activations)                                      # M: [B, C]
  sums = _batch.class_sums(pooled, labels, num_classes, axis_name=axis_name, where=where)
  counts = _batch.class_counts(labels, num_classes, axis_name=axis_name,
                               dtype=pooled.dtype, where=where)
  # Eq. 3-4: S = Mᵀ Ȳ; an absent class has a zero Ȳ column (0/0 -> 0).
  s = _safe_divide(sums, counts[:, None]).T                        # [C, n]
  s_bar = _safe_divide(s, s.sum(axis=1, keepdims=True))           # eq. 2
  return s_bar, counts


def gini_loss(activations: ArrayLike, labels: ArrayLike, num_classes: int, *,
              where: ArrayLike | None = None,
              axis_name: _batch.AxisName = None) -> jax.Array:
  r"""Gini impurity of each channel over the classes (Croitoru et al., eq. 1).

  .. math::
    \mathcal{L}_{Gini} = \frac{1}{c} \sum_{i=1}^{c} \Big(1 - \sum_{j=1}^{n}
    \bar{s}_{ij}^2\Big)

  with :math:`\bar{S}` of eq. 2-4 (see :func:`class_activation_shares`). It is 0
  when every channel fires for a single class and 1 - 1/k when every channel is
  spread evenly over the k classes present. Absent classes add nothing; a dead
  channel (class means summing to 0) adds 1 with a zero gradient. An empty or
  all-masked batch gives 0. A batch-level statistic: no per-example form.

  Examples:
    >>> import jax.numpy as jnp
    >>> acts = jnp.array([[1., 0.], [2., 0.], [0., 3.]])   # [B=3, C=2]
    >>> float(gini_loss(acts, jnp.array([0, 0, 1]), num_classes=2))
    0.0

  Args:
    activations: [B, ..., C] channels-last activations, e.g. the last
      convolutional map [B, H, W, C]; global-average-pooled inside.
    labels: [B] integer class ids in [0, num_classes).
    num_classes: n, the number of classes.
    where: [B] bool, the rows that take part (None: all), as if
      ``activations[where]``, ``labels[where]`` had been passed.
    axis_name: mapped axis of ``shard_map``/``pmap`` over which the batch is
      split; the class statistics are then those of the global batch (each
      device passes the mask of its own rows).

  Returns:
    The scalar loss (float32, or the input dtype if wider).

  References:
    Croitoru et al., Discriminability-enforcing loss to improve representation
    learning, 2022, https://arxiv.org/abs/2202.07073
  """
  s_bar, counts = class_activation_shares(activations, labels, num_classes, where=where,
                                          axis_name=axis_name)
  gini = jnp.mean(1.0 - jnp.sum(s_bar**2, axis=1))
  # No row: every S̄ row is 0 (gini 1 of "all dead"), but there is nothing to score.
  return jnp.where(counts.sum() > 0, gini, jnp.zeros_like(gini))


KL_DIRECTIONS = ("labels||channels", "channels||labels")


def kl_loss(activations: ArrayLike, labels: ArrayLike, num_classes: int, *,
            direction: str = "labels||channels", epsilon: float = 1e-10,
            where: ArrayLike | None = None,
            axis_name: _batch.AxisName = None) -> jax.Array:
  r"""KL divergence between the label and channel histograms (Croitoru et al., eq. 5-7).

  .. math::
    \mathcal{L}_{KL} = \mathrm{KL}(H^Y \,\|\, H^S) = \sum_{i=1}^{n} h^Y_i
      \log\frac{h^Y_i}{h^S_i},\quad
    h^S_i = \frac{\sum_j \bar{s}_{ji} + \epsilon}{\sum_{k,j} \bar{s}_{jk}},\quad
    h^Y_i = \frac{m_i}{m}

  where m_i is the number of samples of class i in the (global) batch of m.

  Direction. The paper writes KL(H^S, H^Y); the authors' code (CroitoruAlin/discern,
  utils.py ``kl_div``) computes ``F.kl_div(log H^S, H^Y, reduction='sum')``, which is
  KL(H^Y ‖ H^S), with H^S = (Σ_j s̄_j + 1e-10) / Σ_{k,j} s̄_jk. Where the paper is
  ambiguous its authors' code decides, so that is the default
  (``direction="labels||channels"``, with their ``epsilon``); the paper's written
  order is ``direction="channels||labels"``, KL(H^S ‖ H^Y) without the epsilon.
  The batch label histogram H^Y is their ``target_dist="batch_dist"``.

  Degenerate terms (all finite in value and gradient):

  * absent classes have h^Y_i = 0 and contribute 0 (0 log 0 = 0), in both
    directions (their S̄ column is zero too);
  * labels||channels: a present class with no activation mass has h^S_i =
    epsilon / Σ s̄, a large finite term, as in the authors' code (with
    ``epsilon=0`` it is +inf);
  * channels||labels: a present class with h^S_i = 0 contributes 0 with a zero
    gradient (its one-sided derivative is -inf);
  * when every channel is dead, H^S is undefined and the loss is 0; so is an
    empty or all-masked batch (no H^Y).

  A batch-level statistic (histograms of the batch): no per-example form.

  Examples:
    >>> import jax.numpy as jnp
    >>> acts = jnp.array([[1., 0.], [0., 2.]])   # one channel per class
    >>> round(float(kl_loss(acts, jnp.array([0, 1]), num_classes=2)), 6)
    0.0

  Args:
    activations: [B, ..., C] channels-last activations; the mean of |A| over
      every middle axis is used.
    labels: [B] integer class ids in [0, num_classes).
    num_classes: n, the number of classes (histogram bins).
    direction: ``"labels||channels"`` (default, KL(H^Y ‖ H^S), the authors' code) or
      ``"channels||labels"`` (KL(H^S ‖ H^Y), the paper's written order).
    epsilon: added to every H^S bin before normalising (labels||channels only).
    where: [B] bool, the rows that take part (None: all), as if
      ``activations[where]``, ``labels[where]`` had been passed.
    axis_name: mapped axis of ``shard_map``/``pmap`` over which the batch is
      split; the histograms are then those of the global batch (each device
      passes the mask of its own rows).

  Returns:
    The scalar loss (float32, or the input dtype if wider).

  References:
    Croitoru et al., Discriminability-enforcing loss to improve representation
    learning, 2022, https://arxiv.org/abs/2202.07073
  """
  if direction not in KL_DIRECTIONS:
    raise ValueError(f"`direction` must be one of {KL_DIRECTIONS}, got {direction!r}.")
  s_bar, counts = class_activation_shares(activations, labels, num_classes, where=where,
                                          axis_name=axis_name)
  mass = s_bar.sum(axis=0)                                         # [n]
  total = mass.sum()
  h_y = counts / jnp.maximum(counts.sum(), 1)                      # eq. 7 (0 if no row)
  if direction == "labels||channels":
    h_s = _safe_divide(mass + epsilon, total)                      # eq. 6, authors' eps
    present = h_y > 0
    log_ratio = (jnp.log(jnp.where(present, h_y, 1.0))
                 - jnp.log(jnp.where(present, h_s, 1.0)))
    # Every channel dead (total = 0): H^S undefined, the loss is 0. Tested as
    # total == 0 so that a NaN total (NaN input) stays NaN.
    return jnp.where(total == 0, 0.0, jnp.sum(jnp.where(present, h_y * log_ratio, 0.0)))
  h_s = _safe_divide(mass, total)                                  # eq. 6
  # Double where: the log never sees a 0 bin, so neither value nor gradient is NaN.
  empty = h_s == 0
  log_ratio = (jnp.log(jnp.where(empty, 1.0, h_s))
               - jnp.log(jnp.where(empty, 1.0, h_y)))
  return jnp.sum(jnp.where(empty, 0.0, h_s * log_ratio))
