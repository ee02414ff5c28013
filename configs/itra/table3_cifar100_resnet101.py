"""ITRA paper Table 3, CIFAR-100 / ResNet-101 columns: baseline, center, ITRA-c at 3 batch sizes.

Command (GPU)::

  python -m experiments.reproduce --config configs/itra/table3_cifar100_resnet101.py \\
      --seeds 3 --out results/itra_table3_cifar100_resnet101.md

Paper (itra_representation_alignment.txt, Table 3, CIFAR-100 (Resnet-101)):

  ==================  ==========  =====  ====
  method              batch size  Acc    CE
  ==================  ==========  =====  ====
  Baseline            200         75.85  1.04
  Center (λ = 0.05)   200         75.23  1.05
  ITRA (λ = 0.6)      50          75.97  1.01
  ITRA (λ = 0.6)      100         77.35  1.01
  ITRA (λ = 0.6)      200         76.85  0.94
  ==================  ==========  =====  ====

Settings: ResNet-101 (CIFAR stem); recipe as configs/itra/table2_cifar100.py (SGD 0.1,
momentum 0.9, weight decay 5e-4, cosine, 200 epochs, crop + flip: our choices, the
paper's are in its supplement) with the table's batch sizes; the learning rate is not
rescaled with the batch (the paper says nothing about it).

Cost (``python -m experiments.cost``): XLA counts 1,408-5,632 GFLOP per train step (the
config's batch and image size; an ITRA row costs twice its baseline: two
forward/backward batches), 50,000-200,000 steps per run (the rows' batch sizes differ):
about 2.6 h to 5.2 h per run on one H100 at the assumed 15 TFLOP/s, 63 h on the GPU for
5 runs x 3 seeds (estimates: no GPU was measured). Not CPU-feasible.
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
