"""dataset.class_subset: C classes kept, relabelled 0..C-1 in sorted id order, same in every split."""

from __future__ import annotations

import jax
import ml_collections
import numpy as np
import pytest

from disc_jax.data import ArraySource, ClassSubsetSource, Pipeline, SyntheticSource, choose_classes
from disc_jax.train import build
from disc_jax.train import config as config_lib


def _source(labels, num_classes=10):
  labels = np.asarray(labels)
  # image pixel = the example's index, so a batch can be traced back to the base examples
  images = np.broadcast_to(np.arange(labels.size, dtype=np.uint8)[:, None, None, None],
                           (labels.size, 2, 2, 1)).copy()
  return ArraySource(images, labels, num_classes, name="synthetic",
                     label_names=tuple(f"c{k}" for k in range(num_classes)))


def test_random_subset_has_c_distinct_sorted_classes_fixed_by_seed():
  a = choose_classes(50, {"num_classes": 7, "seed": 3})
  assert a.size == 7 and len(set(a.tolist())) == 7
  assert a.tolist() == sorted(a.tolist()) and a.min() >= 0 and a.max() < 50
  np.testing.assert_array_equal(a, choose_classes(50, {"num_classes": 7, "seed": 3}))
  # the documented rule: the first C of default_rng(seed).permutation(K), sorted
  np.testing.assert_array_equal(a, np.sort(np.random.default_rng(3).permutation(50)[:7]))
  assert not np.array_equal(a, choose_classes(50, {"num_classes": 7, "seed": 4}))
  # nested for one seed; seed defaults to 0
  assert set(choose_classes(50, {"num_classes": 3}).tolist()) <= set(
      choose_classes(50, {"num_classes": 20, "seed": 0}).tolist())


def test_subset_source_keeps_exactly_the_chosen_classes_relabelled_in_id_order():
  labels = [5, 1, 9, 5, 3, 1, 0, 9, 9, 2]
  sub = ClassSubsetSource(_source(labels), [9, 1, 5])
  assert sub.num_classes == 3 and sub.name == "synthetic"
  assert sub.classes.tolist() == [1, 5, 9]
  assert sub.label_names == ("c1", "c5", "c9")
  batch = sub.get_batch(np.arange(len(sub)))
  kept = [i for i, y in enumerate(labels) if y in (1, 5, 9)]
  assert batch["image"][:, 0, 0, 0].tolist() == kept          # the base examples, in order
  assert batch["label"].tolist() == [{1: 0, 5: 1, 9: 2}[labels[i]] for i in kept]
  assert sub.labels.tolist() == batch["label"].tolist()
  with pytest.raises(ValueError, match=r"indices must lie in \[0, 7\)"):
    sub.get_batch(np.array([7]))


def test_train_and_test_splits_share_one_mapping():
  spec = {"num_classes": 4, "seed": 1}
  train = SyntheticSource("train", num_examples=60, image_shape=(2, 2, 1), num_classes=10)
  test = SyntheticSource("test", num_examples=40, image_shape=(2, 2, 1), num_classes=10)
  classes = choose_classes(10, spec)
  for base in (train, test):
    sub = ClassSubsetSource(base, classes)
    orig = base.labels[np.isin(base.labels, classes)]
    assert sub.labels.tolist() == np.searchsorted(classes, orig).tolist()
    assert set(sub.labels.tolist()) == {0, 1, 2, 3}
    # the images are the base's images of the kept examples
    np.testing.assert_array_equal(sub.get_batch(np.arange(len(sub)))["image"],
                                  base.images[np.isin(base.labels, classes)])


