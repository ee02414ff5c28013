"""experiments.tables (paper vs ours), experiments._seeds (resumable seed sweeps), reproduce."""

from __future__ import annotations

import json
import pathlib
import math

import ml_collections
import pytest

from configs import base, paper
from disc_jax.train.config import to_plain
from experiments import reproduce, tables
from experiments._seeds import config_differences, run_seeds, seed_workdir

ACC = paper.Column("acc (%)", "accuracy", scale=100.0)
ERR = paper.Column("err (%)", "accuracy", scale=-100.0, offset=100.0)
BEST = paper.Column("max (%)", "accuracy", scale=100.0, stat="max")
TIME = paper.Column("time / CE", "train_time_s", relative_to="ce")
PER = paper.Column("std", "std{cls}", digits=3)
TABLE = paper.Table("demo", "Table 9", "demo", columns=(ACC, ERR, BEST, TIME, PER), rows=(
    paper.Row("baseline", "ce", {ACC.name: (70.0, 0.5), ERR.name: 30.0}, params={"cls": ""}),
    paper.Row("ours", "ours", {ACC.name: 72.0, BEST.name: 73.0}, params={"cls": ""}),
    paper.Row("ours, class 0", "ours", {PER.name: 0.25}, params={"cls": "/class_0"}),
    paper.Row("not runnable", None, {ACC.name: 1.0}, note="needs X")))
RESULTS = {"ce": [{"accuracy": 0.70, "train_time_s": 10.0, "std": 1.0},
                  {"accuracy": 0.72, "train_time_s": 12.0, "std": 1.0}],
           "ours": [{"accuracy": 0.73, "train_time_s": 22.0, "std": 0.5},
                    {"accuracy": 0.75, "train_time_s": 22.0, "std": 0.5}]}


def test_aggregate_mean_sample_std_max():
  s = tables.aggregate([1.0, 2.0, 6.0])
  assert (s.mean, s.max, s.n) == (3.0, 6.0, 3)
  assert math.isclose(s.std, math.sqrt(7.0))
  assert tables.aggregate([4.0]).std == 0.0
  assert tables.aggregate([]) is None


def test_cells_convert_units_and_pick_stats():
  base_row, ours_row, class_row, dead_row = TABLE.rows
  assert tables.ours(ACC, base_row, RESULTS).mean == pytest.approx(71.0)
  assert tables.ours(ERR, base_row, RESULTS).mean == pytest.approx(29.0)
  assert tables.ours(BEST, ours_row, RESULTS).max == pytest.approx(75.0)
  assert tables.ours(TIME, ours_row, RESULTS).mean == pytest.approx(2.0)   # 22 / mean(10, 12)
  assert tables.ours(PER, class_row, RESULTS) == "missing"                # no 'std/class_0'
  assert tables.ours(ACC, dead_row, RESULTS) == "not run"
  assert tables.ours(ACC, base_row, {}) == "not run"


def test_comparison_markdown_has_paper_ours_and_difference():
  text = tables.comparison_markdown(TABLE, RESULTS)
  lines = text.splitlines()
  assert lines[0].startswith("| row | run | acc (%) paper | acc (%) ours | Δ |")
  baseline = next(line for line in lines if line.startswith("| baseline |"))
  cells = [c.strip() for c in baseline.strip("|").split("|")]
  assert cells[2:5] == ["70.00 ± 0.50", "71.00 ± 1.41", "+1.00"]
  assert cells[5:8] == ["30.00", "29.00 ± 1.41", "-1.00"]
  ours = next(line for line in lines if line.startswith("| ours |"))
  assert "75.00 | +2.00" in ours       # the max column: best seed vs the paper's max
  assert "- not runnable: needs X" in text
  assert "2 seed(s)" in text


def test_table_rejects_figures_for_unknown_columns():
  with pytest.raises(ValueError, match="unknown columns"):
    paper.Table("p", "T", "t", columns=(ACC,), rows=(paper.Row("r", "r", {"nope": 1.0}),))
  with pytest.raises(ValueError, match="stat"):
    paper.Column("x", "accuracy", stat="median")


