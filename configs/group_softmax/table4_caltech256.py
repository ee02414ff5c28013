"""Group softmax paper Table 4, Caltech-256 columns: eleven losses, ResNet-50 and VGG-16.

Command (GPU; the paper's 3 trials, one per prepared partition: see _table4)::

  python -m experiments.reproduce --config configs/group_softmax/table4_caltech256.py \\
      --seeds 3 --out results/group_softmax_table4_caltech256.md \\
      --config.dataset.data_dir=/path/to/tfds_with_caltech256

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/group_softmax/table4_caltech256.py:run=<name> --workdir DIR \\
      --config.dataset.data_dir=/path/to/tfds_with_caltech256

The table compares the Caltech-256 error (%, mean ± std of 3 trials) of eleven losses with
ResNet-50 and VGG-16, and of a hand-crafted Fisher-vector pipeline [32] (not
reproduced) (group_softmax_loss.txt, Table 4); the paper's figures: ``TABLE``.

Runs '<model>_<method>' as in configs/group_softmax/table2_food101.py. Protocol and data
preparation: :mod:`configs.group_softmax._table4`; recipe and method settings (our
90-epoch schedule): :mod:`configs.group_softmax._common`.

Runtime class: GPU-sized, hours per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/group_softmax/table4_caltech256.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.group_softmax import _table4

TABLE = _table4.table(
    "Caltech-256",
    resnet50={"softmax": (48.4, 0.5), "l_softmax": (43.0, 1.6), "sigsoftmax": (48.2, 2.2),
              "noisy_softmax": (43.2, 0.7), "virtual_softmax": (46.9, 0.5),
              "center": (53.5, 1.3), "dropout_0p2": (44.9, 0.6), "dropout_0p5": (44.7, 1.7),
              "adv_dropout": (43.8, 0.8), "type1": (42.8, 0.6), "type2": (37.5, 0.2)},
    vgg16={"softmax": (51.3, 2.0), "l_softmax": (44.5, 1.0), "sigsoftmax": (54.6, 1.7),
           "noisy_softmax": (51.2, 1.2), "virtual_softmax": (54.5, 2.8), "center": (44.6, 1.2),
           "dropout_0p2": (50.5, 0.3), "dropout_0p5": (47.1, 0.6), "adv_dropout": (45.4, 1.7),
           "type1": (46.1, 0.8), "type2": (41.8, 0.5)},
    hand_craft=(42.7, 0.2))


def _table_config() -> ml_collections.ConfigDict:
  return _table4.config("caltech256")


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
