"""Evaluation passes: periodic accuracy/CE, the final metrics and plots, extra datasets.

Periodic eval (:func:`evaluate`) sums the jitted eval step over one padded pass of an
eval pipeline: ``accuracy`` and ``cross_entropy`` (test CE, ITRA Table 1), each test
example counted once (the padding rows of the last batch are masked out). When
``config.best_metric`` is a ``retrieval/*`` key, the periodic eval (:func:`periodic`) is
:func:`evaluate_retrieval` instead: the same two metrics from the predict step's logits,
plus the retrieval metrics below, so that checkpoints can be kept by them.

The final evaluation (:func:`final_metrics`) collects logits and the 'features'
intermediate of the test set and of (up to ``max_train_examples``) training examples in
eval mode, then reports with :mod:`disc_jax.metrics`:

* ``accuracy``, ``cross_entropy`` (test), ``train/accuracy``;
* ``intra_class_std`` (σ²R eq. 12, NaN-mean over classes), ``fisher_score``,
  ``mean_abs_correlation`` of the test features, and ``train/intra_class_std``;
* per class k, ``intra_class_std/class_<k>`` and ``train/intra_class_std/class_<k>``
  (σ²R Tables 1-2), when ``num_classes <= PER_CLASS_MAX_CLASSES`` so that 257- to
  1000-class summaries stay readable;
* ``nearest_centroid_accuracy/train`` -- test features against the class means of the
  training features -- and ``nearest_centroid_accuracy/<term>`` against each learned set
  of centers/centroids (intra-class variance paper, Tables 1-2);
* with ``config.final_eval.retrieval``: ``retrieval/{precision_at_1, r_precision,
  map_at_r, knn_accuracy}`` (:func:`disc_jax.metrics.retrieval_metrics`, Euclidean, k-NN
  vote over ``retrieval_k`` neighbours) of the test features as queries against the first
  ``max_train_examples`` training features as references, and ``clustering/{nmi, ami}``
  (:func:`disc_jax.metrics.clustering_metrics`: k-means of the test features, k = the
  number of test classes, seed 0);
* 2-D scatter plots of the train and test features (PCA above 2-D), ``features_*.png``.

Extra datasets (``config.final_eval.extra_datasets``): the Gini paper's cross-domain
column scores a CIFAR-100 model on the 12 Caltech-101 categories CIFAR-100 shares
('caltech101_cifar100', labelled with CIFAR-100 ids). Each adds ``<prefix>/accuracy`` and
``<prefix>/cross_entropy``. Choices: the *training* dataset's mean/std normalise it (the
model was trained on inputs standardised with them); images are resized to the training
size and must have its channel count; labels must already be in the model's label space
(checked when the run is built, so a mismatch fails before training).
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from disc_jax import data as data_lib
from disc_jax import metrics as metrics_lib
from disc_jax import plots
from disc_jax.data.source import source_labels
from disc_jax.train.config import as_config_dicts

PER_CLASS_MAX_CLASSES = 100
RETRIEVAL_KEYS = tuple(f"retrieval/{m}" for m in ("precision_at_1", "r_precision", "map_at_r",
                                                   "knn_accuracy"))
CLUSTERING_KEYS = ("clustering/nmi", "clustering/ami")
# What a periodic eval can report, so what config.best_metric may name (retrieval/*: on demand).
PERIODIC_KEYS = ("accuracy", "cross_entropy", *RETRIEVAL_KEYS)


def intra_class_std_metrics(features: np.ndarray, labels: np.ndarray, num_classes: int,
                            prefix: str = "") -> dict[str, float]:
  """``{prefix + 'intra_class_std': NaN-mean, prefix + 'intra_class_std/class_<k>': I_k}``.

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


def evaluate(eval_step: Callable, shard: Callable, state, pipeline) -> dict[str, float]:
  """``{'accuracy', 'cross_entropy', 'count'}`` over one pass of an eval pipeline."""
  totals = {"correct": 0.0, "ce_sum": 0.0, "count": 0.0}
  for batch in pipeline.batches():
    sums = eval_step(state, shard(batch))
    for k in totals:
      totals[k] += float(sums[k])
  n = totals["count"] or float("nan")
  return {"accuracy": totals["correct"] / n, "cross_entropy": totals["ce_sum"] / n,
          "count": totals["count"]}


