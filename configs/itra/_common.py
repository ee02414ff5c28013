"""Shared settings of the ITRA paper's configs (itra_representation_alignment.txt).

Methods (Sec. 5, "Image classification"): the baseline (cross-entropy), label smoothing
LSR (α = 0.1, Szegedy et al.), center loss (Wen et al.: centers moved by Wen's update
with α = 0.5, loss weight λ) and ITRA-c (eq. 5-6: λ · mean over classes of the MMD
between the class's features in two independent mini-batches, Gaussian kernel with σ
the median pairwise distance, not back-propagated). Features are the last hidden layer
('features'). Metrics: top-1 accuracy and the test cross-entropy.

The training details of every table are in the paper's supplement, which the text we
have does not include; the optimiser, schedule, epochs, batch size and augmentation of
each config are therefore our choices and are stated in its docstring. ITRA's second
mini-batch has the first's size (the paper's Table 3 "batch size" is one number).
"""

from __future__ import annotations

import ml_collections

from configs import base, paper

PAPER = "itra_representation_alignment"
LSR = 0.1
ACC = paper.Column("acc. (%)", "accuracy", scale=100.0, digits=2)
CE = paper.Column("test CE", "cross_entropy", digits=3)


def center(weight: float) -> ml_collections.ConfigDict:
  return base.aux_loss("center", weight, center_update="wen", alpha=0.5)


def itra(weight: float) -> ml_collections.ConfigDict:
  return base.aux_loss("itra", weight, kwargs={"class_conditional": True})


def methods(center_weight: float, itra_weight: float) -> dict[str, dict]:
  """The four rows of Tables 1-2 as partial configs: baseline, lsr, center, itra."""
  return {"baseline": {"label_smoothing": 0.0, "aux_losses": []},
          "lsr": {"label_smoothing": LSR, "aux_losses": []},
          "center": {"label_smoothing": 0.0, "aux_losses": [center(center_weight)]},
          "itra": {"label_smoothing": 0.0, "aux_losses": [itra(itra_weight)]}}


def rows(prefix: str, label: str, figures: dict[str, tuple], lambdas: dict[str, float]
         ) -> tuple[paper.Row, ...]:
  """Rows for one model: ``figures[method] = (acc, ce)``; runs are '<prefix><method>'."""
  names = {"baseline": "Baseline", "lsr": "LSR", "center": "Center", "itra": "ITRA"}
  out = []
  for method, (acc, ce) in figures.items():
    lam = lambdas.get(method)
    text = f"{label} {names[method]}" + (f" (λ={lam:g})" if lam is not None else "")
    out.append(paper.Row(text.strip(), f"{prefix}{method}",
                         {ACC.name: acc, CE.name: ce}))
  return tuple(out)


def sgd_cifar(c: ml_collections.ConfigDict, epochs: int = 200) -> None:
  """Our CIFAR/STL recipe (the paper's is in its supplement): SGD 0.1, momentum 0.9,
  weight decay 5e-4, cosine decay over ``epochs``, batch 128."""
  c.optimizer = base.optimizer("sgd", 0.1, weight_decay=5e-4, momentum=0.9)
  c.schedule = ml_collections.ConfigDict({"name": "cosine", "kwargs": {"per_epoch": False}})
  c.batch_size = 128
  c.eval_batch_size = 500
  c.num_epochs = epochs
