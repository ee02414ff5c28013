"""Gini paper Table 1, CvT-7 rows: cross-entropy vs cross-entropy + Gini + KL on CIFAR-100.

Command (GPU; the paper's 5 trials)::

  python -m experiments.reproduce --config configs/gini_kl/table1_cifar100_cvt7.py \\
      --seeds 5 --out results/gini_kl_table1_cvt7.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/gini_kl/table1_cifar100_cvt7.py:run=<name> --workdir DIR

The table compares the two runs' CIFAR-100 (in-domain) and Caltech 101 (cross-domain)
accuracy (gini_kl_discriminability_loss.txt, Table 1, %, mean ± std of 5 trials); the
paper's figures: ``TABLE``.

Settings (Sec. 4.2): CvT-7 (stages of 1/2/4 blocks, token embeddings of 32/128/258
filters, 1/2/6 heads), "200 epochs ... mini-batch size to 200 ... AdaMax, with an
initial learning rate of 2e-3" (no schedule is named: constant); the Gini/KL terms on
"the convolutional token embedding layer from the last stage" ('last_conv'),
λ1 = λ2 = 0.5 from epoch 10. CIFAR stem (see disc_jax.models.cvt). Choices:
:mod:`configs.gini_kl._common`.

Runtime class: GPU-sized, minutes per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/gini_kl/table1_cifar100_cvt7.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.gini_kl import _common

TABLE = _common.table1("CvT-7", baseline=((63.34, 0.56), (53.35, 1.26)),
                       ours=((63.76, 0.25), (53.79, 0.89)))


def _table_config() -> ml_collections.ConfigDict:
  c = _common.cifar100_config()
  c.model.name = "cvt7"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  c.batch_size = 200
  c.num_epochs = 200
  c.optimizer = base.optimizer("adamax", 2e-3)
  c.schedule = ml_collections.ConfigDict({"name": "constant", "kwargs": {}})
  c.runs = _common.runs()
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
