"""Pure loss functions for discriminative representation learning.

Every function takes arrays and returns a ``jax.Array``; none touches Flax, a
config or mutable state, so each can be used under ``jit``, ``grad`` and
``vmap`` in any JAX code. Losses that use batch statistics take an optional
``axis_name``: inside ``jax.shard_map``/``jax.pmap`` it makes those statistics
global, so the per-device call returns the value of the concatenated batch.

Shapes: ``features`` [B, D] float, ``labels`` [B] int in [0, num_classes),
``activations`` [B, ..., C] channels-last (global-average-pooled inside).

Drop-in conventions shared by every loss:

* ``where`` ([B] bool, ``None`` = all rows): unselected rows take part in no
  batch statistic and in no mean, as if sliced out, with static shapes. The
  two-batch losses (``mmd``, ``itra_loss``) take ``where_1`` and ``where_2``.
  Under ``axis_name`` each device passes the mask of its own rows.
* ``reduction`` (``"mean"`` or ``"none"``) on the losses that are means of
  per-example terms; ``"none"`` gives [B] with 0 at masked rows. The
  batch-level losses (Gini, KL, MMD, ITRA) have no per-example form.
* NaN or inf in the features gives NaN; a traced out-of-range label gives NaN
  (a concrete one raises a ValueError); an empty or all-masked batch gives 0.
"""

# --- Gini / KL (gini_kl_discriminability_loss) ---
from disc_jax.losses._gini_kl import class_activation_shares, gini_loss, kl_loss
# --- group softmax (group_softmax_loss) ---
from disc_jax.losses._group_softmax import (
    discriminativity_scores, group_logits, group_softmax_loss, grouping_permutation)
# --- MMD / ITRA (itra_representation_alignment) ---
from disc_jax.losses._mmd import itra_loss, mmd
# --- sigma2R (sigma2r_loss) ---
from disc_jax.losses._sigma2r import sigma2r_loss
# --- centers: center loss, Wen update, intra-class variance ---
from disc_jax.losses._centers import center_loss, intra_class_variance_loss, update_centers
# --- soft nearest neighbour ---
from disc_jax.losses._snnl import soft_nearest_neighbor_loss
# --- softmax variants and dropout baselines (group softmax Tables 2, 4) ---
from disc_jax.losses._softmax_variants import (
    l_softmax_lambda, l_softmax_logits, l_softmax_loss, l_softmax_psi, log_sigsoftmax,
    noisy_softmax_logits, noisy_softmax_loss, sigsoftmax, sigsoftmax_loss,
    virtual_softmax_logits, virtual_softmax_loss)
from disc_jax.losses._feature_dropout import (
    adversarial_dropout_loss, adversarial_dropout_mask, adversarial_dropout_weight,
    feature_dropout_loss)

# The flat public API (also what the API docs list on this page).
__all__ = [
    "adversarial_dropout_loss", "adversarial_dropout_mask", "adversarial_dropout_weight",
    "center_loss", "class_activation_shares", "discriminativity_scores",
    "feature_dropout_loss", "gini_loss", "group_logits", "group_softmax_loss",
    "grouping_permutation", "intra_class_variance_loss", "itra_loss", "kl_loss",
    "l_softmax_lambda", "l_softmax_logits", "l_softmax_loss", "l_softmax_psi",
    "log_sigsoftmax", "mmd", "noisy_softmax_logits", "noisy_softmax_loss",
    "sigma2r_loss", "sigsoftmax", "sigsoftmax_loss", "soft_nearest_neighbor_loss",
    "update_centers", "virtual_softmax_logits", "virtual_softmax_loss",
]
