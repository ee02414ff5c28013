"""Softmax variants compared in the group softmax paper (Tables 2 and 4).

Each is a drop-in replacement for the softmax cross-entropy on a linear head:
``(features, labels, kernel, bias)`` with ``features`` [B, D] the penultimate
features, ``kernel`` [D, C] and ``bias`` [C] the head's parameters (Flax
``Dense`` layout), and the batch-mean loss returned as a scalar. Only the
target logit (or, for Virtual Softmax, one extra logit) changes; the other
logits stay ``z_j = x·W_j + b_j``.

* L-Softmax: Liu, Wen, Yu and Yang, "Large-Margin Softmax Loss for
  Convolutional Neural Networks", ICML 2016, eq. 4-6, with the λ annealing of
  the authors' Caffe layer (``LargeMarginInnerProduct``).
* SigSoftmax: Kanai, Fujiwara, Yamanaka and Adachi, "Sigsoftmax: Reanalysis of
  the Softmax Bottleneck", NeurIPS 2018 (the sigsoftmax definition, Sec. 4).
* Noisy Softmax: Chen, Deng and Du, "Noisy Softmax: Improving the
  Generalization Ability of DCNN via Postponing the Early Softmax Saturation",
  CVPR 2017 (annealed noise injection, Sec. 3).
* Virtual Softmax: Chen, Deng and Shen, "Virtual Class Enhanced Discriminative
  Embedding Learning", NeurIPS 2018 (the virtual class, Sec. 3).

Choices shared by all of them (the papers write the head without a bias):

* The head's bias is kept: ``b_y`` is added to the modified target logit as to
  every other logit, so ``bias = 0`` (or ``None``) gives the papers' bias-free
  formulas exactly and the unmodified limits equal the model's own logits.
* Norms use a ``where``-guarded square root: a zero feature row (or a zero
  kernel column) has norm 0, cos θ = 0 and a zero (not NaN) gradient there.
* Inputs of lower precision than float32 are computed in float32. In float32 the
  squared norm ‖x‖² overflows for features above about 1e19 in magnitude (an inf
  target logit, or NaN in Virtual Softmax): use float64 features at such scales.
* Every loss is a mean of per-sample terms: ``reduction="none"`` returns them
  ([B], 0 at masked rows), ``where`` ([B] bool) leaves rows out of the mean,
  and ``axis_name`` makes the mean that of the global batch's selected rows
  (with masks the per-device means have different counts, so a plain mean of
  the devices' values would weight the rows unequally).
* NaN or inf in a selected feature gives NaN; a label outside [0, C) gives
  NaN (a ValueError when the labels are concrete). Masked rows (zeroed first)
  reach neither value nor gradient.
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

# cos(mθ) = T_m(cos θ): L-Softmax's multiple-angle expansion (Chebyshev polynomials).
_CHEBYSHEV = {
    1: lambda c: c,
    2: lambda c: 2 * c**2 - 1,
    3: lambda c: 4 * c**3 - 3 * c,
    4: lambda c: 8 * c**4 - 8 * c**2 + 1,
}


def head_inputs(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                bias: ArrayLike | None, where: ArrayLike | None = None
                ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array | None]:
  """Validated ``(features, labels, kernel, bias, where)``, floats in one dtype (>= float32).

  ``bias=None`` means a bias-free head (zeros). Raises a ValueError naming the
  argument for a wrong rank, a ``kernel`` whose first axis is not D, a ``bias``
  of the wrong length, a ``where`` that is not a bool [B] mask, or labels
  outside [0, C) (when concrete). Masked rows come back zeroed and rows with a
  (traced) out-of-range label NaN (``_batch.clean_rows``).
  """
  features = _checks.float_array(features, "features", ndim=2)
  kernel = _checks.float_array(kernel, "kernel", ndim=2)
  d, c = kernel.shape
  if features.shape[1] != d:
    hint = (" (it looks transposed: pass the Flax Dense layout [D, C])"
            if kernel.shape[1] == features.shape[1] else "")
    raise ValueError(
        f"`kernel` has shape {kernel.shape} but `features` has D={features.shape[1]} "
        f"columns; pass the head's kernel [D, C], e.g. params['head']['kernel']{hint}.")
  if bias is None:
    bias = jnp.zeros((c,), kernel.dtype)
  bias = _checks.float_array(bias, "bias", ndim=1)
  if bias.shape[0] != c:
    raise ValueError(f"`bias` has shape {bias.shape} but `kernel` has C={c} classes; "
                     f"pass the head's bias [C] (or None for a bias-free head).")
  where = _checks.where_array(where, features.shape[0])
  labels = _checks.label_array(labels, features.shape[0], num_classes=c, where=where)
  dtype = jnp.promote_types(jnp.result_type(features, kernel, bias), jnp.float32)
  features, labels = _batch.clean_rows(features.astype(dtype), labels, where=where,
                                       num_classes=c)
  return features, labels, kernel.astype(dtype), bias.astype(dtype), where


def _reduce(per_sample: jax.Array, reduction: str, where: jax.Array | None,
            axis_name: _batch.AxisName) -> jax.Array:
  return _batch.reduce(per_sample, _checks.reduction(reduction), where=where,
                       axis_name=axis_name)


_COMMON_ARGS = """where: [B] bool, the rows that take part (None: all), as if
      ``features[where]``, ``labels[where]`` had been passed.
    reduction: ``"mean"`` (the batch mean) or ``"none"`` (the per-sample
      losses [B], 0 at masked rows).
    axis_name: mapped axis of ``shard_map``/``pmap`` over which the batch is
      split; the mean is then over the global batch's selected rows."""


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-sample ``-log softmax(logits)[label]`` [B] (stable at any logit scale)."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]


