"""Shared settings of the σ²R paper's configs (sigma2r_loss.txt, Sec. 3-5).

Protocol (Sec. 5.1-5.2): two Adam optimisers, one for the network and one (lr 0.1) for
the loss parameters (σ²R's centers and growth rates w_K, and the center loss's
centers), all initialised from N(0, 1); a cosine-like learning-rate decay "at each
epoch" (``cosine`` with ``per_epoch=True``); λ = 0.01 for center loss and σ²R
(eq. 11); σ²R with n = 7 neighbours and Z = 40; balanced batches ("each batch will have
about 25 instances per class"), here with at least n + 1 = 8 per class; augmentation by
"random cropping, random rotation, and vertical/horizontal flipping" (4-pixel
pad-and-crop, ±15°, both flips: the paper gives no amounts).

Choices where the paper is silent:
* the soft nearest neighbour (SNNL) rows use T = 1 and weight 0.01, the λ the paper
  sets "for both loss functions" it names (center loss and σ²R);
* the paper fixes the data order across runs and varies only the initialisation; here
  one seed drives both (run s of every method sees the same order).
"""

from __future__ import annotations

import ml_collections

from configs import base, paper

PAPER = "sigma2r_loss"
LAMBDA = 0.01
N_NEIGHBORS = 7
Z = 40.0
SECOND_ADAM = base.optimizer("adam", 0.1)
AUGMENT = ("crop:4", "rotate:15", "flip", "vflip")


def center() -> ml_collections.ConfigDict:
  return base.aux_loss("center", LAMBDA, param_optimizer=SECOND_ADAM)


def sigma2r() -> ml_collections.ConfigDict:
  return base.aux_loss("sigma2r", LAMBDA, kwargs={"n_neighbors": N_NEIGHBORS, "z": Z},
                       param_optimizer=SECOND_ADAM)


def center_matched() -> ml_collections.ConfigDict:
  """The center loss at σ²R's effective weight: once K -> ε, β = Z/2 for every sample, so
  σ²R at λ pulls like λ Z/2 mean ||x - C||^2, the center loss (with its 1/2) at λ Z."""
  return base.aux_loss("center", LAMBDA * Z, param_optimizer=SECOND_ADAM)


def snnl() -> ml_collections.ConfigDict:
  return base.aux_loss("snnl", LAMBDA, kwargs={"temperature": 1.0})


def runs(*, with_snnl: bool = True, with_matched: bool = False) -> ml_collections.ConfigDict:
  out = {"cross_entropy": {"aux_losses": []}, "center_loss": {"aux_losses": [center()]},
         "sigma2r": {"aux_losses": [sigma2r()]}}
  if with_snnl:
    out["snnl"] = {"aux_losses": [snnl()]}
  if with_matched:
    out["center_loss_matched"] = {"aux_losses": [center_matched()]}
  return ml_collections.ConfigDict(out)


def config(dataset: str, model: str, **model_kwargs) -> ml_collections.ConfigDict:
  c = base.get_config()
  c.dataset.name = dataset
  c.dataset.sampler = "balanced"
  c.dataset.min_per_class = N_NEIGHBORS + 1
  c.augment = AUGMENT
  c.model.name = model
  c.model.kwargs = ml_collections.ConfigDict(model_kwargs)
  c.batch_size = 256
  c.eval_batch_size = 500
  c.schedule = ml_collections.ConfigDict({"name": "cosine", "kwargs": {"per_epoch": True}})
  return c


# Columns. '{acc}' / '{cls}' select per row: summary rows set acc='accuracy', cls='' (the
# NaN-mean over classes); per-class rows set cls='/class_<k>' and leave the accuracy blank.
# The per-class keys are the final metrics' '[train/]intra_class_std/class_<k>'
# (disc_jax.train.evaluate, reported for up to 100 classes).
ACC = paper.Column("accuracy (%)", "{acc}", scale=100.0, digits=2)
TRAIN_STD = paper.Column("train I_c (eq. 12)", "train/intra_class_std{cls}", digits=4)
TEST_STD = paper.Column("test I_c (eq. 12)", "intra_class_std{cls}", digits=4)
AVG = paper.Column("avg acc. (%)", "{acc}", scale=100.0, digits=3)
MAX = paper.Column("max acc. (%)", "{acc}", scale=100.0, digits=2, stat="max")


def summary_row(label: str, run: str, figures: dict | None = None) -> paper.Row:
  return paper.Row(label, run, figures or {}, params={"acc": "accuracy", "cls": ""})


def class_rows(label: str, run: str, columns: tuple[paper.Column, ...],
               figures: tuple[tuple[float, ...], ...]) -> tuple[paper.Row, ...]:
  """One row per class: ``figures[k]`` holds class k's figures for ``columns``."""
  return tuple(paper.Row(f"{label}, class {k}", run,
                         {col.name: v for col, v in zip(columns, fig)},
                         params={"cls": f"/class_{k}"}) for k, fig in enumerate(figures))
