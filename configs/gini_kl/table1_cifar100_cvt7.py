"""Gini paper Table 1, CvT-7 rows: cross-entropy vs cross-entropy + Gini + KL on CIFAR-100.

Command (GPU; the paper's 5 trials)::

  python -m experiments.reproduce --config configs/gini_kl/table1_cifar100_cvt7.py \\
      --seeds 5 --out results/gini_kl_table1_cvt7.md

Paper (gini_kl_discriminability_loss.txt, Table 1, accuracy %, mean ± std of 5 trials):

  ======================  ==============  ==============
  model                   CIFAR-100       Caltech 101
  ======================  ==============  ==============
  CvT-7 (baseline)        63.34 ± 0.56    53.35 ± 1.26
  CvT-7 (ours)            63.76 ± 0.25    53.79 ± 0.89
  ======================  ==============  ==============

Settings (Sec. 4.2): CvT-7 (stages of 1/2/4 blocks, token embeddings of 32/128/258
filters, 1/2/6 heads), "200 epochs ... mini-batch size to 200 ... AdaMax, with an
initial learning rate of 2e-3" (no schedule is named: constant); the Gini/KL terms on
"the convolutional token embedding layer from the last stage" ('last_conv'),
λ1 = λ2 = 0.5 from epoch 10. CIFAR stem (see disc_jax.models.cvt). Choices:
:mod:`configs.gini_kl._common`.

Cost (``python -m experiments.cost``): XLA counts 99.1 GFLOP per train step (the
config's batch and image size), 230 steps/epoch, 46,000 steps per run: about 5 min per
run on one H100 at the assumed 15 TFLOP/s, 0.84 h on the GPU for 2 runs x 5 seeds
(estimates: no GPU was measured). Not CPU-feasible.
"""

from __future__ import annotations

import ml_collections

from configs import base
from configs.gini_kl import _common

TABLE = _common.table1("CvT-7", baseline=((63.34, 0.56), (53.35, 1.26)),
                       ours=((63.76, 0.25), (53.79, 0.89)))


def _table_config() -> ml_collections.ConfigDict:
  c = _common.cifar100_config()
  c.model.name = "cvt7"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  c.batch_size = 200
  c.num_epochs = 200
  c.optimizer = base.optimizer("adamax", 2e-3)
  c.schedule = ml_collections.ConfigDict({"name": "constant", "kwargs": {}})
  c.runs = _common.runs()
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
