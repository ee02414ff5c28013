"""ITRA paper Table 3, CIFAR-100 / ResNet-101 columns: baseline, center, ITRA-c at 3 batch sizes.

Command (GPU)::

  python -m experiments.reproduce --config configs/itra/table3_cifar100_resnet101.py \\
      --seeds 3 --out results/itra_table3_cifar100_resnet101.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/itra/table3_cifar100_resnet101.py:run=<name> --workdir DIR

The table compares the accuracy (%) and test cross-entropy of the baseline and center
loss (λ = 0.05) at batch 200 with ITRA-c (λ = 0.6) at batch 50, 100 and 200
(itra_representation_alignment.txt, Table 3, CIFAR-100 (Resnet-101)); the paper's
figures: ``TABLE``.

Settings: ResNet-101 (CIFAR stem); recipe as configs/itra/table2_cifar100.py (SGD 0.1,
momentum 0.9, weight decay 5e-4, cosine, 200 epochs, crop + flip: our choices, the
paper's are in its supplement) with the table's batch sizes; the learning rate is not
rescaled with the batch (the paper says nothing about it).

Runtime class: GPU-sized, hours per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/itra/table3_cifar100_resnet101.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.itra import _common as itra
from configs.itra import _table3

TABLE = _table3.table(
    "CIFAR-100, ResNet-101", 200, (50, 100, 200),
    ((75.85, 1.04), (75.23, 1.05), (75.97, 1.01), (77.35, 1.01), (76.85, 0.94)),
    notes="Recipe: our choice (see the config docstring).")


def _table_config() -> ml_collections.ConfigDict:
  c = base.get_config()
  c.dataset.name = "cifar100"
  c.augment = ("crop:4", "flip")
  c.model.name = "resnet101"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  itra.sgd_cifar(c)
  c.batch_size = 200
  c.runs = _table3.runs(200, (50, 100, 200))
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
