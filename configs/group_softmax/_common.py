"""Shared settings of the group softmax paper's configs (group_softmax_loss.txt, Sec. 4).

Recipe (Sec. 4): "SGD with the batch size of 256, the momentum of 0.9, the weight decay
of 0.0001, and the initial learning rate of 0.1 which is divided by 10 at some epochs;
the details are shown in the supplementary material" -- which we do not have. Our
choice: 90 epochs with the rate divided by 10 at epochs 30 and 60 (the standard
ImageNet ResNet schedule). Networks: ResNet-50 (D = 2048) and VGG-16 with batch norm
(D = 4096; "backbone CNNs contain no Dropout", so its classifier's dropout is 0),
trained from scratch at 224x224 with horizontal flips and 28-pixel pad-and-crop (the
data layer has no random-resized crop). Metric: top-1 error (%) = 100 - accuracy.

The methods (Table 2/4 rows; their losses are in disc_jax.losses):
group softmax type I with G = {1, 2} and type II with G = {1, 2, 4} (Sec. 4.1: "we apply
G = {1, 2} for type-I and G = {1, 2, 4} for type-II in the following experiments"),
discriminative grouping; the softmax variants with their reference settings
(L-Softmax margin 2 with its annealing; Noisy Softmax α = 0.1; SigSoftmax, Virtual
Softmax); dropout on the penultimate features at p = 0.2 / 0.5; adversarial dropout at
p = 0.005 (Sec. 3.2); and center loss, whose weight the paper does not give: Wen et
al.'s λ = 0.003 with their center update (α = 0.5).

Fine-tuning (Table 2's fine-tune columns, Sec. 4.3: "CNNs are first pre-trained on
ImageNet by the standard softmax loss and then the identical pre-trained CNNs are
fine-tuned to Food-101 by the methods"): runs '<model>_<method>_ft' start from the
params and BN statistics of Table 3's '<model>_softmax' ImageNet run, seed 0
(``init_from`` = :data:`PRETRAINED`, so train that run first: needs ImageNet prepared
for TFDS), with a fresh 101-way classifier (``init_from_skip=['head']``) and fresh
optimizer state; every seed of every method fine-tunes the same pre-trained weights.
The fine-tuning schedule is in the missing supplement too; ours: SGD as above at lr
0.01 (a tenth of the from-scratch rate), 30 epochs, divided by 10 at epochs 10 and 20.
"""

from __future__ import annotations

import ml_collections

from configs import base, paper

PAPER = "group_softmax_loss"
TRIALS = 3
ERR = paper.Column("error (%)", "accuracy", scale=-100.0, offset=100.0)
# Table 2 has from-scratch and fine-tune rows: each column applies only to its own rows
# (the key's empty {field} exists only in those rows' params, see method_rows).
SCRATCH_ERR = paper.Column("error (%)", "{scratch}accuracy", scale=-100.0, offset=100.0)
FINE = paper.Column("fine-tune error (%)", "{fine_tune}accuracy", scale=-100.0, offset=100.0)
# Fine-tuning (Table 2's fine-tune columns) starts from Table 3's ImageNet softmax run of the
# same network, seed 0, in reproduce's default sweep folder (run from the repository root).
PRETRAINED = "workdir/sweeps/group_softmax/table3_imagenet/{prefix}_softmax/seed_0"
FINETUNE_LR = 0.01
FINETUNE_EPOCHS = 30
FINETUNE_BOUNDARIES = (10, 20)
MODELS = {  # run prefix -> (label, model name, model kwargs)
    "resnet50": ("ResNet50", "resnet50", {"stem": "imagenet"}),
    "vgg16": ("VGG16", "vgg16", {"classifier": "imagenet", "dropout_rate": 0.0}),
    "resnext50": ("ResNeXt50", "resnext50_32x4d", {"stem": "imagenet"}),
}


def cls(name: str, **kwargs) -> dict:
  return {"classification_loss": {"name": name, "kwargs": kwargs}, "aux_losses": []}


def group_softmax(loss_type: str, groups: tuple[int, ...], grouping: str = "discriminative"
                  ) -> dict:
  return cls("group_softmax", loss_type=loss_type, groups=tuple(groups), grouping=grouping)


