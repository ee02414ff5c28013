"""σ²R paper Table 4: ResNet-18 on CIFAR-100, σ²R vs cross-entropy vs center loss.

Command (GPU; the paper's 10 executions)::

  python -m experiments.reproduce --config configs/sigma2r/table4_cifar100.py \\
      --seeds 10 --out results/sigma2r_table4_cifar100.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/sigma2r/table4_cifar100.py:run=<name> --workdir DIR

The table compares the test accuracy (%, average and maximum of 10 executions) of σ²R,
the cross-entropy baseline and center loss (sigma2r_loss.txt, Table 4); the paper's
figures: ``TABLE``.

Settings (Sec. 5.2): ResNet-18 (CIFAR stem) "trained for 500 epochs using the Cifar100
dataset", batch 1000 balanced ("10 instances per class"; min 8 = n + 1), Adam lr 0.4
for the network as printed for Table 3 (see configs/sigma2r/table2_3_cifar10.py on
this rate), second Adam lr 0.1, per-epoch cosine decay, λ = 0.01, n = 7, Z = 40.
Choices: :mod:`configs.sigma2r._common`.

Runtime class: GPU-sized, about an hour per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/sigma2r/table4_cifar100.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.sigma2r import _common as s2r

TABLE = paper.Table(
    s2r.PAPER, "Table 4", "CIFAR-100, ResNet-18: accuracy (avg/max of the seeds)",
    columns=(s2r.AVG, s2r.MAX),
    rows=(s2r.summary_row("σ²R loss", "sigma2r", {s2r.AVG.name: 60.281, s2r.MAX.name: 62.65}),
          s2r.summary_row("baseline", "cross_entropy", {s2r.AVG.name: 56.44, s2r.MAX.name: 58.18}),
          s2r.summary_row("base+CenterLoss", "center_loss",
                          {s2r.AVG.name: 58.90, s2r.MAX.name: 61.57})),
    trials=10)


def _table_config() -> ml_collections.ConfigDict:
  c = s2r.config("cifar100", "resnet18", stem="cifar")
  c.batch_size = 1000
  c.eval_batch_size = 1000
  c.num_epochs = 500
  c.optimizer = base.optimizer("adam", 0.4)
  c.runs = s2r.runs(with_snnl=False)
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
