"""ITRA paper Table 2, CIFAR-100 columns: ResNet-18 / VGG-13 / MobileNetV2 x four methods.

Command (GPU; the paper names no trial count)::

  python -m experiments.reproduce --config configs/itra/table2_cifar100.py \\
      --seeds 3 --out results/itra_table2_cifar100.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/itra/table2_cifar100.py:run=<name> --workdir DIR

The table compares the accuracy (%) and test cross-entropy of the baseline, LSR,
center loss and ITRA-c on each network, at the weights λ the paper lists per network
(``_LAMBDAS``: center, ITRA) (itra_representation_alignment.txt, Table 2, CIFAR100); the
paper's figures: ``TABLE``.

Settings: as configs/itra/table2_cifar10.py (SGD 0.1, momentum 0.9, weight decay 5e-4,
cosine, batch 128, 200 epochs, crop + flip: our choices).

Runtime class: GPU-sized, up to about an hour per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/itra/table2_cifar100.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.itra import _table2

_LAMBDAS = {"resnet18": (0.05, 0.6), "vgg13": (0.05, 0.6), "mobilenet_v2": (0.05, 0.6)}
TABLE = _table2.table("CIFAR-100", {
    "resnet18": {"baseline": (74.19, 1.05), "lsr": (74.21, 1.04), "center": (73.98, 0.98),
                 "itra": (74.88, 0.97)},
    "vgg13": {"baseline": (71.72, 1.46), "lsr": (71.75, 1.43), "center": (71.65, 1.31),
              "itra": (72.55, 1.22)},
    "mobilenet_v2": {"baseline": (66.42, 1.57), "lsr": (66.60, 1.55), "center": (66.39, 1.51),
                     "itra": (67.23, 1.49)}}, _LAMBDAS)


def _table_config() -> ml_collections.ConfigDict:
  return _table2.config("cifar100", ("crop:4", "flip"), _LAMBDAS)


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
