"""The main job: LeNet++ 2-D features on Fuzzy-RGB, cross-entropy vs center loss vs σ²R.

Paper: σ²R Fig. 4 (sigma2r_loss.txt, Sec. 3.1: "a LeNet with PReLU activation ... CNN's
penultimate layer uses only two neurons", trained with cross-entropy, cross-entropy +
center loss and cross-entropy + σ²R on Fuzzy-RGB), plus the center loss at σ²R's
effective weight. Command (all runs side by side, about 2 minutes on a 2-core CPU)::

  python -m experiments.train --config configs/default.py --workdir /tmp/disc_default

or one run: ``--config=configs/default.py:run=sigma2r``. It writes
``<workdir>/<run>/`` per run (metrics.jsonl, TensorBoard events, checkpoints,
final_metrics.json, features_{train,test}.png, features.npz, and σ²R's w_K.png) and
``<workdir>/summary.{json,md}`` and ``<workdir>/features_side_by_side.png`` (Fig. 4).

Settings (σ²R Sec. 5.1-5.2): Adam 1e-3 for the network with a per-epoch cosine decay, a
second Adam at lr 0.1 for the centers and growth rates, λ = 0.01 for both losses,
n = 7, Z = 40, balanced batches, centers and growth rates drawn from N(0, 1).

``center_loss_matched``: once K -> ε, σ²R weighs every sample by β = Z/2 = 20, so at the
same λ it pulls like λ Z/2 mean ||x - C||^2, while the center loss is λ/2 mean ||x - C||^2.
The center loss at λ Z = 0.4 has σ²R's effective weight: it tells the weighting from the
scale.

Reduced to fit a few minutes on 2 CPU cores: images fed at 8x8 instead of 32x32
(``dataset.image_size``; Fuzzy-RGB images are one uniform colour, so resizing changes
nothing in their content, and LeNet++'s three 2x2 pools still apply), 500 images per class
(400 train / 100 test) instead of 3000, 6 epochs.
"""

from __future__ import annotations

import ml_collections

from configs import base

LAMBDA = 0.01          # σ²R Table 1's λ, for both losses
Z = 40.0
_SECOND_ADAM = base.optimizer("adam", 0.1)   # σ²R: a second Adam, lr 0.1, for loss params
RUNS = {
    "cross_entropy": {},
    "center_loss": {"aux_losses": [base.aux_loss("center", LAMBDA,
                                                 param_optimizer=_SECOND_ADAM)]},
    "center_loss_matched": {"aux_losses": [base.aux_loss("center", LAMBDA * Z,
                                                         param_optimizer=_SECOND_ADAM)]},
    "sigma2r": {"aux_losses": [base.aux_loss("sigma2r", LAMBDA,
                                             kwargs={"n_neighbors": 7, "z": Z},
                                             param_optimizer=_SECOND_ADAM)]},
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The shared settings with the fields of run ``arg`` ('run=<name>'; None: the first)."""
  config = base.get_config()
  config.seed = 0
  config.dataset.name = "fuzzy_rgb"
  config.dataset.kwargs = ml_collections.ConfigDict({"per_class": 500, "train_per_class": 400})
  config.dataset.image_size = 8
  config.dataset.sampler = "balanced"       # σ²R Sec. 5.2: balanced batches
  config.dataset.min_per_class = 8           # >= n + 1 = 8 per class for σ²R's neighbourhoods
  config.model.name = "lenet_pp"
  config.model.kwargs = ml_collections.ConfigDict({"feature_dim": 2})
  config.batch_size = 96
  config.eval_batch_size = 100
  config.num_epochs = 6
  config.optimizer = base.optimizer("adam", 1e-3)
  config.schedule.name = "cosine"            # σ²R Sec. 5.1: cosine-like decay per epoch
  config.log_every = 12                      # once an epoch (12 steps)
  config.eval_every = 3 * 12                 # twice per run
  config.final_eval.max_train_examples = 1200
  return base.run_variant(config, RUNS, arg)
