"""ITRA paper Table 1, KMNIST columns: baseline, label smoothing, center loss, ITRA-c.

KMNIST's training images are not on this machine (/work/shared/data/kmnist has the test
images and both label files only), so this config runs where the four original files
(kmnist-{train,test}-{imgs,labels}.npz) are present::

  python -m experiments.reproduce --config configs/itra/table1_kmnist.py \\
      --seeds 3 --out results/itra_table1_kmnist.md \\
      --config.dataset.manual_dir=/path/to/kmnist

Paper (itra_representation_alignment.txt, Table 1, KMNIST):

  ========  ====  =======  =====
  method    λ     Acc (%)  CE
  ========  ====  =======  =====
  Baseline  -     95.57    0.183
  LSR       0.1   95.60    0.181
  Center    0.1   94.90    0.214
  ITRA      0.8   95.79    0.170
  ========  ====  =======  =====

Settings: as configs/itra/table1_fashion_mnist.py (LeNet-5, Adam 1e-3, batch 128, 20
epochs: our choices, the paper's are in its supplement) with ITRA-c λ = 0.8.

Cost (``python -m experiments.cost``): XLA counts 0.29-0.61 GFLOP per train step (the
config's batch and image size; an ITRA row costs twice its baseline: two
forward/backward batches), 468 steps/epoch, 9,360 steps per run: about 0.3 min per run
on one H100 at the assumed 15 TFLOP/s, 4 min on the GPU for 4 runs x 3 seeds (estimates:
no GPU was measured). CPU, measured on this shared 2-core machine while other jobs ran:
0.07 s/step (baseline), 0.16 s/step (itra), i.e. about 0.18 h to 0.41 h per run and 2.8
h for the sweep.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.itra import _table1

TABLE = _table1.table("KMNIST", {"baseline": (95.57, 0.183), "lsr": (95.60, 0.181),
                                 "center": (94.90, 0.214), "itra": (95.79, 0.170)},
                      {"lsr": 0.1, "center": 0.1, "itra": 0.8})


def _table_config() -> ml_collections.ConfigDict:
  return _table1.config("kmnist", center_weight=0.1, itra_weight=0.8)


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
