"""ITRA paper Table 2, STL-10 columns: ResNet-18 / VGG-13 / MobileNetV2 x four methods.

Command (GPU; the paper names no trial count)::

  python -m experiments.reproduce --config configs/itra/table2_stl10.py \\
      --seeds 3 --out results/itra_table2_stl10.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/itra/table2_stl10.py:run=<name> --workdir DIR

The table compares the accuracy (%) and test cross-entropy of the baseline, LSR,
center loss and ITRA-c on each network, at the weights λ the paper lists per network
(``_LAMBDAS``: center, ITRA) (itra_representation_alignment.txt, Table 2, STL10); the
paper's figures: ``TABLE``.

Settings: as configs/itra/table2_cifar10.py on STL-10's 5,000 labelled 96x96 training
images (CIFAR-variant networks on 96x96 inputs), pad-and-crop by 12 pixels (4/32 of the
side, as for CIFAR) + horizontal flip. All choices ours (the paper's are in its
supplement).

Runtime class: GPU-sized, up to about an hour per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/itra/table2_stl10.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.itra import _table2

_LAMBDAS = {"resnet18": (0.1, 0.6), "vgg13": (0.05, 0.8), "mobilenet_v2": (0.1, 0.6)}
TABLE = _table2.table("STL-10", {
    "resnet18": {"baseline": (70.88, 1.63), "lsr": (71.08, 1.55), "center": (70.97, 1.10),
                 "itra": (72.78, 1.05)},
    "vgg13": {"baseline": (74.40, 1.55), "lsr": (74.50, 1.51), "center": (74.04, 1.16),
              "itra": (75.80, 0.93)},
    "mobilenet_v2": {"baseline": (59.09, 2.14), "lsr": (59.01, 2.12), "center": (58.24, 1.46),
                     "itra": (62.02, 1.60)}}, _LAMBDAS)


def _table_config() -> ml_collections.ConfigDict:
  return _table2.config("stl10", ("crop:12", "flip"), _LAMBDAS)


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
