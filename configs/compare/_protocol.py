"""One protocol, every loss: the comparison no paper has ("Beyond the papers").

Every run trains the same backbone on the same data for the same budget; only the
objective changes. Protocol: LeNet-5 (84-d features, the σ²R paper's FMNIST network),
Adam lr 1e-3, batch 256 with class-balanced batches (at least 8 per class: σ²R needs
n + 1 = 8 same-class points; used for every loss so the data order is identical
across losses), 20 epochs at a constant rate, no augmentation, 5 seeds.

Losses, each at the weight its own paper uses (or, where the paper gives none for such
a setting, the choice stated):

=====================  ====================================================================
run                    objective
=====================  ====================================================================
cross_entropy          softmax cross-entropy
label_smoothing        cross-entropy on targets smoothed with α = 0.1 (ITRA's LSR)
center                 + 0.1 center loss, Wen et al.'s center update (α = 0.5): ITRA's λ
snnl                   + 0.01 soft nearest neighbour loss, T = 1 (σ²R paper's λ, Sec. 5.2)
intra_class_variance   + 0.05 intra-class variance with learned centroids (its best λ)
sigma2r                + 0.01 σ²R (n = 7, Z = 40; centers/growth by a second Adam, lr 0.1)
itra_c                 + 0.6 ITRA-c (class-conditional MMD, median bandwidth; FMNIST λ)
gini_kl                + 0.5 Gini + 0.5 KL on the last conv maps from epoch 1 (the paper's
                       10 of 200 epochs scaled to 20)
group_softmax_1        group softmax type I, G = {1, 2} (replaces the cross-entropy)
group_softmax_2        group softmax type II, G = {1, 2, 4}
=====================  ====================================================================

Reported (final metrics of each run): test accuracy, test cross-entropy, nearest-centroid
accuracy (test features vs. the class means of 10,000 training features), the mean
per-class intra-class std of the test features (σ²R eq. 12) and the Fisher score (the
std depends on the feature scale, which the losses change; the Fisher score does not),
retrieval of the test features against those 10,000 training features (MAP@R and
precision@1, Euclidean: Musgrave et al.'s metric-learning protocol), the NMI of a
k-means clustering of the test features (k = 10) with their labels, and the median
train-step time relative to cross-entropy's (``median_step_s``, read from each run's
metrics.jsonl: no compile, evaluation or pause in it; an ITRA step holds two batches).
"""

from __future__ import annotations

import ml_collections

from configs import base, paper

RUNS = {
    "cross_entropy": {},
    "label_smoothing": {"label_smoothing": 0.1},
    "center": {"aux_losses": [base.aux_loss("center", 0.1, center_update="wen", alpha=0.5)]},
    "snnl": {"aux_losses": [base.aux_loss("snnl", 0.01, kwargs={"temperature": 1.0})]},
    "intra_class_variance": {"aux_losses": [base.aux_loss("intra_class_variance", 0.05)]},
    "sigma2r": {"aux_losses": [base.aux_loss(
        "sigma2r", 0.01, kwargs={"n_neighbors": 7, "z": 40.0},
        param_optimizer=base.optimizer("adam", 0.1))]},
    "itra_c": {"aux_losses": [base.aux_loss("itra", 0.6, kwargs={"class_conditional": True})]},
    "gini_kl": {"aux_losses": [base.aux_loss("gini", 0.5, input="last_conv", start_epoch=2),
                               base.aux_loss("kl", 0.5, input="last_conv", start_epoch=2)]},
    "group_softmax_1": {"classification_loss": {"name": "group_softmax", "kwargs": {
        "loss_type": "I", "groups": (1, 2)}}},
    "group_softmax_2": {"classification_loss": {"name": "group_softmax", "kwargs": {
        "loss_type": "II", "groups": (1, 2, 4)}}},
}
LABELS = {"cross_entropy": "cross-entropy", "label_smoothing": "label smoothing 0.1",
          "center": "center loss", "snnl": "soft nearest neighbour",
          "intra_class_variance": "intra-class variance", "sigma2r": "σ²R",
          "itra_c": "ITRA-c", "gini_kl": "Gini + KL", "group_softmax_1": "group softmax I",
          "group_softmax_2": "group softmax II"}

COLUMNS = (
    paper.Column("accuracy (%)", "accuracy", scale=100.0),
    paper.Column("test CE", "cross_entropy", digits=3),
    paper.Column("nearest-centroid acc. (%)", "nearest_centroid_accuracy/train", scale=100.0),
    paper.Column("intra-class std", "intra_class_std", digits=3),
    paper.Column("Fisher score", "fisher_score", digits=3),
    paper.Column("MAP@R (%)", "retrieval/map_at_r", scale=100.0),
    paper.Column("precision@1 (%)", "retrieval/precision_at_1", scale=100.0),
    paper.Column("NMI (%)", "clustering/nmi", scale=100.0),
    paper.Column("step time / CE", "median_step_s", relative_to="cross_entropy"),
)


def config(dataset: str) -> ml_collections.ConfigDict:
  c = base.get_config()
  c.dataset.name = dataset
  c.dataset.sampler = "balanced"
  c.dataset.min_per_class = 8
  c.model.name = "lenet5"
  c.model.kwargs = ml_collections.ConfigDict({})
  c.batch_size = 256
  c.eval_batch_size = 1000
  c.num_epochs = 20
  c.optimizer = base.optimizer("adam", 1e-3)
  c.schedule = ml_collections.ConfigDict({"name": "constant", "kwargs": {}})
  c.final_eval.max_train_examples = 10_000
  c.runs = ml_collections.ConfigDict(RUNS)
  return c


def table(label: str) -> paper.Table:
  return paper.Table("none (beyond the papers)", "Comparison",
                     f"{label}: every loss under one protocol (LeNet-5, Adam 1e-3, batch 256, "
                     "the same epochs for every loss)", columns=COLUMNS,
                     rows=tuple(paper.Row(LABELS[r], r, {}) for r in RUNS), trials=None,
                     notes="No paper reports this table: the 'paper' cells are empty.")
