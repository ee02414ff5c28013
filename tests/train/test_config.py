"""Config schema: bad configs fail before any compile, with the valid choices in the message."""

from __future__ import annotations

import jax
import ml_collections
import pytest

from configs import base, default
from disc_jax.train import config as config_lib
from disc_jax.train import objective


def _cfg():
  return base.get_config()


def test_base_and_default_configs_validate():
  config_lib.validate(_cfg())
  assert list(default.RUNS) == ["cross_entropy", "center_loss", "center_loss_matched",
                                "sigma2r"]  # panel order kept
  for name in default.RUNS:
    config_lib.validate(default.get_config(f"run={name}"))
  config = default.get_config("run=sigma2r")
  (entry,) = config.aux_losses
  assert entry.name == "sigma2r" and entry.weight == default.LAMBDA
  assert entry.param_optimizer.learning_rate == 0.1
  assert objective.param_labels(config) == {"sigma2r": "aux:sigma2r"}
  assert not default.get_config().aux_losses          # no argument: the first run
  with pytest.raises(ValueError, match=r"unknown run 'sigma'; this config's runs are"):
    default.get_config("run=sigma")
  with pytest.raises(ValueError, match=r"expected 'run=<name>'"):
    default.get_config("sigma2r")


@pytest.mark.parametrize("mutate, match", [
    (lambda c: setattr(c, "bogus", 1), r"unknown key\(s\) \['bogus'\]; valid keys: \[.*'batch_size'"),
    (lambda c: c.optimizer.__setitem__("lr", 0.1), r"config.optimizer: unknown key\(s\) \['lr'\].*learning_rate"),
    (lambda c: setattr(c.model, "name", "lenet7"), r"config.model: unknown model name 'lenet7'; known names: lenet5"),
    (lambda c: c.model.kwargs.__setitem__("width", 3), r"lenet_pp does not take keyword argument\(s\) \['width'\]"),
    (lambda c: setattr(c.dataset, "name", "mnist3"), r"config.dataset.name: unknown dataset 'mnist3'; known names:.*fuzzy_rgb"),
    (lambda c: setattr(c.optimizer, "name", "rmsprop"), r"unknown optimizer 'rmsprop'; valid choices: \['adam', 'adamax', 'adamw', 'sgd'\]"),
    (lambda c: c.optimizer.kwargs.__setitem__("beta1", 0.9), r"optimizer 'adam': unknown kwargs \['beta1'\]; valid: \['b1', 'b2', 'eps'\]"),
    (lambda c: setattr(c.schedule, "name", "linear"), r"unknown schedule 'linear'; valid choices: \['constant', 'cosine'"),
    (lambda c: setattr(c.classification_loss, "name", "arcface"), r"classification_loss.name: unknown 'arcface'; valid choices: \['softmax_ce'"),
    (lambda c: setattr(c, "aux_losses", [base.aux_loss("triplet")]), r"aux_losses\[0\].name: unknown 'triplet'; valid choices: \['gini'"),
    (lambda c: setattr(c, "aux_losses", [base.aux_loss("snnl", kwargs={"temp": 1.0})]), r"aux_losses\[0\] \(snnl\): .*unexpected keyword argument 'temp'; set only keywords the loss function takes"),
    (lambda c: setattr(c.classification_loss, "kwargs", {"margin": 2}), r"config.classification_loss: .*unexpected keyword argument 'margin'"),
    (lambda c: setattr(c, "aux_losses", [base.aux_loss("group_softmax", input="last_conv")]), r"input 'last_conv'; valid choices: \['features'\]"),
    (lambda c: setattr(c, "aux_losses", [base.aux_loss("sigma2r", center_update="wen")]), r"center_update='wen' is only for the 'center' loss"),
    (lambda c: setattr(c, "aux_losses", [base.aux_loss("snnl", param_optimizer=base.optimizer("adam", 0.1))]), r"snnl has no loss params"),
    (lambda c: setattr(c, "aux_losses", [base.aux_loss("center", param_optimizer=base.optimizer("lion", 0.1))]), r"param_optimizer: unknown optimizer 'lion'"),
    (lambda c: setattr(c, "aux_losses", [ml_collections.ConfigDict({"name": "center", "wieght": 1.0})]), r"aux_losses\[0\]: unknown key\(s\) \['wieght'\]"),
    (lambda c: setattr(c.optimizer, "learning_rate", -0.1), r"config.optimizer.learning_rate must be a finite number > 0"),
    (lambda c: setattr(c.optimizer, "learning_rate", float("inf")), r"config.optimizer.learning_rate must be a finite number > 0"),
    (lambda c: setattr(c, "label_smoothing", 1.5), r"label_smoothing must lie in \[0, 1\)"),
    (lambda c: setattr(c, "aux_losses", [base.aux_loss("center", float("nan"))]), r"config.aux_losses\[0\].weight=nan: a config field must be a finite number"),
    (lambda c: c.model.kwargs.__setitem__("scale", float("-inf")), r"config.model.kwargs.scale=-inf: a config field must be a finite number"),
    (lambda c: setattr(c.optimizer, "weight_decay", -1e-4), r"config.optimizer.weight_decay must be a number >= 0"),
    (lambda c: setattr(c, "batch_size", jax.device_count() * 4 + 2), r"config.batch_size=\d+ must be divisible by the \d+ devices.*config.num_devices"),
    (lambda c: setattr(c, "num_devices", jax.device_count() + 1), r"config.num_devices must lie in \[1, \d+\]"),
    (lambda c: setattr(c, "init_from", "/nonexistent/run"), r"config.init_from: /nonexistent/run is not a directory"),
    (lambda c: setattr(c, "batch_size", 0), r"config.batch_size must be a positive int"),
    (lambda c: setattr(c, "best_mode", "up"), r"best_mode must be 'max' or 'min'"),
    (lambda c: setattr(c, "augment", ("jitter",)), r"config.augment: unknown augmentation 'jitter'"),
])
def test_bad_config_fails_with_choices(mutate, match):
  config = _cfg()
  mutate(config)
  with pytest.raises(config_lib.ConfigError, match=match):
    config_lib.validate(config)


