"""experiments.fault_losses: the report is written, and the judge can fail."""

from __future__ import annotations

import dataclasses
import re

import jax.numpy as jnp
import numpy as np

from disc_jax import losses
from experiments import fault_losses as fl


def test_every_public_loss_has_a_battery():
  public = {n for n in losses.__all__ if n.endswith("_loss") or n == "mmd"}
  assert set(fl.specs()) == public
  for spec in fl.specs().values():   # every case builds (or does not apply) without error
    base = spec.make(np.random.default_rng(0))
    assert any(case.build(spec, base) is not None for case in fl.cases_for(spec))


def test_report_on_two_losses(tmp_path, capsys):
  out = tmp_path / "reliability.md"
  assert fl.main(["--out", str(out), "--losses", "center_loss,sigsoftmax_loss",
                  "--modes", "eager"]) == 0
  printed = capsys.readouterr().out
  m = re.search(r"(\d+) of (\d+) direct loss calls clean", printed)
  assert m and int(m.group(2)) > 40 and int(m.group(1)) <= int(m.group(2))
  text = out.read_text()
  assert "- command: `python -m experiments.fault_losses --out" in text
  assert re.search(r"- git commit: `([0-9a-f]{40}|unknown)", text)
  assert re.search(r"\| `center_loss` \| \d+ \| \d+ \| \d+ \|", text)
  assert "### `sigsoftmax_loss`" in text
  # An inf center gives NaN, as an inf feature does: every center_loss call is clean.
  assert re.search(r"### `center_loss`: 0 unclean of \d+", text)
  assert "inf_centers" not in text.split("## Unclean calls")[1]


def _fake(name: str, fn) -> fl.LossSpec:
  return dataclasses.replace(fl.specs()["center_loss"], name=name, fn=fn)


def _verdicts(spec: fl.LossSpec, cases: list[str]) -> dict[tuple[str, str], bool]:
  return {(r.case, r.mode): r.clean for r in fl.run_loss(spec, cases=cases)}


def test_the_judge_flags_a_loss_that_hides_nan():
  def hides_nan(features, labels, centers, **kw):
    value = losses.center_loss(features, labels, centers, **kw)
    return jnp.where(jnp.isnan(value), 1.0, value)

  got = _verdicts(_fake("hides_nan", hides_nan), ["valid", "nan_features", "inf_features"])
  assert got == {("valid", "eager"): True, ("valid", "jit"): True,
                 ("nan_features", "eager"): False, ("nan_features", "jit"): False,
                 ("inf_features", "eager"): False, ("inf_features", "jit"): False}


def test_the_judge_flags_clamped_labels_and_unrelated_errors():
  def clamps(features, labels, centers, **kw):   # no validation: clamps labels, crashes
    labels = jnp.asarray(labels)
    if labels.shape[0] != jnp.shape(features)[0]:
      raise IndexError("index 5 is out of bounds for axis 0 with size 5")
    return losses.center_loss(features, jnp.clip(labels, 0, fl.C - 1), centers, **kw)

  got = _verdicts(_fake("clamps", clamps), ["label_negative", "labels_short", "valid"])
  assert got[("label_negative", "eager")] is False
  assert got[("label_negative", "jit")] is False
  assert got[("labels_short", "eager")] is False
  assert got[("valid", "eager")] is True


def test_judge_rules():
  err = fl.Expect("error", ("labels",))
  named = fl.Outcome(error="ValueError", message="`labels` must have rank 1, got shape ()")
  unnamed = fl.Outcome(error="ValueError", message="rank mismatch, got shape ()")
  deep = fl.Outcome(error="IndexError", message="labels index out of bounds")
  labels_1 = fl.Outcome(error="ValueError", message="`labels_1` must lie in [0, 3)")
  assert fl.judge(err, named, mode="eager", shape=())[0]
  assert not fl.judge(err, unnamed, mode="eager", shape=())[0]
  assert not fl.judge(err, deep, mode="eager", shape=())[0]
  assert not fl.judge(err, labels_1, mode="eager", shape=())[0]   # names another argument
  value = lambda v: fl.Outcome(value=np.asarray(v, np.float32))  # noqa: E731
  assert not fl.judge(err, value(0.5), mode="eager", shape=())[0]
  assert fl.judge(fl.Expect("nan"), value(np.nan), mode="jit", shape=())[0]
  assert not fl.judge(fl.Expect("nan"), value(np.inf), mode="jit", shape=())[0]
  assert not fl.judge(fl.Expect("zero"), value(np.nan), mode="eager", shape=())[0]
  assert not fl.judge(fl.Expect("empty"), value(np.nan), mode="eager", shape=())[0]
  # jit must agree with eager; overflow is clean only where the float64 value overflows.
  assert not fl.judge(fl.Expect("valid"), value(1.0), mode="jit", shape=(),
                      reference=value(1.1))[0]
  over = fl.Expect("finite_or_overflow")
  wide = lambda v: lambda: fl.Outcome(value=np.asarray(v, np.float64))  # noqa: E731
  assert fl.judge(over, value(np.inf), mode="eager", shape=(), wide=wide(1e60))[0]
  assert not fl.judge(over, value(np.inf), mode="eager", shape=(), wide=wide(2.0))[0]
  assert not fl.judge(over, value(np.nan), mode="eager", shape=(), wide=wide(1e60))[0]


def test_the_judge_flags_per_example_values_that_do_not_average_to_the_mean():
  def doubles(features, labels, centers, reduction="mean", **kw):
    value = losses.center_loss(features, labels, centers, reduction=reduction, **kw)
    return 2.0 * value if reduction == "none" else value

  got = _verdicts(_fake("doubles", doubles), ["reduction_none"])
  assert got == {("reduction_none", "eager"): False, ("reduction_none", "jit"): False}
