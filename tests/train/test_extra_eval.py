"""final_eval.extra_datasets: '<prefix>/accuracy' and '<prefix>/cross_entropy' of the final model."""

from __future__ import annotations

import doctest

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs.gini_kl import _common as gini_common
from disc_jax.data import DATASETS, SyntheticSource, load_source
from disc_jax.train import Checkpointer, build, extra_dataset, train_and_evaluate
from disc_jax.train import config as config_lib
from disc_jax.train import evaluate
from tests.data.test_cross_domain import FakeCaltech101
from tests.train.conftest import tiny_config

SHAPE = (32, 32, 3)     # CIFAR-sized, so the Caltech-101 -> CIFAR-100 subset fits the model
SHIFTED = {"num_examples": 37, "image_shape": SHAPE, "num_classes": 100, "seed": 7}


def _config(caltech_dir=None):
  c = tiny_config(num_classes=100, image=32, examples=128)
  c.dataset.kwargs = ml_collections.ConfigDict(
      {"num_examples": 128, "image_shape": SHAPE, "num_classes": 100})
  c.num_steps = 3
  c.checkpoint_every = 0
  extra = [extra_dataset("synthetic", "test", kwargs=c.dataset.kwargs.to_dict()),
           extra_dataset("synthetic", "test", kwargs=SHIFTED, prefix="shifted")]
  if caltech_dir is not None:
    extra.append(extra_dataset("caltech101_cifar100", "test", data_dir=str(caltech_dir)))
  c.final_eval.extra_datasets = tuple(extra)
  return c


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  caltech_dir = tmp_path_factory.mktemp("caltech")
  FakeCaltech101(data_dir=str(caltech_dir), file_format="array_record").download_and_prepare()
  config = _config(caltech_dir)
  workdir = tmp_path_factory.mktemp("extra") / "run"
  final = train_and_evaluate(config, workdir, progress=False)
  run = build(config)
  ckpt = Checkpointer(workdir / "checkpoints")
  state, _ = ckpt.restore(run.init())
  ckpt.close()
  return config, final, run.model, state, caltech_dir


def _reference(model, params, images: np.ndarray, labels: np.ndarray, mean, std):
  """Accuracy and CE computed independently of the pipeline and the eval step."""
  x = (images.astype(np.float32) / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
  logits = np.asarray(model.apply({"params": params}, jnp.asarray(x), train=False), np.float64)
  logp = logits - logits.max(1, keepdims=True)
  logp -= np.log(np.exp(logp).sum(1, keepdims=True))
  return float(np.mean(logits.argmax(1) == labels)), float(-logp[np.arange(labels.size), labels].mean())


def test_extra_copy_of_the_test_set_equals_the_test_metrics(trained):
  _, final, *_ = trained
  assert final["synthetic/accuracy"] == pytest.approx(final["accuracy"], abs=1e-7)
  assert final["synthetic/cross_entropy"] == pytest.approx(final["cross_entropy"], rel=1e-6)


def test_extra_metrics_equal_an_independent_computation(trained):
  _, final, model, state, _ = trained
  src = SyntheticSource("test", **SHIFTED)     # 37 examples: the last eval batch is padded
  info = DATASETS["synthetic"]
  acc, ce = _reference(model, state.params, src.images, src.labels, info.mean, info.std)
  assert final["shifted/accuracy"] == pytest.approx(acc, abs=1e-7)
  assert final["shifted/cross_entropy"] == pytest.approx(ce, rel=1e-4)
  assert final["shifted/cross_entropy"] != pytest.approx(final["cross_entropy"], rel=1e-4)
  assert not any(k.endswith("/count") for k in final)


def test_cross_domain_caltech_uses_the_training_normalisation(trained):
  _, final, model, state, caltech_dir = trained
  src = load_source("caltech101_cifar100", "test", data_dir=caltech_dir)
  batch = src.get_batch(np.arange(len(src)))
  train_info = DATASETS["synthetic"]
  acc, ce = _reference(model, state.params, batch["image"], batch["label"], train_info.mean,
                       train_info.std)
  assert final["caltech101_cifar100/accuracy"] == pytest.approx(acc, abs=1e-7)
  assert final["caltech101_cifar100/cross_entropy"] == pytest.approx(ce, rel=1e-4)
  # the Caltech set's own (CIFAR-100) statistics would give another value: the test can tell
  own = DATASETS["caltech101_cifar100"]
  _, ce_own = _reference(model, state.params, batch["image"], batch["label"], own.mean, own.std)
  assert abs(ce_own - ce) > 1e-3
  # the Gini configs' Caltech column reads exactly this key
  assert gini_common.CALTECH.metric_key({}) in final


def test_gini_configs_evaluate_the_caltech_subset():
  from configs.gini_kl import table1_cifar100_resnet18  # noqa: PLC0415
  config = table1_cifar100_resnet18.get_config()
  (entry,) = config.final_eval.extra_datasets
  assert (entry.name, entry.split) == ("caltech101_cifar100", "test")
  assert gini_common.CALTECH.key == "caltech101_cifar100/accuracy"


def _add(config, entry):
  config.final_eval.extra_datasets = (*config.final_eval.extra_datasets, entry)


@pytest.mark.parametrize("mutate, match", [
    (lambda c: _add(c, {"name": "synthetic", "splt": "test"}),
     r"extra_datasets\[2\]: unknown key\(s\) \['splt'\]; valid keys: \['data_dir', 'kwargs'"),
    (lambda c: _add(c, extra_dataset("caltech102")),
     r"extra_datasets\[2\].name: unknown dataset 'caltech102'; known names:"),
    (lambda c: _add(c, extra_dataset("synthetic", kwargs=SHIFTED)),
     r"metric prefix\(es\) \['synthetic'\] repeat; give the entries distinct 'prefix' values"),
    (lambda c: _add(c, extra_dataset("cifar100", split="")),
     r"extra_datasets\[2\].split must be a split name"),
    (lambda c: c.dataset.kwargs.__setitem__("num_classes", 10),
     r"extra_datasets\[0\] \('synthetic'\) has 100 classes but the model has 10; evaluate only"),
    (lambda c: c.dataset.__setitem__("class_subset", [1, 2]),
     r"cannot be combined with config.dataset.class_subset"),
])
def test_bad_entries_fail_validation(mutate, match):
  c = ml_collections.ConfigDict(config_lib.to_plain(_config()))   # untyped: any value goes in
  config_lib.validate(c)
  mutate(c)
  with pytest.raises(ValueError, match=match):
    config_lib.validate(c)


def test_helper_rejects_unknown_fields():
  with pytest.raises(TypeError, match="splt"):
    extra_dataset("synthetic", splt="test")


def test_labels_and_channels_are_checked_on_the_real_data():
  config = _config()
  kw = dict(image_shape=SHAPE, batch_size=8, num_shards=1)
  with pytest.raises(ValueError, match=r"extra_datasets\[0\] \('synthetic', split 'test'\): labels range "
                                       r"over \[0, 99\] "
                                       r"but the model has 50 classes"):
    evaluate.extra_pipelines(config, num_classes=50, **kw)
  config.final_eval.extra_datasets = (extra_dataset("synthetic", kwargs={
      "num_examples": 8, "image_shape": (32, 32, 1), "num_classes": 100}),)
  with pytest.raises(ValueError, match=r"images have 1 channels but the model takes 3"):
    evaluate.extra_pipelines(config, num_classes=100, **kw)


def test_doctests():
  result = doctest.testmod(evaluate)
  assert result.attempted > 0 and result.failed == 0
