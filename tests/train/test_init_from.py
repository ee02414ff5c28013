"""config.init_from: a run starts from another run's params/batch_stats; fresh optimizer and step."""

from __future__ import annotations

import doctest

import jax
import ml_collections
import numpy as np
import pytest

from disc_jax.train import Checkpointer, build, train_and_evaluate
from disc_jax.train import config as config_lib
from disc_jax.train import checkpoint
from tests.train.conftest import tiny_config


def _tiny_bn(tiny, num_classes=4):
  """A small model with batch norm, so batch_stats are loaded too."""
  c = tiny(model="embedding_cnn", image=8, num_classes=num_classes, examples=64, hidden_dim=16,
           embedding_dim=4, widths=(4, 8), convs_per_stage=1)
  c.num_steps = 2
  c.checkpoint_every = 0
  c.final_eval.max_train_examples = 16
  return c


def _final_state(workdir, config):
  ckpt = Checkpointer(workdir / "checkpoints")
  state, _ = ckpt.restore(build(config).init())
  ckpt.close()
  return state


def _assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("init_from") / "source"
  config = _tiny_bn(tiny_config)
  train_and_evaluate(config, workdir, progress=False)
  return workdir, config, _final_state(workdir, config)


def test_second_run_starts_from_the_first_runs_final_params(source_run, tiny, tmp_path):
  workdir, config, final = source_run
  assert int(final.step) == 2
  fresh = build(config).init()
  # the check can fail: a fresh init differs from the trained params
  assert not np.allclose(fresh.params["head"]["kernel"], final.params["head"]["kernel"])

  for path in (workdir, workdir / "checkpoints", workdir / "checkpoints" / "2"):
    loaded = checkpoint.initialize(fresh, path)
    _assert_trees_equal(loaded.params, final.params)
    _assert_trees_equal(loaded.batch_stats, final.batch_stats)
    assert int(loaded.step) == 0                       # step and optimizer state stay fresh
    _assert_trees_equal(loaded.opt_state, fresh.opt_state)
    assert loaded.params["head"]["kernel"].sharding == fresh.params["head"]["kernel"].sharding

  # Through train_and_evaluate: at lr 1e-30 (below float32 resolution of the params; a
  # learning rate must be > 0) the params after step 1 are still the loaded ones.
  second = config.copy_and_resolve_references()
  second.init_from = str(workdir)
  second.optimizer.learning_rate = 1e-30
  second.num_steps = 1
  seen = {}
  train_and_evaluate(second, tmp_path / "second", progress=False,
                     callbacks=[lambda step, state, m: seen.setdefault(
                         step, jax.tree.map(np.asarray, state.params))])
  _assert_trees_equal(seen[1], final.params)
  assert int(_final_state(tmp_path / "second", second).step) == 1


def test_shape_mismatch_names_the_path_and_both_shapes_and_skip_keeps_the_head(source_run):
  workdir, config, final = source_run
  other = _tiny_bn(tiny_config, num_classes=5)
  fresh = build(other).init()
  with pytest.raises(ValueError, match=r"params/head/bias has shape \(4,\) in the checkpoint "
                                       r"but \(5,\) in this model; .*add 'head' to "
                                       r"config.init_from_skip"):
    checkpoint.initialize(fresh, workdir)
  loaded = checkpoint.initialize(fresh, workdir, skip=["head"])
  _assert_trees_equal(loaded.params["head"], fresh.params["head"])     # fresh 5-way head
  rest = {k: v for k, v in loaded.params.items() if k != "head"}
  _assert_trees_equal(rest, {k: v for k, v in final.params.items() if k != "head"})
  _assert_trees_equal(loaded.batch_stats, final.batch_stats)
  with pytest.raises(ValueError, match=r"init_from_skip: 'haed' matches no parameter"):
    checkpoint.initialize(fresh, workdir, skip=["haed"])


def test_other_architecture_and_bad_paths_fail_clearly(source_run, tiny, tmp_path):
  workdir, _, _ = source_run
  fresh = build(tiny(model="lenet5")).init()
  with pytest.raises(ValueError, match=r"the checkpoint's params do not match this model: "
                                       r"missing \['conv1/bias', .*unexpected \['bn0/bias'"):
    checkpoint.initialize(fresh, workdir)
  with pytest.raises(ValueError, match=r"is not a directory"):
    checkpoint.find_checkpoint(tmp_path / "nowhere")
  with pytest.raises(ValueError, match=r"no checkpoint under .*train that run first"):
    checkpoint.find_checkpoint(tmp_path)


@pytest.mark.parametrize("field, value, match", [
    ("init_from", 3, r"config.init_from must be a checkpoint path \(str\) or None, got 3"),
    ("init_from", "", r"config.init_from must be a checkpoint path"),
    ("init_from_skip", "head", r"config.init_from_skip must be a list of parameter paths"),
    ("init_from_skip", ["head", ""], r"config.init_from_skip must be a list"),
])
def test_config_validation(tiny, field, value, match):
  # built with the value: past the ConfigDict type check
  config = ml_collections.ConfigDict({**config_lib.to_plain(tiny()), field: value})
  with pytest.raises(ValueError, match=match):
    config_lib.validate(config)


def test_doctests():
  result = doctest.testmod(checkpoint, optionflags=doctest.ELLIPSIS)
  assert result.attempted > 0 and result.failed == 0


def test_group_softmax_finetune_runs_load_table3_softmax_models_except_the_head():
  """Table 2's '<model>_<method>_ft' runs point at Table 3's '<model>_softmax' run, whose
  params have the same paths and shapes except the 1000- vs 101-way 'head'."""
  from configs.group_softmax import _common as gs  # noqa: PLC0415
  from configs.group_softmax import table2_food101, table3_imagenet  # noqa: PLC0415
  from disc_jax import models  # noqa: PLC0415
  food = {r: table2_food101.get_config(f"run={r}") for r in table2_food101.RUNS}
  imagenet = {r: table3_imagenet.get_config(f"run={r}") for r in table3_imagenet.RUNS}
  for prefix in ("resnet50", "vgg16"):
    ft = food[f"{prefix}_type2_ft"]
    assert ft.init_from == f"workdir/sweeps/group_softmax/table3_imagenet/{prefix}_softmax/seed_0"
    assert list(ft.init_from_skip) == ["head"] and ft.optimizer.learning_rate == gs.FINETUNE_LR
    assert ft.classification_loss.name == "group_softmax" and ft.num_epochs == gs.FINETUNE_EPOCHS
    shapes = []
    for config in (ft, imagenet[f"{prefix}_softmax"]):
      model = models.get_model(config.model.name, num_classes=config_lib.num_classes_of(config),
                               **config_lib.to_plain(config.model.kwargs))
      tree = jax.eval_shape(lambda m=model: models.init_variables(
          m, jax.random.PRNGKey(0), (224, 224, 3)))
      shapes.append({k: v.shape for k, v in checkpoint.flatten(tree).items()})
    differing = sorted(k for k in shapes[0] if shapes[0][k] != shapes[1].get(k))
    assert set(shapes[0]) == set(shapes[1])
    assert differing == ["params/head/bias", "params/head/kernel"]
