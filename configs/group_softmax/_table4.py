"""Group softmax Table 4 (Caltech-256, SUN-397): the config and table for one dataset.

Protocol (Sec. 4.3): ResNet-50 and VGG-16 trained from scratch; Caltech-256: 60 random
training images per category, the rest for test, three trials; SUN-397: 50 training and
50 test images per category ([40]'s protocol), three trials. Neither dataset is in
TFDS 4.9.10's catalogue: prepare a TFDS builder named 'caltech256' / 'sun397' whose
'train' and 'test' splits are one trial's partition (the data layer has no per-class
subsampling option), and pass its ``--config.dataset.data_dir``. Registry note: our
'caltech256' has 257 labels (the 256 categories and the clutter class).
"""

from __future__ import annotations

import ml_collections

from configs import paper
from configs.group_softmax import _common as gs


def config(dataset: str) -> ml_collections.ConfigDict:
  c = gs.config(dataset)
  c.dataset.train_split, c.dataset.eval_split = "train", "test"
  c.runs = gs.method_runs(("resnet50", "vgg16"))
  return c


def table(label: str, resnet50: dict[str, tuple], vgg16: dict[str, tuple],
          hand_craft: tuple[float, float]) -> paper.Table:
  rows = (*gs.method_rows("resnet50", {m: (v,) for m, v in resnet50.items()}),
          *gs.method_rows("vgg16", {m: (v,) for m, v in vgg16.items()}),
          paper.Row("Hand-craft [32] (Fisher vectors)", None, {gs.ERR.name: hand_craft},
                    note="a hand-crafted Fisher-vector pipeline, not a network: not reproduced"))
  return paper.Table(gs.PAPER, "Table 4", f"{label}: error (%) of eleven losses, ResNet-50 and "
                     "VGG-16 from scratch", columns=(gs.ERR,), rows=rows, trials=gs.TRIALS)
