"""Group softmax paper Table 1: ablation on Food-101 with ResNet-50 (groups; grouping type).

Command (GPU; the paper's 3 trials; needs Food-101 prepared for TFDS)::

  python -m experiments.reproduce --config configs/group_softmax/table1_food101_resnet50.py \\
      --seeds 3 --out results/group_softmax_table1.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/group_softmax/table1_food101_resnet50.py:run=<name> --workdir DIR

The table compares the error (%, mean ± std of 3 trials) of softmax and group softmax
(a) by number of groups and type and (b) by grouping (discriminative, random,
pre-fixed) (group_softmax_loss.txt, Table 1); the paper's figures: ``TABLE``.

Runs: 'softmax', 'type{1,2}_g{12,124,1248}' (discriminative grouping) and
'type1_g12_{random,fixed}', 'type2_g124_{random,fixed}'. Settings and choices (ResNet-50
from scratch at 224x224, SGD 0.1 / momentum 0.9 / weight decay 1e-4, batch 256, our 90
epoch schedule): :mod:`configs.group_softmax._common`.

Runtime class: GPU-sized, hours per run on one GPU (not CPU-feasible). Cost:
``python -m experiments.cost --config configs/group_softmax/table1_food101_resnet50.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.group_softmax import _common as gs

_E = gs.ERR.name
TABLE = paper.Table(
    gs.PAPER, "Table 1", "Food-101, ResNet-50: error (%) by groups (a) and grouping (b)",
    columns=(gs.ERR,),
    rows=(paper.Row("(a) Softmax, G={1}", "softmax", {_E: (19.67, 0.48)}),
          paper.Row("(a) Type-I, G={1,2}", "type1_g12", {_E: (18.23, 0.27)}),
          paper.Row("(a) Type-I, G={1,2,4}", "type1_g124", {_E: (18.43, 0.31)}),
          paper.Row("(a) Type-II, G={1,2}", "type2_g12", {_E: (17.45, 0.69)}),
          paper.Row("(a) Type-II, G={1,2,4}", "type2_g124", {_E: (16.10, 0.29)}),
          paper.Row("(a) Type-II, G={1,2,4,8}", "type2_g1248", {_E: (16.23, 0.25)}),
          paper.Row("(b) Type-I G={1,2}, discriminative", "type1_g12", {_E: (18.23, 0.27)}),
          paper.Row("(b) Type-I G={1,2}, random", "type1_g12_random", {_E: (19.63, 0.50)}),
          paper.Row("(b) Type-I G={1,2}, pre-fixed", "type1_g12_fixed", {_E: (19.53, 1.28)}),
          paper.Row("(b) Type-II G={1,2,4}, discriminative", "type2_g124", {_E: (16.10, 0.29)}),
          paper.Row("(b) Type-II G={1,2,4}, random", "type2_g124_random", {_E: (17.70, 0.69)}),
          paper.Row("(b) Type-II G={1,2,4}, pre-fixed", "type2_g124_fixed", {_E: (18.18, 0.96)})),
    trials=gs.TRIALS)


def _table_config() -> ml_collections.ConfigDict:
  c = gs.config("food101")
  c.dataset.eval_split = "validation"   # TFDS food101: 'train' 75,750 / 'validation' 25,250
  runs = {"softmax": gs.cls("softmax_ce")}
  for loss_type, groups in (("I", (1, 2)), ("I", (1, 2, 4)), ("II", (1, 2)), ("II", (1, 2, 4)),
                            ("II", (1, 2, 4, 8))):
    name = f"type{len(loss_type)}_g{''.join(map(str, groups))}"
    runs[name] = gs.group_softmax(loss_type, groups)
  for grouping in ("random", "fixed"):
    runs[f"type1_g12_{grouping}"] = gs.group_softmax("I", (1, 2), grouping)
    runs[f"type2_g124_{grouping}"] = gs.group_softmax("II", (1, 2, 4), grouping)
  c.runs = ml_collections.ConfigDict(runs)
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
