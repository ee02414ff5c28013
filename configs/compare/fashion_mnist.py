"""Beyond the papers: every loss of the library under one protocol on Fashion-MNIST.

Command (10 losses x 5 seeds)::

  python -m experiments.reproduce --config configs/compare/fashion_mnist.py \\
      --seeds 5 --out results/compare_fashion_mnist.md \\
      --config.dataset.manual_dir=/work/shared/data/fashion_mnist

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/compare/fashion_mnist.py:run=<name> --workdir DIR \\
      --config.dataset.manual_dir=/work/shared/data/fashion_mnist

No paper has this table (there are no paper figures to compare with). Protocol, losses,
weights and metrics: :mod:`configs.compare._protocol`.

Runtime class: CPU, about 10-20 min per run on a 2-core CPU. Cost:
``python -m experiments.cost --config configs/compare/fashion_mnist.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.compare import _protocol

TABLE = _protocol.table("Fashion-MNIST")


def _table_config() -> ml_collections.ConfigDict:
  return _protocol.config("fashion_mnist")


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