def test_load_rejects_files_without_table(tmp_path):
  with pytest.raises(ValueError, match="not under"):
    tables.load(tmp_path / "x.py")
  with pytest.raises(ValueError, match="defines no TABLE"):
    tables.load(tables.CONFIG_ROOT / "default.py")


def _tiny_config(**fields) -> dict[str, ml_collections.ConfigDict]:
  """Two runs, 'ce' and 'ours' (label smoothing 0.1), with ``fields`` set in both."""
  runs = {"ce": {}, "ours": {"label_smoothing": 0.1}}
  return {name: base.with_fields(base.get_config(), {**partial, **fields})
          for name, partial in runs.items()}


class FakeTrain:
  """Writes config.json and final_metrics.json like train_and_evaluate; counts calls."""

  def __init__(self):
    self.calls = []

  def __call__(self, config, workdir, progress=True):
    self.calls.append((str(workdir), int(config.seed)))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(to_plain(config), indent=2, default=str))
    metrics = {"accuracy": 0.5 + 0.01 * config.seed + config.label_smoothing,
               "train_time_s": 1.0}
    (workdir / "final_metrics.json").write_text(json.dumps(metrics))
    return metrics


def test_run_seeds_trains_each_run_and_seed_once_then_reads_back(tmp_path):
  fake = FakeTrain()
  config = _tiny_config()
  first = run_seeds(config, tmp_path, seeds=[3, 4], train_fn=fake, log=lambda s: None)
  assert sorted(fake.calls) == sorted((str(seed_workdir(tmp_path, r, s)), s)
                                      for r in ("ce", "ours") for s in (3, 4))
  assert [m["accuracy"] for m in first["ours"]] == pytest.approx([0.63, 0.64])
  again = run_seeds(config, tmp_path, seeds=[3, 4, 5], runs=["ours"], train_fn=fake,
                    log=lambda s: None)
  assert len(fake.calls) == 5                      # only ('ours', 5) was new
  assert again["ours"][:2] == first["ours"]


def test_run_seeds_trains_every_run_at_a_seed_before_the_next_seed(tmp_path):
  # A sweep stopped part-way then has every row at its first seeds.
  fake = FakeTrain()
  run_seeds(_tiny_config(), tmp_path, seeds=[0, 1], train_fn=fake, log=lambda s: None)
  assert [(pathlib.Path(w).parent.name, s) for w, s in fake.calls] == [
      ("ce", 0), ("ours", 0), ("ce", 1), ("ours", 1)]


def test_run_seeds_refuses_a_workdir_of_another_config(tmp_path):
  fake = FakeTrain()
  run_seeds(_tiny_config(), tmp_path, seeds=[0], runs=["ce"], train_fn=fake, log=lambda s: None)
  changed = _tiny_config(batch_size=64)
  with pytest.raises(ValueError, match=r"different config .*batch_size"):
    run_seeds(changed, tmp_path, seeds=[0], runs=["ce"], train_fn=fake, log=lambda s: None)
  relogged = _tiny_config(log_every=1)             # logging cadence does not matter
  run_seeds(relogged, tmp_path, seeds=[0], runs=["ce"], train_fn=fake, log=lambda s: None)
  assert len(fake.calls) == 1


def test_run_seeds_rejects_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match="unknown run"):
    run_seeds(_tiny_config(), tmp_path, seeds=[0], runs=["nope"], train_fn=FakeTrain())
  with pytest.raises(ValueError, match="distinct"):
    run_seeds(_tiny_config(), tmp_path, seeds=[1, 1], train_fn=FakeTrain())
  with pytest.raises(ValueError, match="at least one"):
    run_seeds(_tiny_config(), tmp_path, seeds=[], train_fn=FakeTrain())


def test_config_differences_ignores_paths_and_logging():
  c = base.get_config()
  saved = json.loads(json.dumps(to_plain(c), default=str))
  saved["dataset"]["manual_dir"] = "/elsewhere"
  saved["optimizer"]["learning_rate"] = 0.5
  assert config_differences(saved, c) == ["optimizer.learning_rate"]