def _safe_norm(v: jax.Array, axis: int) -> jax.Array:
  """Euclidean norm along ``axis``; 0 with a 0 gradient for a zero vector."""
  sq = jnp.sum(v * v, axis=axis)
  pos = sq > 0
  return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def _target_geometry(features, labels, kernel):
  """Plain logits x·W [B, C] and, for the target class, x·W_y, ‖W_y‖‖x‖, cos θ_y."""
  dots = features @ kernel
  dot_y = jnp.take_along_axis(dots, labels[:, None], axis=1)[:, 0]
  norm_prod = _safe_norm(features, 1) * _safe_norm(kernel, 0)[labels]
  pos = norm_prod > 0
  cos = jnp.where(pos, dot_y / jnp.where(pos, norm_prod, 1.0), 0.0)
  return dots, dot_y, norm_prod, jnp.clip(cos, -1.0, 1.0)


def _replace_target(logits: jax.Array, labels: jax.Array, target: jax.Array) -> jax.Array:
  is_target = jax.nn.one_hot(labels, logits.shape[1], dtype=bool)
  return jnp.where(is_target, target[:, None], logits)


def _nonnegative(value, name: str):
  """A ValueError for a concrete negative / non-finite scalar; tracers pass."""
  if _checks.is_concrete(value):
    v = float(np.asarray(value))
    if not math.isfinite(v) or v < 0:
      raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
  return value


# ----------------------------------------------------------------- L-Softmax

def l_softmax_lambda(step: ArrayLike, *, base: float = 1000.0, gamma: float = 2e-5,
                     power: float = 45.0, lambda_min: float = 0.0) -> jax.Array:
  """λ of the L-Softmax reference layer: ``max(λ_min, base·(1 + γ·iter)^(-power))``.

  The Caffe layer increments its iteration counter before computing λ, so the
  first training step (``step = 0``) uses ``iter = 1``: here ``iter = step + 1``.
  Defaults are the authors' CIFAR-10 setting (m = 2, base 1000, γ = 2e-5,
  power 45, λ_min 0, the proto default); their MNIST setting is m = 4,
  γ = 2.5e-5, power 35. ``step`` may be a traced integer (it is the optimiser
  step inside a jitted train step).

  >>> float(l_softmax_lambda(0, base=1000.0, gamma=1.0, power=1.0))
  500.0
  """
  for name, v in (("base", base), ("gamma", gamma), ("power", power),
                  ("lambda_min", lambda_min)):
    if not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
      raise ValueError(f"`{name}` must be a finite number >= 0, got {v!r}.")
  it = jnp.asarray(step, jnp.float32) + 1.0
  return jnp.maximum(lambda_min, base * (1.0 + gamma * it) ** (-power))


