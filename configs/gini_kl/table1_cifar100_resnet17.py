"""Gini paper Table 1, ResNet-17 rows: cross-entropy vs cross-entropy + Gini + KL on CIFAR-100.

Command (GPU; the paper's 5 trials)::

  python -m experiments.reproduce --config configs/gini_kl/table1_cifar100_resnet17.py \\
      --seeds 5 --out results/gini_kl_table1_resnet17.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/gini_kl/table1_cifar100_resnet17.py:run=<name> --workdir DIR

The table compares the two runs' CIFAR-100 (in-domain) and Caltech 101 (cross-domain)
accuracy (gini_kl_discriminability_loss.txt, Table 1, %, mean ± std of 5 trials); the
paper's figures: ``TABLE``.

ResNet-17 (Sec. 4.2) is ResNet-18 without the final Dense layer, its last convolution
having one filter per class, so the pooled last convolutional maps are the logits; the
Gini/KL terms read those maps ('last_conv', [B, 4, 4, 100]). Training as ResNet-18:
Adam lr 1e-3, batch 500, 200 epochs, lr x0.5 after 10 epochs without improvement
(threshold 1e-2); λ1 = λ2 = 0.5 from epoch 10. Choices: :mod:`configs.gini_kl._common`.

Runtime class: GPU-sized, under an hour per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/gini_kl/table1_cifar100_resnet17.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.gini_kl import _common

TABLE = _common.table1("ResNet-17", baseline=((71.88, 0.36), (63.22, 0.68)),
                       ours=((73.00, 0.20), (63.90, 1.56)))


def _table_config() -> ml_collections.ConfigDict:
  c = _common.cifar100_config()
  c.model.name = "resnet17"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  c.runs = _common.runs()
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