def retrieval_scores(test_x: np.ndarray, test_y: np.ndarray, train_x: np.ndarray,
                     train_y: np.ndarray, *, k: int, max_references: int) -> dict[str, float]:
  """``retrieval/*`` of the test features against the first ``max_references`` training ones."""
  m = metrics_lib.retrieval_metrics(test_x, test_y, train_x[:max_references],
                                    train_y[:max_references], k=k)
  return {f"retrieval/{name}": value for name, value in m.items()}


def evaluate_retrieval(predict_step: Callable, shard: Callable, state, pipeline, *,
                       train_pipeline, max_train_examples: int, k: int) -> dict[str, float]:
  """:func:`evaluate`'s keys (from the predict step's logits) and :func:`retrieval_scores`."""
  test = collect(predict_step, shard, state, pipeline)
  train = collect(predict_step, shard, state, train_pipeline, max_train_examples)
  return {**test.result(), **retrieval_scores(*test.features(), *train.features(), k=k,
                                              max_references=max_train_examples)}


def periodic(config, run) -> Callable[[object], dict[str, float]]:
  """``state -> metrics``: the periodic eval of ``run`` (a built run) on its eval split.

  :func:`evaluate`, unless ``config.best_metric`` is a ``retrieval/*`` key: then
  :func:`evaluate_retrieval` against ``run``'s training split in eval mode.
  """
  if config.best_metric in RETRIEVAL_KEYS:
    return lambda state: evaluate_retrieval(
        run.predict_step, run.shard, state, run.eval_pipeline,
        train_pipeline=run.train_eval_pipeline,
        max_train_examples=config.final_eval.max_train_examples,
        k=config.final_eval.retrieval_k)
  return lambda state: evaluate(run.eval_step, run.shard, state, run.eval_pipeline)


def collect(predict_step: Callable, shard: Callable, state, pipeline,
            max_examples: int | None = None) -> metrics_lib.EvalAccumulator:
  """Runs the predict step over an eval pipeline; returns the accumulator with the features."""
  acc = metrics_lib.EvalAccumulator()
  seen = 0
  for batch in pipeline.batches():
    # Predictions come back replicated; labels and mask are this process's rows.
    logits, feats = predict_step(state, shard({"image": batch["image"]})["image"])
    label, mask = batch["label"], batch["mask"]
    if jax.process_count() > 1:
      label, mask = multihost_utils.process_allgather((label, mask), tiled=True)
    acc.update(np.asarray(logits), np.asarray(label), np.asarray(mask),
               features=np.asarray(feats))
    seen += int(np.asarray(mask).sum())
    if max_examples is not None and seen >= max_examples:
      break
  return acc


def final_metrics(predict_step: Callable, shard: Callable, state, *, train_pipeline,
                  test_pipeline, centers: Mapping[str, np.ndarray], num_classes: int,
                  max_train_examples: int, plot_dir: str | pathlib.Path | None, title: str = "",
                  class_names: Sequence[str] | None = None, retrieval: bool = False,
                  retrieval_k: int = 10) -> tuple[dict[str, float], dict[str, np.ndarray]]:
  """The final metrics (module docstring) and the collected feature arrays.

  ``centers``: the run's learned centers/centroids by term label; ``retrieval``: add the
  ``retrieval/*`` (k-NN vote over ``retrieval_k``) and ``clustering/*`` keys.
  """
  test = collect(predict_step, shard, state, test_pipeline)
  train = collect(predict_step, shard, state, train_pipeline, max_train_examples)
  test_x, test_y = test.features()
  train_x, train_y = train.features()
  out = {k: v for k, v in test.result().items() if k != "count"}
  centroids = {"train": metrics_lib.class_centroids(train_x, train_y, num_classes)}
  centroids.update({k: np.asarray(v) for k, v in centers.items()})
  out.update(metrics_lib.feature_metrics(test_x, test_y, num_classes, centroids=centroids))
  out.update(intra_class_std_metrics(test_x, test_y, num_classes))
  out.update(intra_class_std_metrics(train_x, train_y, num_classes, prefix="train/"))
  out["train/accuracy"] = train.result()["accuracy"]
  if retrieval:
    out.update(retrieval_scores(test_x, test_y, train_x, train_y, k=retrieval_k,
                                max_references=max_train_examples))
    out.update({f"clustering/{name}": value
                for name, value in metrics_lib.clustering_metrics(test_x, test_y).items()})
  arrays = {"train_features": train_x, "train_labels": train_y, "test_features": test_x,
            "test_labels": test_y}
  if plot_dir is not None:
    for split, (x, y) in {"train": (train_x, train_y), "test": (test_x, test_y)}.items():
      plots.scatter_features_2d(x, y, pathlib.Path(plot_dir) / f"features_{split}.png",
                                title=f"{title} ({split})".strip(), class_names=class_names)
  return out, arrays


