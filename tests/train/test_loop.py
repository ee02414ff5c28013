"""train_and_evaluate: resume after SIGTERM, non-finite stop, logs, compile-once, start epoch."""

from __future__ import annotations

import json
import os
import signal

import jax
import ml_collections
import numpy as np
import pytest

from disc_jax.train import Checkpointer, Interrupted, SignalGuard, aux_loss, build, train_and_evaluate
from disc_jax.train.step import nonfinite_message as _nonfinite_message
from disc_jax.train.state import learning_rate


def _resume_config(tiny):
  config = tiny()
  config.num_epochs = 3                        # 8 steps an epoch -> 24 steps
  config.checkpoint_every = 4
  config.keep_checkpoints = 2
  config.schedule = ml_collections.ConfigDict(
      {"name": "reduce_on_plateau", "kwargs": {"patience": 1, "rtol": 0.5}})
  config.aux_losses = [aux_loss("center", 0.1, center_update="wen", alpha=0.5)]
  return config


def _final_state(workdir, like):
  ckpt = Checkpointer(workdir / "checkpoints")
  state, meta = ckpt.restore(like)
  ckpt.close()
  return state, meta


def test_interrupted_run_resumes_to_the_same_params(tiny, tmp_path):
  config = _resume_config(tiny)
  full = train_and_evaluate(config, tmp_path / "full", progress=False)

  def sigterm_at_10(step, state, metrics):
    if step == 10:
      os.kill(os.getpid(), signal.SIGTERM)

  with pytest.raises(Interrupted) as info:
    train_and_evaluate(config, tmp_path / "cut", callbacks=[sigterm_at_10], progress=False)
  assert info.value.step == 10 and info.value.signum == signal.SIGTERM
  assert 10 in Checkpointer(tmp_path / "cut" / "checkpoints").all_steps()
  ckpt = Checkpointer(tmp_path / "cut" / "checkpoints")
  first_part_s = ckpt.restore(build(config).init(), step=10)[1]["train_time_s"]
  ckpt.close()
  resumed = train_and_evaluate(config, tmp_path / "cut", progress=False)

  like = build(config).init()
  a, meta_a = _final_state(tmp_path / "full", like)
  b, meta_b = _final_state(tmp_path / "cut", like)
  assert int(a.step) == int(b.step) == 24
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)
  # Loop bookkeeping equal, except the wall time, which sums both processes of the cut run.
  time_a, time_b = meta_a.pop("train_time_s"), meta_b.pop("train_time_s")
  assert meta_a == meta_b and time_a > 0 and time_b > 0
  assert resumed["train_time_s"] >= time_b > first_part_s
  assert 0 < resumed["median_step_s"] < resumed["train_time_s"] / 10
  assert float(learning_rate(lambda s: 1.0, 0, a.opt_state)) < 1.0   # the plateau acted, resumed too
  assert resumed["accuracy"] == pytest.approx(full["accuracy"])
  assert resumed["cross_entropy"] == pytest.approx(full["cross_entropy"], rel=1e-5)

  # Logs: JSONL with train/eval/final records, TensorBoard events, kept checkpoints.
  records = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").open()]
  splits = {r["split"] for r in records}
  assert splits == {"train", "eval", "final"}
  assert [r["step"] for r in records if r["split"] == "eval"] == [8, 16, 24]
  assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "full" / "tensorboard").iterdir())
  steps = Checkpointer(tmp_path / "full" / "checkpoints", best_metric="accuracy").all_steps()
  assert steps[-2:] == [20, 24] and len(steps) <= 3   # last 2 + the best one
  final = json.loads((tmp_path / "full" / "final_metrics.json").read_text())
  for key in ("accuracy", "cross_entropy", "intra_class_std", "nearest_centroid_accuracy/train",
              "nearest_centroid_accuracy/center", "fisher_score", "train/intra_class_std",
              "intra_class_std/class_0", "train/intra_class_std/class_0"):
    assert key in final


def test_nonfinite_loss_stops_with_the_term_named(tiny, tmp_path):
  config = tiny()
  config.optimizer.learning_rate = 1e30        # the first update sends the weights to ~1e30
  config.aux_losses = [aux_loss("snnl", 1.0)]
  with pytest.raises(FloatingPointError, match=r"non-finite loss at step \d+: cls_loss=nan"):
    train_and_evaluate(config, tmp_path / "nan", progress=False)
  records = [json.loads(line) for line in (tmp_path / "nan" / "metrics.jsonl").open()]
  assert records[-1]["finite"] == 0.0
  assert not (tmp_path / "nan" / "checkpoints").exists() or not any(
      (tmp_path / "nan" / "checkpoints").iterdir())


def test_nonfinite_message_names_terms():
  m = {"loss": float("nan"), "cls_loss": 0.5, "loss/sigma2r": float("nan"), "loss/center": 1.0,
       "grad_norm": float("nan")}
  msg = _nonfinite_message(7, m)
  assert "step 7" in msg and "loss/sigma2r=nan" in msg and "loss/center" not in msg
  m = {"loss": 1.0, "cls_loss": 0.5, "loss/center": 0.5, "grad_norm": float("inf")}
  assert "non-finite gradient at step 3: grad_norm=inf" in _nonfinite_message(3, m)


def test_start_epoch_switches_weight_without_recompiling(tiny, traced_once):
  config = tiny()
  config.aux_losses = [aux_loss("gini", 0.5, input="last_conv", start_epoch=2)]  # epochs from 1
  run = build(config)
  train_step = traced_once(run)
  state = run.init()
  weights = []
  for step in range(2 * run.steps_per_epoch):
    state, m = train_step(state, run.shard(run.train_pipeline.batch(step)))
    weights.append(float(m["weight/gini"]))
    assert np.isfinite(float(m["loss/gini"]))
  spe = run.steps_per_epoch
  assert weights == [0.0] * spe + [0.5] * spe


def test_signal_guard_turns_sigint_into_a_flag_and_restores_the_handler():
  before = signal.getsignal(signal.SIGINT)
  with SignalGuard() as guard:
    os.kill(os.getpid(), signal.SIGINT)        # would be KeyboardInterrupt without the guard
    assert guard.requested and guard.signum == signal.SIGINT
  assert signal.getsignal(signal.SIGINT) is before
