"""Gini paper Table 1, ResNet-50 rows: cross-entropy vs cross-entropy + Gini + KL on CIFAR-100.

Command (GPU; the paper's 5 trials)::

  python -m experiments.reproduce --config configs/gini_kl/table1_cifar100_resnet50.py \\
      --seeds 5 --out results/gini_kl_table1_resnet50.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/gini_kl/table1_cifar100_resnet50.py:run=<name> --workdir DIR

The table compares the two runs' CIFAR-100 (in-domain) and Caltech 101 (cross-domain)
accuracy (gini_kl_discriminability_loss.txt, Table 1, %, mean ± std of 5 trials); the
paper's figures: ``TABLE``.

Settings (Sec. 4.2): "ResNet-50 for 250 epochs on mini-batches of size 200 ... stochastic
gradient descent with momentum ... 0.9 ... learning rate of 1e-1 and a weight decay of
5e-4. At epochs 60, 120, 160, and 200, we reduced the learning rate by a factor of 0.2."
CIFAR stem; λ1 = λ2 = 0.5 from epoch 10 on the last block's output. Choices:
:mod:`configs.gini_kl._common`.

Runtime class: GPU-sized, hours per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/gini_kl/table1_cifar100_resnet50.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.gini_kl import _common

TABLE = _common.table1("ResNet-50", baseline=((76.45, 0.51), (70.14, 1.26)),
                       ours=((76.92, 0.61), (70.68, 0.74)))


def _table_config() -> ml_collections.ConfigDict:
  c = _common.cifar100_config()
  c.model.name = "resnet50"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  c.batch_size = 200
  c.num_epochs = 250
  c.optimizer = base.optimizer("sgd", 0.1, weight_decay=5e-4, momentum=0.9)
  c.schedule = ml_collections.ConfigDict({"name": "piecewise_constant", "kwargs": {
      "boundaries_epochs": (60, 120, 160, 200), "scale": 0.2}})
  c.runs = _common.runs()
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