def test_label_smoothing_only_where_supported():
  config = _cfg()
  config.classification_loss.name = "group_softmax"
  config.label_smoothing = 0.1
  with pytest.raises(ValueError, match=r"label_smoothing=0.1 applies to 'softmax_ce' only, "
                                       r"not 'group_softmax'"):
    config_lib.validate(config)


def test_loss_needing_head_rejects_headless_model():
  config = _cfg()
  config.dataset.name = "synthetic"
  config.dataset.kwargs = ml_collections.ConfigDict({"image_shape": (8, 8, 1)})
  config.model.name = "resnet17"
  config.model.kwargs = ml_collections.ConfigDict({"stem": "cifar"})
  config.aux_losses = [base.aux_loss("group_softmax")]
  with pytest.raises(ValueError, match=r"needs the classifier params\['head'\]"):
    config_lib.validate(config)


def test_aux_loss_helper_fills_defaults():
  entry = config_lib.to_plain(base.aux_loss("center", 0.5, start_epoch=10))
  assert entry["param_optimizer"]["name"] == "shared" and entry["center_update"] == "gradient"
  assert entry["weight"] == 0.5 and entry["start_epoch"] == 10 and entry["input"] == "features"
  with pytest.raises(TypeError, match="lamda"):
    base.aux_loss("center", lamda=0.1)


def test_duplicate_aux_losses_get_unique_labels():
  entries = [base.aux_loss("gini", 0.5, input="last_conv", start_epoch=10),
             base.aux_loss("gini", 0.5), base.aux_loss("kl", 0.5)]
  assert objective.term_labels(entries) == ["gini", "gini_1", "kl"]


def test_validation_runs_once_per_run(monkeypatch, tiny, tmp_path):
  from disc_jax.train import loop
  calls = []
  monkeypatch.setattr(loop, "validate", lambda c: calls.append(1) or config_lib.validate(c))
  config = tiny()
  config.num_steps = 1
  loop.train_and_evaluate(config, tmp_path, progress=False)
  assert calls == [1]


def test_locked_config_rejects_typos_on_assignment():
  config = _cfg()
  config.lock()
  with pytest.raises(AttributeError, match="batch_sise"):
    config.batch_sise = 3
