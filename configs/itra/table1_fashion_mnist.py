"""ITRA paper Table 1, FMNIST columns: baseline, label smoothing, center loss, ITRA-c.

Command (CPU-feasible)::

  python -m experiments.reproduce --config configs/itra/table1_fashion_mnist.py \\
      --seeds 3 --out results/itra_table1_fashion_mnist.md \\
      --config.dataset.manual_dir=/work/shared/data/fashion_mnist

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/itra/table1_fashion_mnist.py:run=<name> --workdir DIR \\
      --config.dataset.manual_dir=/work/shared/data/fashion_mnist

The table compares the accuracy (%) and test cross-entropy of the baseline, label
smoothing (LSR), center loss and ITRA-c, each at the weight λ the paper lists
(itra_representation_alignment.txt, Table 1, FMNIST); the paper's figures: ``TABLE``.

Settings: the methods of :mod:`configs.itra._common` (LSR α = 0.1, center loss λ = 0.1
with Wen's update, ITRA-c λ = 0.6). The network and recipe are in the paper's
supplement, not in our text; our choice: LeNet-5 (the FMNIST network of the σ²R paper,
so the FMNIST configs share one backbone), Adam lr 1e-3, batch 128, 20 epochs, no
augmentation (the paper notes the baseline's test loss rises: it overfits). Expect a
lower absolute accuracy than the paper's (unknown, probably larger) network.

Runtime class: CPU, about 20 min per run on a 2-core CPU. Cost:
``python -m experiments.cost --config configs/itra/table1_fashion_mnist.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.itra import _table1

TABLE = _table1.table("FMNIST", {"baseline": (92.43, 0.294), "lsr": (92.47, 0.292),
                                 "center": (92.10, 0.263), "itra": (92.57, 0.224)},
                      {"lsr": 0.1, "center": 0.1, "itra": 0.6})


def _table_config() -> ml_collections.ConfigDict:
  return _table1.config("fashion_mnist", center_weight=0.1, itra_weight=0.6)


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