TYPE_I = group_softmax("I", (1, 2))
TYPE_II = group_softmax("II", (1, 2, 4))

# Table 2/4 methods: run suffix -> (the paper's row label, partial config).
METHODS = {
    "softmax": ("Softmax", cls("softmax_ce")),
    "l_softmax": ("L-Softmax", cls("l_softmax")),
    "sigsoftmax": ("SigSoftmax", cls("sigsoftmax")),
    "noisy_softmax": ("Noisy Softmax", cls("noisy_softmax", alpha=0.1)),
    "virtual_softmax": ("Virtual Softmax", cls("virtual_softmax")),
    "center": ("CenterLoss", {**cls("softmax_ce"), "aux_losses": [
        base.aux_loss("center", 0.003, center_update="wen", alpha=0.5)]}),
    "dropout_0p2": ("DropOut (p=0.2)", cls("feature_dropout", rate=0.2)),
    "dropout_0p5": ("DropOut (p=0.5)", cls("feature_dropout", rate=0.5)),
    "adv_dropout": ("Adv. DropOut", cls("adversarial_dropout", delta=0.005)),
    "type1": ("Ours, Type-I", TYPE_I),
    "type2": ("Ours, Type-II", TYPE_II),
}


def config(dataset: str) -> ml_collections.ConfigDict:
  c = base.get_config()
  c.dataset.name = dataset
  c.augment = ("crop:28", "flip")
  c.model.name = "resnet50"
  c.model.kwargs = ml_collections.ConfigDict({"stem": "imagenet"})
  c.batch_size = 256
  c.eval_batch_size = 250
  c.num_epochs = 90
  c.optimizer = base.optimizer("sgd", 0.1, weight_decay=1e-4, momentum=0.9)
  c.schedule = ml_collections.ConfigDict({"name": "piecewise_constant", "kwargs": {
      "boundaries_epochs": (30, 60), "scale": 0.1}})
  c.final_eval.max_train_examples = 10_000
  c.final_eval.plot = False
  return c


def model_partial(prefix: str) -> dict:
  _, name, kwargs = MODELS[prefix]
  return {"model": {"name": name, "kwargs": dict(kwargs)}}


def finetune_partial(prefix: str) -> dict:
  """Fine-tuning from the ImageNet softmax model of ``prefix`` (see module docstring)."""
  return {"init_from": PRETRAINED.format(prefix=prefix), "init_from_skip": ["head"],
          "num_epochs": FINETUNE_EPOCHS, "optimizer": {"learning_rate": FINETUNE_LR},
          "schedule": {"name": "piecewise_constant", "kwargs": {
              "boundaries_epochs": FINETUNE_BOUNDARIES, "scale": 0.1}}}


def method_runs(prefixes: tuple[str, ...], methods: tuple[str, ...] = tuple(METHODS), *,
                finetune: bool = False) -> ml_collections.ConfigDict:
  """'<model>_<method>' runs: every model of ``prefixes`` with every method; with
  ``finetune`` also '<model>_<method>_ft' (from the ImageNet model, :func:`finetune_partial`)."""
  runs = {f"{p}_{m}": {**model_partial(p), **METHODS[m][1]} for p in prefixes for m in methods}
  if finetune:
    runs.update({f"{p}_{m}_ft": {**model_partial(p), **METHODS[m][1], **finetune_partial(p)}
                 for p in prefixes for m in methods})
  return ml_collections.ConfigDict(runs)


def method_rows(prefix: str, figures: dict[str, tuple], columns: tuple[paper.Column, ...] = (ERR,),
                *, finetune: bool = False) -> tuple[paper.Row, ...]:
  """One row per method of one model: ``figures[method]`` = figures for ``columns``
  (runs '<model>_<method>', or '<model>_<method>_ft' with ``finetune``)."""
  label = MODELS[prefix][0]
  suffix, note = ("_ft", " (fine-tune)") if finetune else ("", "")
  params = {"fine_tune" if finetune else "scratch": ""}
  return tuple(paper.Row(f"{label}: {METHODS[m][0]}{note}", f"{prefix}_{m}{suffix}",
                         {col.name: v for col, v in zip(columns, fig)}, params=params)
               for m, fig in figures.items())