@pytest.mark.parametrize("spec, match", [
    ({"num_classes": 11}, r"num_classes must lie in \[1, 10\] \(the dataset has 10 classes\), got 11"),
    ({"num_classes": 0}, r"num_classes must lie in \[1, 10\]"),
    ({"n": 3}, r"got keys \['n'\]; give \{'num_classes': C, 'seed': s\}"),
    ({"num_classes": 3, "seed": -1}, r"seed must be a non-negative int"),
    ({"num_classes": 2.5}, r"num_classes must be an int, got 2.5"),
    ([3, 3], r"class ids repeat in \[3, 3\]"),
    ([1, 10], r"class ids \[10\] lie outside \[0, 10\)"),
    ([], r"the list of class ids is empty"),
    ("3", r"class_subset must be \{'num_classes': C, 'seed': s\} or a list of class ids"),
])
def test_bad_subsets_name_the_problem(spec, match):
  with pytest.raises(ValueError, match=match):
    choose_classes(10, spec)


def _config(subset):
  c = config_lib.get_config()
  c.dataset.name = "synthetic"
  c.dataset.kwargs = ml_collections.ConfigDict(
      {"num_examples": 120, "image_shape": (12, 12, 1), "num_classes": 10})
  c.dataset.class_subset = subset
  c.model.name = "lenet5"
  c.model.kwargs = ml_collections.ConfigDict({"feature_dim": 8})
  c.batch_size = 8
  return c


def test_build_applies_one_subset_to_both_splits_and_sizes_the_model():
  config = _config({"num_classes": 3, "seed": 5})
  classes = choose_classes(10, {"num_classes": 3, "seed": 5})
  assert config_lib.num_classes_of(config) == 3
  run = build(config)
  assert run.num_classes == 3
  for pipe in (run.train_pipeline, run.eval_pipeline, run.train_eval_pipeline):
    assert pipe.source.classes.tolist() == classes.tolist()
    assert set(pipe.source.labels.tolist()) == {0, 1, 2}
  # the test split's kept examples are exactly its examples of the chosen classes
  base = SyntheticSource("test", num_examples=120, image_shape=(12, 12, 1), num_classes=10)
  assert len(run.eval_pipeline.source) == int(np.isin(base.labels, classes).sum())
  # normalisation stays the base dataset's (the source keeps the name 'synthetic')
  full = Pipeline(base, batch_size=8, train=False)
  np.testing.assert_allclose(run.eval_pipeline.batch(0)["image"][0],
                             full.batch(0)["image"][np.flatnonzero(np.isin(base.labels, classes))[0]])
  shapes = jax.eval_shape(run.init)
  assert shapes.params["head"]["kernel"].shape == (8, 3)


def test_explicit_list_and_validation_errors():
  assert config_lib.num_classes_of(_config([7, 2])) == 2
  config_lib.validate(_config([7, 2]))
  with pytest.raises(ValueError, match=r"config.dataset.class_subset: num_classes must lie in "
                                       r"\[1, 10\] \(the dataset has 10 classes\), got 12"):
    config_lib.validate(_config({"num_classes": 12, "seed": 0}))
  with pytest.raises(ValueError, match=r"config.dataset.class_subset: class ids \[10\] lie outside"):
    config_lib.validate(_config([2, 10]))


def test_group_softmax_table3_subset_runs_are_the_full_runs_on_c_classes():
  from configs.group_softmax import table3_imagenet  # noqa: PLC0415
  configs = {r: table3_imagenet.get_config(f"run={r}") for r in table3_imagenet.RUNS}
  rows = {r.label: r.run for r in table3_imagenet.TABLE.rows}
  for method, label in (("softmax", "Softmax"), ("type1", "Ours, Type-I"),
                        ("type2", "Ours, Type-II")):
    full = config_lib.to_plain(configs[f"resnet50_{method}"])
    assert rows[f"(a) {label}, 1000 classes"] == f"resnet50_{method}"
    for c in (100, 200, 500):
      run = f"resnet50_{method}_c{c}"
      assert rows[f"(a) {label}, {c} classes"] == run
      sub = config_lib.to_plain(configs[run])
      assert sub["dataset"].pop("class_subset") == {"num_classes": c, "seed": 0}
      assert full["dataset"].pop("class_subset") is None
      assert sub == full                      # everything else is the 1000-class run's
      full["dataset"]["class_subset"] = None
      assert config_lib.num_classes_of(configs[run]) == c
