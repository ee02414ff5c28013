"""experiments.gpu.paper_tables: runs in parallel, tables once complete, deadline, early stop.

A stand-in for ``experiments.reproduce`` keeps these fast: it "trains" a run by writing
its ``final_metrics.json`` (or sleeps, or fails, as the test asks) and "writes" a table.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import time

import pytest

from experiments import reproduce
from experiments.gpu import paper_tables

FAKE = '''
import os, pathlib, sys, time
args = sys.argv[1:]
value = lambda flag: args[args.index(flag) + 1]
sweep, out = pathlib.Path(value("--sweep_dir")), pathlib.Path(value("--out"))
if "--rows" not in args:                       # the table's own command: read back
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text("table of " + str(sorted(p.parent.name + "/" + p.name
                                          for p in sweep.glob("*/seed_*"))))
  sys.exit(0)
run = value("--rows")
seed = next(a.split("=")[1] for a in args if a.startswith("--config.seed="))
if run in os.environ.get("FAKE_FAIL", "").split(","):
  print("boom: no such package"); sys.exit(1)
if run in os.environ.get("FAKE_SLOW", "").split(","):
  time.sleep(60)
work = sweep / run / f"seed_{seed}"
work.mkdir(parents=True, exist_ok=True)
(work / "final_metrics.json").write_text('{"accuracy": 0.5}')
'''
SWEEP = paper_tables.Sweep("itra_demo", "configs/itra/table1_fashion_mnist.py", 2,
                           "fashion_mnist", ("--config.num_epochs=3",))
RUNS = ["baseline", "lsr", "center", "itra"]   # the ITRA Table 1 config's runs, in order


@pytest.fixture
def fake(tmp_path, monkeypatch):
  script = tmp_path / "fake_reproduce.py"
  script.write_text(FAKE)
  monkeypatch.setattr(paper_tables, "REPRODUCE", (str(script),))
  monkeypatch.setattr(paper_tables, "SWEEPS", (SWEEP,))
  for var in ("FAKE_FAIL", "FAKE_SLOW"):
    monkeypatch.delenv(var, raising=False)

  def run(*extra: str) -> int:
    return paper_tables.main([
        "--data_dir", str(tmp_path / "tfds"), "--manual_dir", str(tmp_path / "data"),
        "--sweep_root", str(tmp_path / "sweeps"), "--logs", str(tmp_path / "logs"),
        "--results", str(tmp_path / "results"), "--jobs", "3", *extra])
  return run


def test_run_names_follow_the_table(fake):
  assert paper_tables.run_names(SWEEP) == RUNS


def test_every_run_trains_once_then_the_table_is_written(fake, tmp_path, capsys):
  assert fake() == 0
  table = (tmp_path / "results" / "itra_demo.md").read_text()
  assert table == "table of " + str(sorted(f"{r}/seed_{s}" for r in RUNS for s in (0, 1)))
  summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
  assert summary["written"] == ["itra_demo"] and len(summary["runs"]) == 8
  assert all(r["rc"] == 0 for r in summary["runs"])
  log = (tmp_path / "logs" / "itra_demo.lsr.1.log")
  assert log.exists()
  # The run's command is the table's, narrowed to one run and seed.
  out = capsys.readouterr().out
  assert "--config.num_epochs=3" in out and "--seeds 2" in out
  assert fake() == 0                                  # nothing left to train
  assert "0 runs to train" in capsys.readouterr().out


def test_the_deadline_stops_runs_and_a_second_call_trains_only_the_rest(fake, tmp_path,
                                                                         monkeypatch, capsys):
  monkeypatch.setenv("FAKE_SLOW", "itra")
  start = time.time()
  assert fake("--deadline_s", "4") == 1
  assert time.time() - start < 40
  out = capsys.readouterr().out
  assert "deadline: stopping" in out and "itra_demo: not written" in out
  assert not (tmp_path / "results" / "itra_demo.md").exists()
  summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
  assert {(r["run"], r["rc"] == 0) for r in summary["runs"]} >= {("baseline", True), ("itra", False)}
  monkeypatch.delenv("FAKE_SLOW")
  assert fake() == 0
  assert "2 runs to train" in capsys.readouterr().out
  assert (tmp_path / "results" / "itra_demo.md").exists()


def test_a_broken_machine_stops_after_the_first_three_failures(fake, tmp_path, monkeypatch,
                                                               capsys):
  monkeypatch.setenv("FAKE_FAIL", ",".join(RUNS))
  assert fake("--jobs", "2") == 1
  out = capsys.readouterr().out
  assert "the first 3 runs to end failed" in out and "boom: no such package" in out
  summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
  assert len(summary["runs"]) < 8                    # the queue was not worked through


def test_the_header_takes_a_stated_commit(monkeypatch):
  monkeypatch.setenv(reproduce.COMMIT_ENV, "abc123")
  assert reproduce.git_commit().startswith("abc123 (stated in $DISC_JAX_COMMIT")
  monkeypatch.delenv(reproduce.COMMIT_ENV)
  commit = reproduce.git_commit()
  assert len(commit.split("+")[0]) == 40 or commit.startswith("unknown")


def test_the_device_script_names_the_module_and_packs_the_tables():
  text = (paper_tables.ROOT / "experiments" / "gpu" / "paper_tables.sh").read_text()
  assert "python3 -m experiments.gpu.paper_tables" in text and "gpu_tables.tar.gz" in text
  assert os.access(paper_tables.ROOT / "experiments" / "gpu" / "paper_tables.sh", os.X_OK)
  assert sys.executable