def l_softmax_psi(cos_theta: ArrayLike, margin: int) -> jax.Array:
  """ψ(θ) = (-1)^k cos(mθ) - 2k for θ ∈ [kπ/m, (k+1)π/m] (Liu et al. eq. 6).

  Written in cos θ (no arccos): cos(mθ) is the Chebyshev polynomial T_m(cos θ)
  and k counts the j ∈ 1..m-1 with cos θ < cos(jπ/m). ψ is monotonically
  decreasing and C¹ (its derivative vanishes at the joins θ = jπ/m).
  """
  margin = _check_margin(margin)
  c = jnp.asarray(cos_theta)
  k = sum((c < math.cos(j * math.pi / margin)).astype(c.dtype) for j in range(1, margin))
  sign = 1.0 - 2.0 * jnp.mod(k, 2.0)
  return sign * _CHEBYSHEV[margin](c) - 2.0 * k


def _check_margin(margin) -> int:
  if isinstance(margin, bool) or not isinstance(margin, numbers.Integral) \
      or not 1 <= int(margin) <= 4:
    raise ValueError(
        f"`margin` must be an integer in 1..4 (the reference layer's SINGLE, DOUBLE, "
        f"TRIPLE, QUADRUPLE), got {margin!r}.")
  return int(margin)


def l_softmax_logits(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                     bias: ArrayLike | None, *, margin: int = 2,
                     lam: ArrayLike = 0.0) -> jax.Array:
  """L-Softmax logits [B, C]: the target logit carries the angular margin m.

  Liu et al. eq. 4-6: f_y = ‖W_y‖‖x‖ ψ(θ_y). The reference layer anneals it with
  λ: f_y = (λ·W_y·x + ‖W_y‖‖x‖ ψ(θ_y)) / (1 + λ), which starts near the plain
  logit (large λ) and tends to the paper's f_y as λ -> 0 (see ``l_softmax_lambda``).
  Non-target logits are W_j·x (the layer's (λ+1)/(1+λ) scaling cancels), and
  ``b_y`` is added to the target as to every logit. ``margin = 1`` gives the
  plain logits exactly (ψ = cos).
  """
  margin = _check_margin(margin)
  _nonnegative(lam, "lam")
  features, labels, kernel, bias, _ = head_inputs(features, labels, kernel, bias)
  return _l_softmax_logits(features, labels, kernel, bias, margin, lam)


def _l_softmax_logits(features, labels, kernel, bias, margin: int, lam) -> jax.Array:
  dots, dot_y, norm_prod, cos = _target_geometry(features, labels, kernel)
  if margin == 1:
    target = dot_y
  else:
    lam = jnp.asarray(lam, features.dtype)
    target = (lam * dot_y + norm_prod * l_softmax_psi(cos, margin)) / (1.0 + lam)
  return _replace_target(dots, labels, target) + bias


def l_softmax_loss(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                   bias: ArrayLike | None, *, margin: int = 2,
                   lam: ArrayLike = 0.0, where: ArrayLike | None = None,
                   reduction: str = "mean",
                   axis_name: _batch.AxisName = None) -> jax.Array:
  """Batch-mean L-Softmax loss (Liu et al. 2016, eq. 4-6, reference λ annealing).

  Args:
    features: [B, D] penultimate features x.
    labels: [B] int class ids in [0, C).
    kernel: [D, C] head kernel W (Flax Dense layout).
    bias: [C] head bias, or None for a bias-free head (the paper's form).
    margin: the integer angular margin m in 1..4 (m = 1 is softmax CE).
    lam: the annealing weight λ >= 0 (0 = the paper's loss); may be traced, e.g.
      ``l_softmax_lambda(step)``.
    {common}

  >>> import numpy as np
  >>> x = np.eye(2, dtype=np.float32); w = np.eye(2, dtype=np.float32)
  >>> float(l_softmax_loss(x, np.array([0, 1]), w, None, margin=1)) > 0
  True
  """
  margin = _check_margin(margin)
  _nonnegative(lam, "lam")
  features, labels, kernel, bias, where = head_inputs(features, labels, kernel, bias, where)
  logits = _l_softmax_logits(features, labels, kernel, bias, margin, lam)
  return _checks.nan_unless_valid(
      _reduce(cross_entropy(logits, labels), reduction, where, axis_name), lam, positive=False)


