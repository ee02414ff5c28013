"""ITRA paper Table 1, KMNIST columns: baseline, label smoothing, center loss, ITRA-c.

KMNIST's training images are not on this machine (/work/shared/data/kmnist has the test
images and both label files only), so this config runs where the four original files
(kmnist-{train,test}-{imgs,labels}.npz) are present::

  python -m experiments.reproduce --config configs/itra/table1_kmnist.py \\
      --seeds 3 --out results/itra_table1_kmnist.md \\
      --config.dataset.manual_dir=/path/to/kmnist

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/itra/table1_kmnist.py:run=<name> --workdir DIR \\
      --config.dataset.manual_dir=/path/to/kmnist

The table compares the accuracy (%) and test cross-entropy of the baseline, label
smoothing (LSR), center loss and ITRA-c, each at the weight λ the paper lists
(itra_representation_alignment.txt, Table 1, KMNIST); the paper's figures: ``TABLE``.

Settings: as configs/itra/table1_fashion_mnist.py (LeNet-5, Adam 1e-3, batch 128, 20
epochs: our choices, the paper's are in its supplement) with ITRA-c λ = 0.8.

Runtime class: CPU, about 10-25 min per run on a 2-core CPU. Cost:
``python -m experiments.cost --config configs/itra/table1_kmnist.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.itra import _table1

TABLE = _table1.table("KMNIST", {"baseline": (95.57, 0.183), "lsr": (95.60, 0.181),
                                 "center": (94.90, 0.214), "itra": (95.79, 0.170)},
                      {"lsr": 0.1, "center": 0.1, "itra": 0.8})


def _table_config() -> ml_collections.ConfigDict:
  return _table1.config("kmnist", center_weight=0.1, itra_weight=0.8)


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
