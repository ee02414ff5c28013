"""Group softmax paper Table 3: ImageNet, (a) number of classes and (b) three networks.

Command (GPU cluster-scale; needs ImageNet prepared for TFDS)::

  python -m experiments.reproduce --config configs/group_softmax/table3_imagenet.py \\
      --seeds 1 --out results/group_softmax_table3.md

One run (``RUNS`` lists the names)::

  python -m experiments.train \\
      --config=configs/group_softmax/table3_imagenet.py:run=<name> --workdir DIR

The table compares the error (%) of softmax, type-I and type-II (a) with ResNet-50 on
100, 200, 500 and 1000 classes and (b) with ResNet-50, ResNeXt-50 and VGG-16 on full
ImageNet (group_softmax_loss.txt, Table 3); the paper's figures: ``TABLE``.

Runs '<model>_{softmax,type1,type2}' for resnet50, resnext50 (32x4d) and vgg16; (a)'s
1000-class column is the ResNet-50 runs of (b) (its figures agree with (b)'s up to
rounding). (a)'s C = 100/200/500 columns ("randomly picking up the sub-set of C
categories") are runs 'resnet50_{softmax,type1,type2}_c<C>': ResNet-50 on the C-class
subset ``dataset.class_subset = {'num_classes': C, 'seed': 0}`` of both splits, labels
renumbered 0..C-1 (:mod:`disc_jax.data.class_subset`; with one seed the subsets are
nested, 100 ⊂ 200 ⊂ 500). Type-I uses G = {1, 2}, type-II G = {1, 2, 4}. Settings and
choices (including our 90-epoch schedule): :mod:`configs.group_softmax._common`.
ImageNet itself ('imagenet2012', train/validation) must be prepared for TFDS on the
machine (``--config.dataset.data_dir``).

Runtime class: GPU cluster-scale, days per full-ImageNet run on one GPU. Cost:
``python -m experiments.cost --config configs/group_softmax/table3_imagenet.py``.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.group_softmax import _common as gs

_E = gs.ERR.name
_CLASSES = (100, 200, 500)
SUBSET_SEED = 0   # one fixed draw of classes for every method and trial
_METHODS = ("softmax", "type1", "type2")
_A = {"softmax": (15.4, 18.1, 20.2, 23.5), "type1": (14.6, 16.3, 19.0, 23.3),
      "type2": (13.0, 15.6, 19.1, 24.1)}
_B = {"resnet50": (23.45, 23.31, 24.13), "resnext50": (22.42, 22.09, 22.16),
      "vgg16": (25.04, 24.26, 24.65)}


def _rows() -> tuple[paper.Row, ...]:
  rows = []
  for m in _METHODS:
    for classes, value in zip((*_CLASSES, 1000), _A[m]):
      run = f"resnet50_{m}" + ("" if classes == 1000 else f"_c{classes}")
      rows.append(paper.Row(f"(a) {gs.METHODS[m][0]}, {classes} classes", run, {_E: value}))
  for prefix, values in _B.items():
    rows += gs.method_rows(prefix, {m: (v,) for m, v in zip(_METHODS, values)})
  return tuple(rows)


TABLE = paper.Table(gs.PAPER, "Table 3", "ImageNet: error (%) by number of classes (ResNet-50) "
                    "and by network", columns=(gs.ERR,), rows=_rows())


def _table_config() -> ml_collections.ConfigDict:
  c = gs.config("imagenet2012")
  c.dataset.eval_split = "validation"
  c.eval_batch_size = 500
  runs = gs.method_runs(("resnet50", "resnext50", "vgg16"), _METHODS).to_dict()
  for m in _METHODS:
    for classes in _CLASSES:
      runs[f"resnet50_{m}_c{classes}"] = {
          **runs[f"resnet50_{m}"],
          "dataset": {"class_subset": {"num_classes": classes, "seed": SUBSET_SEED}}}
  c.runs = ml_collections.ConfigDict(runs)
  return c


get_config = base.variants(_table_config)
RUNS = base.run_names(_table_config)