l_softmax_loss.__doc__ = l_softmax_loss.__doc__.replace("{common}", _COMMON_ARGS)


# ---------------------------------------------------------------- SigSoftmax

def log_sigsoftmax(logits: ArrayLike, axis: int = -1) -> jax.Array:
  """log sigsoftmax = log_softmax(z + log σ(z)).

  Kanai et al. 2018: sigsoftmax(z)_i = exp(z_i) σ(z_i) / Σ_j exp(z_j) σ(z_j).
  Computed in log space with ``log_sigmoid`` (= -softplus(-z)), so it is finite
  for any finite logits (z + log σ(z) ~ 2z for z -> -inf, ~ z for z -> +inf).
  """
  z = jnp.asarray(logits)
  z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
  return jax.nn.log_softmax(z + jax.nn.log_sigmoid(z), axis=axis)


def sigsoftmax(logits: ArrayLike, axis: int = -1) -> jax.Array:
  """Sigsoftmax probabilities (Kanai et al. 2018): sum to 1 along ``axis``.

  >>> import numpy as np
  >>> p = sigsoftmax(np.array([0.0, 1.0, -2.0]))
  >>> round(float(p.sum()), 6)
  1.0
  """
  return jnp.exp(log_sigsoftmax(logits, axis=axis))


def sigsoftmax_loss(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                    bias: ArrayLike | None, *, where: ArrayLike | None = None,
                    reduction: str = "mean",
                    axis_name: _batch.AxisName = None) -> jax.Array:
  """Batch-mean -log sigsoftmax(x·W + b)[y] (Kanai et al. 2018).

  The logits are the head's own (with bias); only the normaliser changes.

  Args:
    features, labels, kernel, bias: as in :func:`l_softmax_loss`.
    {common}
  """
  features, labels, kernel, bias, where = head_inputs(features, labels, kernel, bias, where)
  logp = log_sigsoftmax(features @ kernel + bias)
  per_sample = -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]
  return _reduce(per_sample, reduction, where, axis_name)


sigsoftmax_loss.__doc__ = sigsoftmax_loss.__doc__.replace("{common}", _COMMON_ARGS)


# ------------------------------------------------------------- Noisy Softmax

def noisy_softmax_logits(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                         bias: ArrayLike | None, *, rng: jax.Array,
                         alpha: ArrayLike = 0.1) -> jax.Array:
  """Noisy Softmax logits [B, C]: annealed noise on the target angle.

  Chen et al. 2017: f_y = ‖W_y‖‖x‖ cos(θ_y + α θ_y |ξ|), ξ ~ N(0, 1), one draw
  per sample. The noise schedule is this *annealing*: the perturbation α θ |ξ|
  is proportional to the current angle θ_y, so it is large early (θ near π/2)
  and fades as the features align with W_y; there is no explicit iteration
  schedule. Choices:

  * The noisy angle is capped at π (δ = min(αθ|ξ|, π - θ)), so the noise can
    only lower the target logit (cos is not monotone beyond π).
  * It is evaluated as x·W_y cos δ - ‖W_y‖‖x‖ sin θ sin δ, which is exactly
    the plain logit when δ = 0 (α = 0 or ξ = 0); θ = arccos(cos θ) only enters
    through δ and is taken with cos θ clipped to 1 - eps from ±1, which keeps
    its gradient finite. Gradients flow through θ (and hence δ) as in the
    paper; ξ is a constant.
  * ``alpha`` = 0.1 is a default of this library, not a value from the group
    softmax paper (it says hyper-parameters were tuned per the original
    papers); set it in the config.
  """
  _nonnegative(alpha, "alpha")
  if rng is None:
    raise ValueError("`rng` is required: pass a jax.random key for the noise ξ.")
  features, labels, kernel, bias, _ = head_inputs(features, labels, kernel, bias)
  return _noisy_logits(features, labels, kernel, bias, rng, alpha)


