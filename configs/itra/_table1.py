"""ITRA Table 1 (KMNIST / Fashion-MNIST): the config and table for one dataset."""

from __future__ import annotations

import ml_collections

from configs import base, paper
from configs.itra import _common as itra


def config(dataset: str, center_weight: float, itra_weight: float) -> ml_collections.ConfigDict:
  c = base.get_config()
  c.dataset.name = dataset
  c.model.name = "lenet5"
  c.model.kwargs = ml_collections.ConfigDict({})
  c.batch_size = 128
  c.eval_batch_size = 1000
  c.num_epochs = 20
  c.optimizer = base.optimizer("adam", 1e-3)
  c.schedule = ml_collections.ConfigDict({"name": "constant", "kwargs": {}})
  c.final_eval.max_train_examples = 10_000
  c.runs = ml_collections.ConfigDict(itra.methods(center_weight, itra_weight))
  return c


def table(label: str, figures: dict[str, tuple], lambdas: dict[str, float]) -> paper.Table:
  return paper.Table(itra.PAPER, "Table 1", f"{label}: accuracy (%) and test cross-entropy",
                     columns=(itra.ACC, itra.CE), rows=itra.rows("", "", figures, lambdas),
                     notes="Model and training recipe are our choices (the paper's are in its "
                           "supplement): LeNet-5, Adam 1e-3, batch 128, 20 epochs, no "
                           "augmentation.")
