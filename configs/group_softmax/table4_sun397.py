"""Group softmax paper Table 4, SUN-397 columns: eleven losses, ResNet-50 and VGG-16.

Command (GPU; the paper's 3 trials, one per prepared partition: see _table4)::

  python -m experiments.reproduce --config configs/group_softmax/table4_sun397.py \\
      --seeds 3 --out results/group_softmax_table4_sun397.md \\
      --config.dataset.data_dir=/path/to/tfds_with_sun397

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/group_softmax/table4_sun397.py:run=<name> --workdir DIR \\
      --config.dataset.data_dir=/path/to/tfds_with_sun397

The table compares the SUN-397 error (%, mean ± std of 3 trials) of eleven losses with
ResNet-50 and VGG-16, and of a hand-crafted Fisher-vector pipeline [32] (not
reproduced) (group_softmax_loss.txt, Table 4); the paper's figures: ``TABLE``.

Runs '<model>_<method>' as in configs/group_softmax/table2_food101.py. Protocol and data
preparation: :mod:`configs.group_softmax._table4`; recipe and method settings (our
90-epoch schedule): :mod:`configs.group_softmax._common`.

Runtime class: GPU-sized, hours per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/group_softmax/table4_sun397.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.group_softmax import _table4

TABLE = _table4.table(
    "SUN-397",
    resnet50={"softmax": (55.7, 0.6), "l_softmax": (56.3, 1.6), "sigsoftmax": (56.9, 0.5),
              "noisy_softmax": (56.0, 1.4), "virtual_softmax": (56.9, 0.5),
              "center": (60.6, 1.0), "dropout_0p2": (56.5, 0.3), "dropout_0p5": (54.8, 0.7),
              "adv_dropout": (53.4, 0.9), "type1": (52.9, 0.5), "type2": (50.4, 0.5)},
    vgg16={"softmax": (58.8, 1.4), "l_softmax": (53.1, 0.7), "sigsoftmax": (59.6, 1.2),
           "noisy_softmax": (57.5, 0.8), "virtual_softmax": (56.4, 0.2), "center": (52.9, 0.4),
           "dropout_0p2": (57.2, 0.7), "dropout_0p5": (55.5, 0.9), "adv_dropout": (54.0, 0.4),
           "type1": (52.2, 0.9), "type2": (50.0, 0.2)},
    hand_craft=(52.8, 0.2))


def _table_config() -> ml_collections.ConfigDict:
  return _table4.config("sun397")


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
