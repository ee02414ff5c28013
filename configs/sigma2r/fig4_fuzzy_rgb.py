"""σ²R paper Fig. 4: 2-D training features on Fuzzy-RGB, cross-entropy vs center loss vs σ²R.

A figure, not a table: the paper gives no numbers, so this config reports our test
accuracy and mean intra-class std (eq. 12) of the 2-D features beside each other, and
``experiments.train`` draws the figure (``features_side_by_side.png``)::

  python -m experiments.train --config configs/sigma2r/fig4_fuzzy_rgb.py \\
      --workdir workdir/sigma2r_fig4
  python -m experiments.reproduce --config configs/sigma2r/fig4_fuzzy_rgb.py \\
      --seeds 3 --out results/sigma2r_fig4_fuzzy_rgb.md

One run: ``--config=configs/sigma2r/fig4_fuzzy_rgb.py:run=<name>`` (``RUNS`` lists the names).

Settings: Fuzzy-RGB at the paper's scale (Sec. 3.1: 32x32x3 images, 3,000 per class;
our split 2,500 train / 500 test per class), "a LeNet with PReLU activation" whose
"penultimate layer uses only two neurons" (Fig. 4 caption: LeNet++ with 2-D
features; Sec. 3.1/5.3 say a ResNet-18 reduced to 2 channels instead: run it with
``--config.model.name=resnet18 --config.model.kwargs.feature_dim=2`` plus
``stem='cifar'``), σ²R's protocol of :mod:`configs.sigma2r._common` (Adam 1e-3 for the
network as for FMNIST, second Adam 0.1, λ = 0.01, n = 7, Z = 40, balanced batches of
256, per-epoch cosine) for 20 epochs (our choice: the paper gives none for Fig. 4).
The images are uniform colours, so no augmentation is used.

Runtime class: CPU, about an hour per run on a 2-core CPU. Cost:
``python -m experiments.cost --config configs/sigma2r/fig4_fuzzy_rgb.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.sigma2r import _common as s2r

_TRAIN_MEAN_STD = paper.Column("train I_c, mean over classes", "train/intra_class_std", digits=4)
_TEST_ACC = paper.Column("test accuracy (%)", "accuracy", scale=100.0)

TABLE = paper.Table(
    s2r.PAPER, "Fig. 4", "Fuzzy-RGB, LeNet++ with 2-D features (no figures in the paper)",
    columns=(_TEST_ACC, _TRAIN_MEAN_STD),
    rows=(paper.Row("cross-entropy", "cross_entropy", {}),
          paper.Row("center loss", "center_loss", {}),
          paper.Row("σ²R", "sigma2r", {})))


def _table_config() -> ml_collections.ConfigDict:
  c = s2r.config("fuzzy_rgb", "lenet_pp", feature_dim=2)
  c.augment = ()
  c.dataset.kwargs = ml_collections.ConfigDict({"per_class": 3000, "train_per_class": 2500})
  c.num_epochs = 20
  c.optimizer = base.optimizer("adam", 1e-3)
  c.final_eval.max_train_examples = 7500
  c.runs = s2r.runs(with_snnl=False)
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