def test_config_differences_accepts_a_saved_config_older_than_new_schema_fields():
  """A config.json written before init_from / class_subset / extra_datasets existed still
  matches when the config has their defaults, and not when it sets them."""
  c = base.get_config()
  saved = json.loads(json.dumps(to_plain(c), default=str))
  for key in ("init_from", "init_from_skip"):
    del saved[key]
  del saved["dataset"]["class_subset"]
  del saved["final_eval"]["extra_datasets"]
  assert config_differences(saved, c) == []
  c.init_from = "/some/run"
  c.final_eval.extra_datasets = (base.extra_dataset("caltech101_cifar100"),)
  assert config_differences(saved, c) == ["final_eval.extra_datasets", "init_from"]


def test_reproduce_writes_header_table_and_json(tmp_path):
  fake = FakeTrain()
  out = tmp_path / "results" / "demo.md"
  text = reproduce.reproduce(TABLE, _tiny_config(), seeds=[0, 1], out=out,
                             sweep_dir=tmp_path / "sweep", command="python -m x --y",
                             train_fn=fake, log=lambda s: None)
  assert out.read_text() == text
  assert "- command: `python -m x --y`" in text and "- seeds: 0, 1" in text
  assert "- git commit: `" in text and "wall time" in text
  saved = json.loads(out.with_suffix(".json").read_text())
  assert set(saved["results"]) == {"ce", "ours"} and len(saved["results"]["ce"]) == 2
  reproduce.reproduce(TABLE, _tiny_config(), seeds=[0, 1], out=out,
                      sweep_dir=tmp_path / "sweep", train_fn=fake, log=lambda s: None)
  assert len(fake.calls) == 4                      # the second call trained nothing
  assert "- changed from the table config by the command: nothing" in text


def test_reproduce_row_seeds_gives_some_runs_more_seeds_after_every_first_seed(tmp_path):
  fake = FakeTrain()
  text = reproduce.reproduce(TABLE, _tiny_config(), seeds=[0], out=tmp_path / "r.md",
                             sweep_dir=tmp_path / "sweep", train_fn=fake, log=lambda s: None,
                             row_seeds=reproduce.parse_row_seeds(["ours=3"], 0))
  # every run's first seed first, then the extra seeds of the named run
  assert [(pathlib.Path(w).parent.name, s) for w, s in fake.calls] == [
      ("ce", 0), ("ours", 0), ("ours", 1), ("ours", 2)]
  assert "- seeds: 0 (ours: 0, 1, 2)" in text
  saved = json.loads((tmp_path / "r.json").read_text())
  assert [len(saved["results"][r]) for r in ("ce", "ours")] == [1, 3]
  with pytest.raises(ValueError, match="run=N"):
    reproduce.parse_row_seeds(["ours"], 0)
  with pytest.raises(ValueError, match="outside this sweep"):
    reproduce.reproduce(TABLE, _tiny_config(), seeds=[0], out=tmp_path / "r.md",
                        sweep_dir=tmp_path / "sweep", train_fn=fake, log=lambda s: None,
                        row_seeds={"nope": [0, 1]})


def test_reproduce_header_names_what_the_command_changed(tmp_path):
  n = base.get_config().num_epochs
  # where the files are (manual_dir) is not a change
  reduced = _tiny_config(num_epochs=n + 3, dataset={"manual_dir": "/elsewhere"})
  text = reproduce.reproduce(TABLE, reduced, seeds=[0], out=tmp_path / "r.md",
                             sweep_dir=tmp_path / "sweep", train_fn=FakeTrain(),
                             log=lambda s: None, defaults=_tiny_config())
  assert f"- changed from the table config by the command: `num_epochs: {n} -> {n + 3}`" in text


def test_run_fields_merge_sections_and_replace_kwargs_and_lists():
  c = base.get_config()
  c.schedule.kwargs = ml_collections.ConfigDict({"alpha": 0.1})
  c.aux_losses = [base.aux_loss("center", 0.1)]
  got = base.with_fields(c, {"schedule": {"kwargs": {"per_epoch": False}},
                             "aux_losses": [base.aux_loss("snnl", 1.0)], "optimizer": {
                                 "learning_rate": 0.5}})
  assert got.schedule.kwargs.to_dict() == {"per_epoch": False} and got.schedule.name == "constant"
  assert [e.name for e in got.aux_losses] == ["snnl"]
  assert got.optimizer.learning_rate == 0.5 and got.optimizer.name == "adam"


