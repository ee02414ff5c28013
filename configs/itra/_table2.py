"""ITRA Table 2 (CIFAR-10 / STL-10 / CIFAR-100): config and table for one dataset.

Rows: ResNet-18, VGG-13 and MobileNetV2 (CIFAR variants: 3x3 stems, VGG's global-pool
classifier) x {baseline, LSR, center, ITRA-c}, runs named '<model>_<method>'.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.itra import _common as itra

MODELS = {  # run prefix -> (label, model name, model kwargs)
    "resnet18": ("Resnet18", "resnet18", {"stem": "cifar"}),
    "vgg13": ("VGG13", "vgg13", {"classifier": "cifar"}),
    "mobilenet_v2": ("MobileV2", "mobilenet_v2", {"stem": "cifar"}),
}


def config(dataset: str, augment: tuple[str, ...],
           lambdas: dict[str, tuple[float, float]]) -> ml_collections.ConfigDict:
  """``lambdas[model] = (center λ, ITRA λ)`` as the paper's Table 2 lists them."""
  c = base.get_config()
  c.dataset.name = dataset
  c.augment = augment
  c.model.name = "resnet18"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  itra.sgd_cifar(c)
  runs = {}
  for prefix, (_, name, kwargs) in MODELS.items():
    for method, partial in itra.methods(*lambdas[prefix]).items():
      runs[f"{prefix}_{method}"] = {"model": {"name": name, "kwargs": dict(kwargs)}, **partial}
  c.runs = ml_collections.ConfigDict(runs)
  return c


def table(label: str, figures: dict[str, dict[str, tuple]],
          lambdas: dict[str, tuple[float, float]]) -> paper.Table:
  out = []
  for prefix, (model_label, _, _) in MODELS.items():
    center, itra_w = lambdas[prefix]
    out += itra.rows(f"{prefix}_", model_label, figures[prefix],
                     {"lsr": itra.LSR, "center": center, "itra": itra_w})
  return paper.Table(itra.PAPER, "Table 2", f"{label}: accuracy (%) and test cross-entropy",
                     columns=(itra.ACC, itra.CE), rows=tuple(out),
                     notes="Recipe (our choice; the paper's is in its supplement): SGD 0.1, "
                           "momentum 0.9, weight decay 5e-4, cosine decay, batch 128, 200 "
                           "epochs, pad-and-crop + flip.")
