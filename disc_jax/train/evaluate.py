"""Evaluation passes: periodic accuracy/CE, and the final metrics and feature plots.

Periodic eval (:func:`evaluate`) sums the jitted ``eval_step`` over one padded pass
of the eval pipeline: ``accuracy`` and ``cross_entropy`` (test CE, ITRA Table 1).

The final evaluation (:func:`final_metrics`) collects logits and the 'features'
intermediate of the test set and of (up to ``max_train_examples``) training examples
in eval mode, then reports with :mod:`disc_jax.metrics`:

* ``accuracy``, ``cross_entropy`` (test);
* ``intra_class_std`` (σ²R eq. 12, NaN-mean over classes), ``fisher_score``,
  ``mean_abs_correlation`` of the test features, and ``train/intra_class_std``;
* per class k, ``intra_class_std/class_<k>`` (test) and ``train/intra_class_std/class_<k>``
  (train): I_k of eq. 12 (σ²R Tables 1-2), NaN for a class with fewer than 2 examples.
  Only when ``num_classes <= PER_CLASS_MAX_CLASSES`` (100, e.g. CIFAR-100's 100), so that
  the summaries of 257/397/1000-class runs stay readable (2 x K extra scalars);
* ``nearest_centroid_accuracy/train`` -- test features against the class means of the
  training features -- and ``nearest_centroid_accuracy/<term>`` against each learned
  set of centers/centroids (intra-class variance paper, Tables 1-2), only when the term
  reads 'features';
* a 2-D scatter of the train and test features (PCA above 2 dims), ``features_*.png``.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from disc_jax import metrics as metrics_lib
from disc_jax import plots
from disc_jax.train.objective import Term


PER_CLASS_MAX_CLASSES = 100


def intra_class_std_metrics(features: np.ndarray, labels: np.ndarray, num_classes: int,
                            prefix: str = "") -> dict[str, float]:
  """``{prefix + 'intra_class_std': NaN-mean, prefix + 'intra_class_std/class_<k>': I_k}``.

  I_k is σ²R eq. 12 (:func:`disc_jax.metrics.intra_class_std`); the per-class keys only
  when ``num_classes <= PER_CLASS_MAX_CLASSES``.

  >>> x = np.array([[0., 0.], [2., 0.], [0., 0.], [0., 3.], [0., 6.]])
  >>> m = intra_class_std_metrics(x, np.array([0, 0, 1, 1, 1]), 2, prefix="train/")
  >>> {k: round(v, 4) for k, v in m.items()}  # doctest: +NORMALIZE_WHITESPACE
  {'train/intra_class_std': 2.2071, 'train/intra_class_std/class_0': 1.4142,
   'train/intra_class_std/class_1': 3.0}
  """
  std = np.asarray(metrics_lib.intra_class_std(features, labels, num_classes), np.float64)
  out = {f"{prefix}intra_class_std":
         float(np.nanmean(std)) if np.isfinite(std).any() else float("nan")}
  if num_classes <= PER_CLASS_MAX_CLASSES:
    out.update({f"{prefix}intra_class_std/class_{k}": float(v) for k, v in enumerate(std)})
  return out


def evaluate(steps, state, pipeline) -> dict[str, float]:
  """``{'accuracy', 'cross_entropy', 'count'}`` over one pass of an eval pipeline."""
  totals = {"correct": 0.0, "ce_sum": 0.0, "count": 0.0}
  for batch in pipeline.batches():
    sums = steps.eval(state, steps.shard_batch(batch))
    for k in totals:
      totals[k] += float(sums[k])
  n = totals["count"] or float("nan")
  return {"accuracy": totals["correct"] / n, "cross_entropy": totals["ce_sum"] / n,
          "count": totals["count"]}


def collect(steps, state, pipeline, max_examples: int | None = None
            ) -> metrics_lib.EvalAccumulator:
  """Runs ``predict`` over an eval pipeline; returns the accumulator with the features."""
  acc = metrics_lib.EvalAccumulator()
  seen = 0
  for batch in pipeline.batches():
    logits, feats = steps.predict(state, steps.shard_batch({"image": batch["image"]})["image"])
    acc.update(np.asarray(logits), batch["label"], batch["mask"], features=np.asarray(feats))
    seen += int(batch["mask"].sum())
    if max_examples is not None and seen >= max_examples:
      break
  return acc


def learned_centers(terms: Sequence[Term], loss_params: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The learned centers/centroids of the terms that read 'features' (label -> [C, D])."""
  out = {}
  for term in terms:
    if term.input != "features":
      continue
    for pname in ("centers", "centroids"):
      if pname in loss_params.get(term.label, {}):
        out[term.label] = np.asarray(loss_params[term.label][pname])
  return out


def final_metrics(steps, state, *, train_pipeline, test_pipeline, terms: Sequence[Term],
                  num_classes: int, max_train_examples: int, plot_dir: str | pathlib.Path | None,
                  title: str = "", class_names: Sequence[str] | None = None
                  ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
  """The final metrics (see module docstring) and the collected feature arrays."""
  test = collect(steps, state, test_pipeline)
  train = collect(steps, state, train_pipeline, max_train_examples)
  test_x, test_y = test.features()
  train_x, train_y = train.features()
  out = {k: v for k, v in test.result().items() if k != "count"}
  centroids = {"train": metrics_lib.class_centroids(train_x, train_y, num_classes)}
  centroids.update(learned_centers(terms, state.loss_params))
  out.update(metrics_lib.feature_metrics(test_x, test_y, num_classes, centroids=centroids))
  out.update(intra_class_std_metrics(test_x, test_y, num_classes))
  out.update(intra_class_std_metrics(train_x, train_y, num_classes, prefix="train/"))
  out["train/accuracy"] = train.result()["accuracy"]
  arrays = {"train_features": train_x, "train_labels": train_y, "test_features": test_x,
            "test_labels": test_y}
  if plot_dir is not None:
    plot_dir = pathlib.Path(plot_dir)
    for split, (x, y) in {"train": (train_x, train_y), "test": (test_x, test_y)}.items():
      plots.scatter_features_2d(x, y, plot_dir / f"features_{split}.png",
                                title=f"{title} ({split})".strip(), class_names=class_names)
  return out, arrays
