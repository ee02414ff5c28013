"""Beyond the papers: every loss of the library under one protocol on Fashion-MNIST.

Command (CPU-feasible; 10 losses x 5 seeds, see Cost)::

  python -m experiments.reproduce --config configs/compare/fashion_mnist.py \\
      --seeds 5 --out results/compare_fashion_mnist.md \\
      --config.dataset.manual_dir=/work/shared/data/fashion_mnist

No paper has this table (there are no paper figures to compare with). Protocol, losses,
weights and metrics: :mod:`configs.compare._protocol`.

Cost (``python -m experiments.cost``): XLA counts 0.58-1.26 GFLOP per train step (the
config's batch and image size; an ITRA row costs twice its baseline: two
forward/backward batches), 234 steps/epoch, 4,680 steps per run: about 0.2 min per run
on one H100 at the assumed 15 TFLOP/s, 0.13 h on the GPU for 10 runs x 5 seeds
(estimates: no GPU was measured). CPU, measured on this shared 2-core machine while
other jobs ran: 0.12 s/step (cross_entropy), 0.22 s/step (itra_c), i.e. about 0.15 h to
0.29 h per run and 8.2 h for the sweep.
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
