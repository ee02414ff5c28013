"""Shared settings of the intra-class variance paper (intra_class_variance_hadamard.txt).

Protocol (Sec. 3.3, 4.1): the embedding CNN of Sec. 3.3 (``embedding_cnn``) with a
bottleneck embedding of n = 2 or 4 dims, "normalized or not-normalized"; Adam lr 0.001,
mini-batch 256, 20 epochs, no learning-rate drop; loss ``L_0 + λ L_var`` (eq. 5) with
λ ∈ {1, 0.5, 0.05}, the class centroids C being parameters of the Hadamard layer
trained by the same Adam (``intra_class_variance`` aux loss on 'features', centroids
initialised from N(0, 1)). Evaluation (Sec. 4.2) on the test set: (a) max score
(Table 2) and (b) nearest centroid (Table 1): the learned centroids for the
intra-class-variance rows, and for cross-entropy (which has none) the class means of
the training embeddings (Table 1's caption: "centroid (class mean)") over all 60,000
training images.

The embedding CNN's layout is our choice: the paper's figure with it is not in the text
we have (see disc_jax.models.embedding_cnn). We use its light variant, ``MODEL_KWARGS``:
conv 3x3x16 -> P_2 -> conv 3x3x32 -> P_2 -> Dense 256 -> bottleneck (``widths=(16, 32),
convs_per_stage=1``, 407,312 params at n = 2), for the CPU budget: the module's default
(two convs per stage, widths 32/64) needs an order of magnitude more compute per train
step. Both are networks of the elements the paper names (convs with BN + ReLU, P_2,
F_br, bottleneck); ``MODEL_KWARGS = {}`` restores the default. The paper reports one run
per cell (no trials named).
"""

from __future__ import annotations

import ml_collections

from configs import base, paper

PAPER = "intra_class_variance_hadamard"
LAMBDAS = (1.0, 0.5, 0.05)
LAYOUT = ((2, False), (4, False), (2, True), (4, True))   # the paper's column order

# The light embedding CNN (see the module docstring): the paper's widths are unknown.
MODEL_KWARGS = {"widths": (16, 32), "convs_per_stage": 1}

NC = paper.Column("nearest centroid", "nearest_centroid_accuracy/{centroids}", digits=3)
MAX = paper.Column("max score", "accuracy", digits=3)


def run_name(lam: float | None, dim: int, normalize: bool) -> str:
  """'ce_2d', 'icv1_4d_norm', 'icv0p05_2d', ... (ConfigDict keys cannot hold dots).

  >>> run_name(0.05, 4, True)
  'icv0p05_4d_norm'
  """
  head = "ce" if lam is None else "icv" + f"{lam:g}".replace(".", "p")
  return f"{head}_{dim}d{'_norm' if normalize else ''}"


def runs() -> ml_collections.ConfigDict:
  """Cross-entropy and λ ∈ LAMBDAS, for each (dim, normalised) of LAYOUT: 16 runs."""
  out = {}
  for lam in (None, *LAMBDAS):
    for dim, normalize in LAYOUT:
      aux = [] if lam is None else [base.aux_loss("intra_class_variance", lam)]
      out[run_name(lam, dim, normalize)] = {
          "model": {"kwargs": {"embedding_dim": dim, "normalize": normalize,
                               **MODEL_KWARGS}},
          "aux_losses": aux}
  return ml_collections.ConfigDict(out)


def config(dataset: str) -> ml_collections.ConfigDict:
  c = base.get_config()
  c.dataset.name = dataset
  c.model.name = "embedding_cnn"
  c.model.kwargs = ml_collections.ConfigDict({"embedding_dim": 2, "normalize": False,
                                              **MODEL_KWARGS})
  c.batch_size = 256
  c.eval_batch_size = 1000
  c.num_epochs = 20
  c.optimizer = base.optimizer("adam", 1e-3)
  c.schedule = ml_collections.ConfigDict({"name": "constant", "kwargs": {}})
  c.final_eval.max_train_examples = 60_000
  c.runs = runs()
  return c


def table(dataset_label: str, nearest: dict, max_score: dict) -> paper.Table:
  """Tables 1-2 for one dataset; ``nearest``/``max_score`` map None (cross-entropy) or λ
  to the four figures in LAYOUT order."""
  rows = []
  for lam in (None, *LAMBDAS):
    for k, (dim, normalize) in enumerate(LAYOUT):
      label = ("cross entropy" if lam is None else f"intra-class variance λ={lam:g}") + \
          f", {dim}-D{', normalised' if normalize else ''}"
      centroids = "train" if lam is None else "intra_class_variance"
      rows.append(paper.Row(label, run_name(lam, dim, normalize),
                            {NC.name: nearest[lam][k], MAX.name: max_score[lam][k]},
                            params={"centroids": centroids}))
  return paper.Table(PAPER, "Tables 1 and 2", f"{dataset_label}: nearest-centroid (Table 1) and "
                     "max-score (Table 2) test accuracy", columns=(NC, MAX), rows=tuple(rows),
                     notes="Nearest centroid: learned centroids (Hadamard layer) for the "
                           "intra-class-variance rows, training-set class means for cross "
                           "entropy.")
