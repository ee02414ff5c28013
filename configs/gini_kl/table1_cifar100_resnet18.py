"""Gini paper Table 1, ResNet-18 rows: cross-entropy vs cross-entropy + Gini + KL on CIFAR-100.

Command (GPU; the paper's 5 trials)::

  python -m experiments.reproduce --config configs/gini_kl/table1_cifar100_resnet18.py \\
      --seeds 5 --sweep_dir workdir/sweeps/gini_kl/resnet18 \\
      --out results/gini_kl_table1_resnet18.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/gini_kl/table1_cifar100_resnet18.py:run=<name> --workdir DIR

The table compares the two runs' CIFAR-100 (in-domain) and Caltech 101 (cross-domain)
accuracy (gini_kl_discriminability_loss.txt, Table 1, %, mean ± std of 5 trials); the
paper's figures: ``TABLE``.

Settings (Sec. 4.2): ResNet-18 (CIFAR stem: 3x3 conv, no max-pool), Adam lr 1e-3,
batch 500, 200 epochs, lr x0.5 after 10 epochs without improvement (threshold 1e-2);
runs 'baseline' (cross-entropy) and 'gini_kl' (+ 0.5 L_Gini + 0.5 L_KL on the last
convolutional block's output from epoch 10). Choices (validation split, augmentation,
plateau metric): see :mod:`configs.gini_kl._common`. The Caltech 101 column is the
cross-domain test on 'caltech101_cifar100' (``final_eval.extra_datasets``; needs TFDS
'caltech101' prepared on the machine).

Runtime class: GPU-sized, under an hour per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/gini_kl/table1_cifar100_resnet18.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.gini_kl import _common

TABLE = _common.table1("ResNet-18", baseline=((71.47, 0.36), (63.04, 1.35)),
                       ours=((72.34, 0.13), (64.33, 0.84)))


def _table_config() -> ml_collections.ConfigDict:
  c = _common.cifar100_config()
  c.model.name = "resnet18"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  c.runs = _common.runs()
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
