"""Gini paper Table 2: ablation of the loss terms, ResNet-18 on CIFAR-100.

Command (GPU; the paper's 5 trials; runs 'baseline' and 'gini_kl' are exactly Table 1's
ResNet-18 runs, so with the same ``--sweep_dir`` they are trained once for both tables)::

  python -m experiments.reproduce --config configs/gini_kl/table2_cifar100_resnet18.py \\
      --seeds 5 --sweep_dir workdir/sweeps/gini_kl/resnet18 --out results/gini_kl_table2.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/gini_kl/table2_cifar100_resnet18.py:run=<name> --workdir DIR

The table compares the CIFAR-100 accuracy of L_* (cross-entropy) alone, with L_Gini,
with L_KL and with both (gini_kl_discriminability_loss.txt, Table 2, %, mean ± std);
the paper's figures: ``TABLE``.

Settings: as Table 1's ResNet-18 (Adam 1e-3, batch 500, 200 epochs, plateau x0.5 after
10 epochs), each term weighted 0.5 from epoch 10 on 'last_conv'. Choices:
:mod:`configs.gini_kl._common`.

Runtime class: GPU-sized, under an hour per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/gini_kl/table2_cifar100_resnet18.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.gini_kl import _common

TABLE = paper.Table(
    _common.PAPER, "Table 2", "ablation of eq. 8's terms, ResNet-18 on CIFAR-100, accuracy %",
    columns=(_common.ACC,),
    rows=(paper.Row("L_*", "baseline", {_common.ACC.name: (71.47, 0.36)}),
          paper.Row("L_* + L_Gini", "gini", {_common.ACC.name: (69.87, 0.50)}),
          paper.Row("L_* + L_KL", "kl", {_common.ACC.name: (69.72, 0.38)}),
          paper.Row("L_* + L_Gini + L_KL", "gini_kl", {_common.ACC.name: (72.34, 0.13)})),
    trials=_common.TRIALS)


def _table_config() -> ml_collections.ConfigDict:
  c = _common.cifar100_config()
  c.runs = ml_collections.ConfigDict({
      "baseline": {"aux_losses": []},
      "gini": {"aux_losses": _common.gini_kl_terms(kl=False)},
      "kl": {"aux_losses": _common.gini_kl_terms(gini=False)},
      "gini_kl": {"aux_losses": _common.gini_kl_terms()},
  })
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
