"""Intra-class variance paper, Tables 1 and 2, Fashion-MNIST rows (16 runs feed both tables).

Command (CPU-feasible; the paper gives one run per cell, we use 3 seeds)::

  python -m experiments.reproduce \\
      --config configs/intra_class_variance/table1_2_fashion_mnist.py \\
      --seeds 3 --out results/intra_class_variance_fashion_mnist.md \\
      --config.dataset.manual_dir=/work/shared/data/fashion_mnist

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/intra_class_variance/table1_2_fashion_mnist.py:run=<name> --workdir DIR \\
      --config.dataset.manual_dir=/work/shared/data/fashion_mnist

The table compares cross-entropy with intra-class variance at λ = 1, 0.5, 0.05 on
non-normalised and normalised 2-D and 4-D embeddings, by nearest-centroid (Table 1) and
max-score (Table 2) test accuracy (intra_class_variance_hadamard.txt); the paper's
figures: ``TABLE``.

Runs: ``ce_{2,4}d[_norm]`` and ``icv{1,0p5,0p05}_{2,4}d[_norm]``. Settings and choices:
:mod:`configs.intra_class_variance._common` (embedding CNN, Adam 1e-3, batch 256, 20
epochs, constant rate). Model: the light embedding CNN (``widths=(16, 32),
convs_per_stage=1``: conv 3x3x16, P_2, conv 3x3x32, P_2, Dense 256, bottleneck), our
choice because the paper's figure with the layout is not in the text we have, and for the
CPU budget: the module's default layout (two convs per stage, widths 32/64) needs an
order of magnitude more compute per train step.

Runtime class: CPU, about 15-20 min per run on a 2-core CPU. Cost:
``python -m experiments.cost --config configs/intra_class_variance/table1_2_fashion_mnist.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.intra_class_variance import _common

TABLE = _common.table(
    "Fashion-MNIST",
    nearest={None: (0.746, 0.869, 0.814, 0.894), 1.0: (0.880, 0.891, 0.715, 0.884),
             0.5: (0.870, 0.902, 0.738, 0.889), 0.05: (0.867, 0.910, 0.820, 0.891)},
    max_score={None: (0.895, 0.924, 0.894, 0.920), 1.0: (0.882, 0.904, 0.884, 0.915),
               0.5: (0.890, 0.918, 0.889, 0.913), 0.05: (0.895, 0.927, 0.891, 0.926)})


def _table_config() -> ml_collections.ConfigDict:
  return _common.config("fashion_mnist")


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