def test_index_lists_every_table_config():
  text = tables.index_markdown()
  assert text.count("\n") == len(tables.table_configs()) + 2
  assert "| configs/group_softmax/table2_food101.py | group_softmax_loss | Table 2 | 44 |" in text


def test_median_step_seconds_skips_compile_and_resume(tmp_path):
  from disc_jax.train.logging import median_step_seconds
  lines = [{"step": 50, "split": "train", "time": 20.0},     # compile inside: no difference
           {"step": 100, "split": "train", "time": 25.0},    # 0.1 s/step
           {"step": 100, "split": "eval", "time": 30.0},     # eval lines are not steps
           {"step": 150, "split": "train", "time": 35.0},    # 0.2 s/step (holds the eval)
           {"step": 200, "split": "train", "time": 40.0},    # 0.1
           {"step": 250, "split": "train", "time": 12.0},    # resumed: time restarted
           {"step": 300, "split": "train", "time": 17.0}]    # 0.1
  (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
  assert median_step_seconds(tmp_path) == pytest.approx(0.1)
  assert median_step_seconds(tmp_path / "absent") is None


def test_run_seeds_adds_the_median_step_time(tmp_path):
  fake = FakeTrain()
  workdir = seed_workdir(tmp_path, "ce", 0)
  workdir.mkdir(parents=True)
  (workdir / "metrics.jsonl").write_text("".join(
      json.dumps({"step": s, "split": "train", "time": 0.5 * s}) + "\n" for s in (10, 20, 30)))
  out = run_seeds(_tiny_config(), tmp_path, seeds=[0], runs=["ce"], train_fn=fake,
                  log=lambda s: None)
  assert out["ce"][0]["median_step_s"] == pytest.approx(0.5)


def test_exit_on_stop_turns_stops_into_exit_codes(capsys):
  from disc_jax.train import Interrupted
  from experiments._cli import exit_on_stop
  with pytest.raises(SystemExit) as info, exit_on_stop():
    raise Interrupted(15, 7)
  assert info.value.code == 128 + 15 and "step 7" in capsys.readouterr().err
  with pytest.raises(SystemExit) as info, exit_on_stop():
    raise FloatingPointError("loss/gini is nan")
  assert info.value.code == 1 and "stopped: loss/gini is nan" in capsys.readouterr().err
  with pytest.raises(KeyError), exit_on_stop():   # anything else is a bug: not swallowed
    raise KeyError("x")


def test_run_variants_keep_field_types_for_command_line_overrides():
  # --config.dataset.manual_dir=... needs the placeholder's type (str) on every run's config.
  from ml_collections.config_flags import config_path  # noqa: PLC0415

  from configs import default  # noqa: PLC0415
  config = default.get_config("run=sigma2r")
  assert config_path.get_type("dataset.manual_dir", config) is str
  config_path.set_value("dataset.manual_dir", config, "/data")
  assert config.dataset.manual_dir == "/data"


def test_a_finished_run_with_unreadable_final_metrics_is_evaluated_again(tmp_path):
  fake = FakeTrain()
  configs = _tiny_config()
  run_seeds(configs, tmp_path, seeds=[0], runs=["ce"], train_fn=fake, log=lambda s: None)
  (seed_workdir(tmp_path, "ce", 0) / "final_metrics.json").write_text("{garbage")
  again = run_seeds(configs, tmp_path, seeds=[0], runs=["ce"], train_fn=fake, log=lambda s: None)
  assert len(fake.calls) == 2 and again["ce"][0]["accuracy"] == 0.5
  (seed_workdir(tmp_path, "ce", 0) / "config.json").write_text("{garbage")
  with pytest.raises(ValueError, match="config.json does not read back"):
    run_seeds(configs, tmp_path, seeds=[0], runs=["ce"], train_fn=fake, log=lambda s: None)
