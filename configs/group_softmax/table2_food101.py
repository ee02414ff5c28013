"""Group softmax paper Table 2: eleven methods on Food-101, ResNet-50 and VGG-16.

Command (GPU; the paper's 3 trials; needs Food-101 prepared for TFDS)::

  python -m experiments.reproduce --config configs/group_softmax/table2_food101.py \\
      --seeds 3 --out results/group_softmax_table2.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/group_softmax/table2_food101.py:run=<name> --workdir DIR

The table compares the error (%) of eleven losses with ResNet-50 and VGG-16, trained
from scratch (mean ± std of 3 trials) and fine-tuned from ImageNet
(group_softmax_loss.txt, Table 2); the paper's figures: ``TABLE``.

Runs '<model>_<method>' from scratch (model: resnet50, vgg16; method: softmax,
l_softmax, sigsoftmax, noisy_softmax, virtual_softmax, center, dropout_0p2, dropout_0p5,
adv_dropout, type1, type2) and '<model>_<method>_ft' for the fine-tune columns: each
starts (``init_from``) from Table 3's ImageNet '<model>_softmax' run, seed 0, with a
fresh 101-way head, so run configs/group_softmax/table3_imagenet.py first (ImageNet
prepared for TFDS). The paper gives single fine-tune figures (no std). Settings and
choices (our 90-epoch scratch and 30-epoch fine-tune schedules):
:mod:`configs.group_softmax._common`.

Runtime class: GPU-sized, hours per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/group_softmax/table2_food101.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.group_softmax import _common as gs

# method -> ((scratch mean, std), fine-tune error) of the paper, per network.
_FIGURES = {
    "resnet50": {
        "softmax": ((19.67, 0.48), 12.55), "l_softmax": ((18.81, 0.83), 12.48),
        "sigsoftmax": ((21.12, 0.60), 13.09), "noisy_softmax": ((18.64, 0.21), 12.61),
        "virtual_softmax": ((18.25, 0.32), 15.49), "center": ((17.98, 0.09), 12.95),
        "dropout_0p2": ((18.77, 0.68), 12.49), "dropout_0p5": ((18.96, 0.42), 12.53),
        "adv_dropout": ((19.31, 0.94), 12.30), "type1": ((18.23, 0.27), 12.28),
        "type2": ((16.10, 0.29), 11.88)},
    "vgg16": {
        "softmax": ((17.86, 0.22), 13.09), "l_softmax": ((17.14, 0.26), 12.01),
        "sigsoftmax": ((18.15, 0.14), 13.78), "noisy_softmax": ((17.49, 0.53), 12.96),
        "virtual_softmax": ((20.78, 2.44), 16.80), "center": ((16.26, 0.41), 13.35),
        "dropout_0p2": ((17.84, 0.35), 13.28), "dropout_0p5": ((19.15, 0.96), 12.92),
        "adv_dropout": ((18.39, 0.45), 12.41), "type1": ((16.62, 0.12), 12.16),
        "type2": ((15.33, 0.22), 11.78)},
}


def _rows() -> tuple[paper.Row, ...]:
  rows = []
  for prefix, figures in _FIGURES.items():
    rows += gs.method_rows(prefix, {m: (f[0],) for m, f in figures.items()}, (gs.SCRATCH_ERR,))
  for prefix, figures in _FIGURES.items():
    rows += gs.method_rows(prefix, {m: (f[1],) for m, f in figures.items()}, (gs.FINE,),
                           finetune=True)
  return tuple(rows)


TABLE = paper.Table(
    gs.PAPER, "Table 2", "Food-101: error (%) of eleven losses, ResNet-50 and VGG-16, from "
    "scratch and fine-tuned from ImageNet", columns=(gs.SCRATCH_ERR, gs.FINE), rows=_rows(),
    trials=gs.TRIALS)


def _table_config() -> ml_collections.ConfigDict:
  c = gs.config("food101")
  c.dataset.eval_split = "validation"
  c.runs = gs.method_runs(("resnet50", "vgg16"), finetune=True)
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
