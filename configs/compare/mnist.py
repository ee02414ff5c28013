"""Beyond the papers: every loss of the library under one protocol on MNIST.

Command (10 losses x 5 seeds)::

  python -m experiments.reproduce --config configs/compare/mnist.py \\
      --seeds 5 --out results/compare_mnist.md \\
      --config.dataset.manual_dir=/work/shared/data/mnist

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/compare/mnist.py:run=<name> --workdir DIR \\
      --config.dataset.manual_dir=/work/shared/data/mnist

No paper has this table (there are no paper figures to compare with). Protocol, losses,
weights and metrics: :mod:`configs.compare._protocol`.

Runtime class: CPU, about 10-20 min per run on a 2-core CPU. Cost:
``python -m experiments.cost --config configs/compare/mnist.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.compare import _protocol

TABLE = _protocol.table("MNIST")


def _table_config() -> ml_collections.ConfigDict:
  return _protocol.config("mnist")


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
