"""``config.final_eval.extra_datasets``: evaluate the final model on further datasets.

The Gini paper's cross-domain column (gini_kl_discriminability_loss.txt, Sec. 4, Table 1)
scores a CIFAR-100 model on the 12 Caltech-101 categories CIFAR-100 shares
('caltech101_cifar100', labelled with CIFAR-100 ids). Each entry (made by
:func:`disc_jax.train.schema.extra_dataset`) names a dataset of :mod:`disc_jax.data`
and a split; after training, one eval pass over it adds ``<prefix>/accuracy`` and
``<prefix>/cross_entropy`` to the final metrics (``prefix`` defaults to the dataset
name), computed over that split's own examples only (padding is masked out).

Choices:

* normalisation: the *training* dataset's mean/std (its :data:`disc_jax.data.DATASETS`
  entry), not the extra dataset's own -- the model was trained on inputs standardised
  with those statistics, and the extra set is an input to that same model;
* images are resized to the size the model was trained on (the training pipeline's
  image shape) and must have the same channel count;
* labels must already be in the model's label space (``label < num_classes``; e.g.
  'caltech101_cifar100' uses CIFAR-100 ids): checked on the real labels when the run is
  built, so a mismatch fails before training, not after;
* ``data_dir`` / ``manual_dir`` default to ``config.dataset``'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from disc_jax import data as data_lib
from disc_jax.data.source import source_labels
from disc_jax.train import evaluate
from disc_jax.train.config import to_plain


def prefix_of(entry: Mapping[str, Any]) -> str:
  """The metric prefix of an entry: its ``prefix`` or, if empty, its dataset name.

  >>> prefix_of({"name": "caltech101_cifar100", "prefix": ""})
  'caltech101_cifar100'
  """
  return str(entry.get("prefix") or entry["name"])


def build_pipelines(config, *, image_shape: tuple[int, int, int], num_classes: int,
                    batch_size: int, num_shards: int) -> dict[str, data_lib.Pipeline]:
  """``{prefix: eval Pipeline}`` of every ``config.final_eval.extra_datasets`` entry.

  Raises ValueError when an entry's images have another channel count than
  ``image_shape``, when it is empty, or when a label is >= ``num_classes``.
  """
  train_info = data_lib.dataset_info(config.dataset.name)
  out = {}
  for i, entry in enumerate(config.final_eval.extra_datasets):
    where = f"config.final_eval.extra_datasets[{i}] ({entry.name!r}, split {entry.split!r})"
    data_dir = entry.data_dir if entry.data_dir is not None else config.dataset.data_dir
    manual_dir = entry.manual_dir if entry.manual_dir is not None else config.dataset.manual_dir
    source = data_lib.load_source(entry.name, entry.split, data_dir=data_dir,
                                  manual_dir=manual_dir, **to_plain(entry.kwargs))
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
    out[prefix_of(entry)] = data_lib.Pipeline(
        source, batch_size=batch_size, train=False, mean=train_info.mean, std=train_info.std,
        num_shards=num_shards, image_size=tuple(image_shape[:2]))
  return out


def evaluate_all(steps, state, pipelines: Mapping[str, data_lib.Pipeline]) -> dict[str, float]:
  """``{'<prefix>/accuracy', '<prefix>/cross_entropy'}`` of every pipeline (one pass each)."""
  out = {}
  for prefix, pipeline in pipelines.items():
    result = evaluate.evaluate(steps, state, pipeline)
    out[f"{prefix}/accuracy"] = result["accuracy"]
    out[f"{prefix}/cross_entropy"] = result["cross_entropy"]
  return out