def prefix_of(entry: Mapping) -> str:
  """The metric prefix of an extra dataset: its ``prefix`` or, if empty, its name.

  >>> prefix_of({"name": "caltech101_cifar100", "prefix": ""})
  'caltech101_cifar100'
  """
  return str(entry.get("prefix") or entry["name"])


def _entries(config) -> list[ml_collections.ConfigDict]:
  return as_config_dicts(config.final_eval.extra_datasets)


def check_extra_datasets(config, num_classes: int) -> None:
  """The extra datasets' names, splits, prefixes and label spaces (no data read)."""
  where = "config.final_eval.extra_datasets"
  entries = _entries(config)
  if entries and config.dataset.class_subset is not None:
    raise ValueError(f"{where} cannot be combined with config.dataset.class_subset (the extra "
                     "datasets' labels are not relabelled); drop one of the two")
  for i, e in enumerate(entries):
    try:
      classes = int(dict(e.kwargs).get("num_classes", data_lib.dataset_info(e.name).num_classes))
    except ValueError as err:
      raise ValueError(f"{where}[{i}].name: {err}") from None
    if not isinstance(e.split, str) or not e.split:
      raise ValueError(f"{where}[{i}].split must be a split name such as 'test', got {e.split!r}")
    if classes > num_classes:
      raise ValueError(f"{where}[{i}] ({e.name!r}) has {classes} classes but the model has "
                       f"{num_classes}; evaluate only datasets labelled in the training label space")
  prefixes = [prefix_of(e) for e in entries]
  repeated = sorted({p for p in prefixes if prefixes.count(p) > 1})
  if repeated:
    raise ValueError(f"{where}: metric prefix(es) {repeated} repeat; give the entries "
                     "distinct 'prefix' values")


def extra_pipelines(config, *, image_shape: tuple[int, int, int], num_classes: int,
                    batch_size: int, num_shards: int, process_index: int = 0,
                    process_count: int = 1) -> dict[str, data_lib.Pipeline]:
  """``{prefix: eval Pipeline}`` of every extra dataset (module docstring).

  Raises ValueError when an entry's images have another channel count than the model's,
  when it is empty, or when a label is >= ``num_classes``.
  """
  train_info = data_lib.dataset_info(config.dataset.name)
  out = {}
  for i, e in enumerate(_entries(config)):
    where = f"config.final_eval.extra_datasets[{i}] ({e.name!r}, split {e.split!r})"
    source = data_lib.load_source(
        e.name, e.split, data_dir=e.data_dir if e.data_dir is not None else config.dataset.data_dir,
        manual_dir=e.manual_dir if e.manual_dir is not None else config.dataset.manual_dir,
        **dict(e.kwargs))
    if source.image_shape[-1] != image_shape[-1]:
      raise ValueError(f"{where}: images have {source.image_shape[-1]} channels but the model "
                       f"takes {image_shape[-1]}; evaluate a dataset of the training kind")
    labels = source_labels(source)
    if labels.size == 0:
      raise ValueError(f"{where}: the split has no examples; name a non-empty split")
    if labels.max() >= num_classes or labels.min() < 0:
      raise ValueError(f"{where}: labels range over [{labels.min()}, {labels.max()}] but the "
                       f"model has {num_classes} classes; an extra dataset must be labelled in "
                       "the training label space (e.g. 'caltech101_cifar100' for CIFAR-100)")
    out[prefix_of(e)] = data_lib.Pipeline(
        source, batch_size=batch_size, train=False, mean=train_info.mean, std=train_info.std,
        num_shards=num_shards, image_size=tuple(image_shape[:2]), process_index=process_index,
        process_count=process_count)
  return out
