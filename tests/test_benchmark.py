"""The benchmark helpers on tiny shapes: report structure, positive finite ratios (no timing asserts)."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import _bench as bm
from disc_jax import models
from experiments import _bench_report, _bench_sections, benchmark

TINY_LENET = {"lenet5": {**_bench_sections.MODELS["lenet5"], "batch": 8}}


def _finite_positive(summary):
  return all(math.isfinite(summary[k]) and summary[k] > 0
             for k in ("median", "q1", "q3", "min", "max"))


def test_ratio_summary_is_per_round():
  times = {"ce": [1.0, 2.0, 4.0], "x": [1.5, 2.0, 4.4]}
  out = bm.ratio_summary(times, "ce", {"x": 0.5})
  assert out["ce"]["median"] == 1.0
  np.testing.assert_allclose([out["x"]["min"], out["x"]["median"], out["x"]["max"]],
                             [0.5, 0.55, 0.75])


def test_interleaved_round_robin_order():
  calls = []
  runners = {k: (lambda n, k=k: calls.append((k, n)) or 1.0) for k in "abc"}
  times = bm.interleaved(runners, rounds=3, steps=2, warmup=1)
  assert calls[:3] == [("a", 1), ("b", 1), ("c", 1)]             # warm-up
  assert [k for k, _ in calls[3:]] == list("abc" "bca" "cab")   # rotated rounds
  assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_overhead_section_structure():
  out = _bench_sections.overhead(TINY_LENET, losses=("center", "itra", "gini"),
                                 rounds={"lenet5": 2}, steps={"lenet5": 1}, matmul_n=64)
  r = out["lenet5"]
  assert set(r["ratio_per_step"]) == {"ce", "center", "itra", "gini"}
  assert r["samples_per_step"] == {"ce": 8, "center": 8, "itra": 16, "gini": 8}
  assert r["loss_dims"] == {"center": 84, "itra": 84, "gini": 16}   # features / last_conv
  assert set(r["loss_alone_over_ce_step"]) == {"ce", "center", "itra", "gini"}
  assert all(_finite_positive(s) for s in r["loss_alone_over_ce_step"].values())
  assert all(v > 0 and math.isfinite(v) for v in r["ratio_of_min_times"].values())
  for table in ("ratio_per_step", "ratio_per_sample", "seconds"):
    assert all(_finite_positive(s) for s in r[table].values())
  # ITRA per sample seen is its per-step ratio halved, round by round.
  assert r["ratio_per_sample"]["itra"]["median"] == pytest.approx(
      r["ratio_per_step"]["itra"]["median"] / 2)
  assert r["flops"]["ce"] > 0 and _finite_positive(r["ceiling"]["fraction"])
  record = {"command": "c", "machine": bm.machine_info(), "wall_s": 1.0, "load_end": None,
            "data": out}
  text = _bench_report.render({"overhead_lenet5": record})
  assert "## Overhead of each auxiliary loss: LeNet-5" in text and "| itra |" in text


def test_scaling_point_reports_memory_against_pair_matrix():
  row = bm.loss_scaling_point("itra", 16, 8, repeats=1)
  assert row["pair_matrix_bytes"] == (2 * 16) ** 2 * 4
  assert row["seconds"] > 0 and row["temp_bytes"] > 0
  assert row["peak_bytes"] >= row["temp_bytes"]
  assert row["temp_over_pair_matrix"] == pytest.approx(row["temp_bytes"] / row["pair_matrix_bytes"])


@pytest.mark.parametrize("name", sorted(bm.AUX_ENTRIES))
def test_every_loss_case_runs(name):
  vg, args = bm.loss_case(name, 12, 8, num_classes=3)   # D divisible by groups (1, 2, 4)
  value, grads = vg(*args)
  assert np.isfinite(float(value))
  assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)


def test_versus_torch_computes_the_same_step():
  pytest.importorskip("torch")
  out = _bench_sections.versus_torch(batch=8, rounds=1, steps=1)
  assert out["param_counts"]["disc_jax"] == out["param_counts"]["pytorch"] == 61_706
  assert out["same_weights_losses"]["max_abs_diff"] < 1e-3
  assert set(out["seconds"]) == {"disc_jax", "disc_jax_window_pool", "pytorch",
                                 "pytorch_channels_last", "disc_jax_no_donate",
                                 "disc_jax_sync_each_step"}
  assert all(_finite_positive(s) for s in out["ratios"]["pytorch"].values())


def test_cli_writes_json_and_markdown(tmp_path):
  out = tmp_path / "bench.md"
  benchmark.main(["--sections", "scaling", "--losses", "center,snnl", "--batches", "8,16",
                  "--dims", "4", "--scaling_repeats", "1", "--out", str(out)])
  records = json.loads(out.with_suffix(".json").read_text())
  assert records["scaling"]["command"].startswith("python -m experiments.benchmark")
  assert len(records["scaling"]["data"]["rows"]) == 4
  text = out.read_text()
  assert "## Scaling of each loss alone" in text and "| snnl | 16 | 4 |" in text
  assert "## GPU" in text and _bench_report.GPU_COMMAND in text


def test_cli_rejects_unknown_section():
  with pytest.raises(SystemExit):
    benchmark.parse_args(["--sections", "nope"])


def test_accelerator_section_float32_and_bfloat16_render():
  out = _bench_sections.accelerator(model="lenet5", batch=4, losses=("center",), rounds=1,
                                    steps=1, matmul_n=64)
  for dtype in ("float32", "bfloat16"):
    row = out[dtype]["center"]
    assert row["images_per_s"] > 0 and math.isfinite(row["mfu_vs_matmul"])
  machine = bm.machine_info()
  record = {"command": "c", "machine": machine, "wall_s": 1.0, "load_end": None, "data": out}
  text = _bench_report.render({"gpu": record})
  assert "#### bfloat16" in text and "| center |" in text