def _noisy_logits(features, labels, kernel, bias, rng, alpha) -> jax.Array:
  dtype = features.dtype
  dots, dot_y, norm_prod, cos = _target_geometry(features, labels, kernel)
  eps = jnp.finfo(dtype).eps
  cos_c = jnp.clip(cos, -1.0 + eps, 1.0 - eps)
  theta = jnp.arccos(cos_c)
  xi = jax.random.normal(rng, (features.shape[0],), dtype)
  delta = jnp.minimum(jnp.asarray(alpha, dtype) * theta * jnp.abs(xi), jnp.pi - theta)
  sin_theta = jnp.sqrt(1.0 - cos_c**2)
  target = dot_y * jnp.cos(delta) - norm_prod * sin_theta * jnp.sin(delta)
  return _replace_target(dots, labels, target) + bias


def noisy_softmax_loss(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                       bias: ArrayLike | None, *, rng: jax.Array,
                       alpha: ArrayLike = 0.1, where: ArrayLike | None = None,
                       reduction: str = "mean",
                       axis_name: _batch.AxisName = None) -> jax.Array:
  """Batch-mean Noisy Softmax loss (Chen et al. 2017); see ``noisy_softmax_logits``.

  ``rng`` is a jax.random key (fresh each step, e.g. folded in from the step
  and, under ``shard_map``, the device index). Train-time only: evaluate with
  the plain logits. ``alpha = 0`` is softmax cross-entropy. The noise ξ is
  drawn for all B rows, masked or not, so a mask leaves the other rows' draws
  unchanged (``where`` then equals slicing only for ``alpha = 0`` or a
  matching key).

  Args:
    features, labels, kernel, bias: as in :func:`l_softmax_loss`.
    rng, alpha: as in :func:`noisy_softmax_logits`.
    {common}
  """
  _nonnegative(alpha, "alpha")
  if rng is None:
    raise ValueError("`rng` is required: pass a jax.random key for the noise ξ.")
  features, labels, kernel, bias, where = head_inputs(features, labels, kernel, bias, where)
  logits = _noisy_logits(features, labels, kernel, bias, rng, alpha)
  return _checks.nan_unless_valid(
      _reduce(cross_entropy(logits, labels), reduction, where, axis_name), alpha,
      positive=False)


noisy_softmax_loss.__doc__ = noisy_softmax_loss.__doc__.replace("{common}", _COMMON_ARGS)


# ----------------------------------------------------------- Virtual Softmax

def virtual_softmax_logits(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                           bias: ArrayLike | None) -> jax.Array:
  """[B, C + 1]: the head's logits plus the virtual class logit as last column.

  Chen et al. 2018 insert a virtual class with weight W_virt = ‖W_y‖ x / ‖x‖,
  whose logit is W_virt·x = ‖W_y‖‖x‖ >= W_y·x. Choice: with a head bias the
  virtual logit is ‖W_y‖‖x‖ + b_y, so it still bounds the target logit from
  above (the property the method rests on); with ``bias = 0``/``None`` it is
  exactly ‖W_y‖‖x‖.
  """
  features, labels, kernel, bias, _ = head_inputs(features, labels, kernel, bias)
  return _virtual_logits(features, labels, kernel, bias)


def _virtual_logits(features, labels, kernel, bias) -> jax.Array:
  dots, _, norm_prod, _ = _target_geometry(features, labels, kernel)
  virtual = norm_prod + bias[labels]
  return jnp.concatenate([dots + bias, virtual[:, None]], axis=1)


def virtual_softmax_loss(features: ArrayLike, labels: ArrayLike, kernel: ArrayLike,
                         bias: ArrayLike | None, *, where: ArrayLike | None = None,
                         reduction: str = "mean",
                         axis_name: _batch.AxisName = None) -> jax.Array:
  """Batch-mean Virtual Softmax loss (Chen et al. 2018):

  -log( e^{z_y} / (Σ_j e^{z_j} + e^{‖W_y‖‖x‖}) ), the virtual class being a
  negative class for every sample. Prediction uses the C real logits only.

  Args:
    features, labels, kernel, bias: as in :func:`l_softmax_loss`.
    {common}
  """
  features, labels, kernel, bias, where = head_inputs(features, labels, kernel, bias, where)
  logits = _virtual_logits(features, labels, kernel, bias)
  return _reduce(cross_entropy(logits, labels), reduction, where, axis_name)


virtual_softmax_loss.__doc__ = virtual_softmax_loss.__doc__.replace("{common}", _COMMON_ARGS)
