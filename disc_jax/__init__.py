"""disc_jax: discriminative representation learning in JAX/Flax.

Subpackages (data flows top to bottom):

* ``disc_jax.losses``  -- pure loss functions on arrays (import these into your own code).
* ``disc_jax.models``  -- Flax Linen backbones that ``sow`` their features.
* ``disc_jax.data``    -- host-side datasets, pipelines and samplers (numpy batches).
* ``disc_jax.train``   -- the jitted train step and the loop around it (configs live here).
* ``disc_jax.metrics`` -- evaluation metrics on features and logits.

``pip install disc_jax`` installs what ``disc_jax.losses`` needs (jax, numpy);
the other subpackages need the ``train`` extra (``pip install 'disc_jax[train]'``).
Importing ``disc_jax`` imports no subpackage.
"""

__version__ = "0.1.0"  # the package version (pyproject.toml reads it from here)
