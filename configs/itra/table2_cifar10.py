"""ITRA paper Table 2, CIFAR-10 columns: ResNet-18 / VGG-13 / MobileNetV2 x four methods.

Command (GPU; the paper names no trial count)::

  python -m experiments.reproduce --config configs/itra/table2_cifar10.py \\
      --seeds 3 --out results/itra_table2_cifar10.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/itra/table2_cifar10.py:run=<name> --workdir DIR

The table compares the accuracy (%) and test cross-entropy of the baseline, LSR,
center loss and ITRA-c on each network, at the weights λ the paper lists per network
(``_LAMBDAS``: center, ITRA) (itra_representation_alignment.txt, Table 2, CIFAR10); the
paper's figures: ``TABLE``.

Settings: methods of :mod:`configs.itra._common`; recipe (our choice, the paper's is in
its supplement): SGD lr 0.1, momentum 0.9, weight decay 5e-4, cosine decay, batch 128,
200 epochs, 4-pixel pad-and-crop + horizontal flip.

Runtime class: GPU-sized, up to about an hour per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/itra/table2_cifar10.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.itra import _table2

_LAMBDAS = {"resnet18": (0.1, 0.8), "vgg13": (0.05, 0.8), "mobilenet_v2": (0.1, 1.0)}
TABLE = _table2.table("CIFAR-10", {
    "resnet18": {"baseline": (92.99, 0.40), "lsr": (92.73, 0.42), "center": (92.30, 0.35),
                 "itra": (93.70, 0.27)},
    "vgg13": {"baseline": (92.49, 0.47), "lsr": (92.53, 0.46), "center": (92.11, 0.38),
              "itra": (92.72, 0.33)},
    "mobilenet_v2": {"baseline": (88.55, 0.62), "lsr": (88.77, 0.61), "center": (88.81, 0.53),
                     "itra": (89.37, 0.43)}}, _LAMBDAS)


def _table_config() -> ml_collections.ConfigDict:
  return _table2.config("cifar10", ("crop:4", "flip"), _LAMBDAS)


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
