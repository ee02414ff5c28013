"""Pure loss functions for discriminative representation learning.

Every function takes arrays and returns a ``jax.Array``; none touches Flax, a
config or mutable state, so each can be used under ``jit``, ``grad`` and
``vmap`` in any JAX code. Losses that use batch statistics take an optional
``axis_name``: inside ``jax.shard_map``/``jax.pmap`` it makes those statistics
global, so the per-device call returns the value of the concatenated batch.

Shapes: ``features`` [B, D] float, ``labels`` [B] int in [0, num_classes),
``activations`` [B, ..., C] channels-last (global-average-pooled inside).
"""

# --- Gini / KL (gini_kl_discriminability_loss) ---
# --- group softmax (group_softmax_loss) ---
# --- MMD / ITRA (itra_representation_alignment) ---
# --- sigma2R (sigma2r_loss) ---
# --- centers: center loss, Wen update, intra-class variance ---
# --- soft nearest neighbour ---
# --- softmax variants and dropout baselines (group softmax Tables 2, 4) ---
