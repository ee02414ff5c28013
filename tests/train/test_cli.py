"""The command line: ``python -m experiments.train --config FILE --workdir DIR --config.x=y``."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]

TINY_JOB = '''
import ml_collections
from configs import base

RUNS = {
    "ce": {},
    "center": {"aux_losses": [base.aux_loss("center", 0.1, center_update="wen")]},
}


def get_config(arg=None):
  c = base.get_config()
  c.dataset.name = "synthetic"
  c.dataset.kwargs = ml_collections.ConfigDict(
      {"num_examples": 64, "image_shape": (12, 12, 1), "num_classes": 4})
  c.model.name = "lenet5"
  c.model.kwargs = ml_collections.ConfigDict({"feature_dim": 2})
  c.batch_size = 16
  c.num_epochs = 1
  c.final_eval.max_train_examples = 32
  return base.run_variant(c, RUNS, arg)
'''


def _run(*args, cwd=REPO):
  return subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=300)


def test_cli_runs_a_side_by_side_job_with_overrides(tmp_path):
  cfg = tmp_path / "tiny_job.py"
  cfg.write_text(TINY_JOB)
  out = _run("--config", str(cfg), "--workdir", str(tmp_path / "job"), "--progress=false",
             "--config.num_epochs=2")
  assert out.returncode == 0, out.stderr[-3000:]
  job = tmp_path / "job"
  summary = json.loads((job / "summary.json").read_text())
  assert set(summary) == {"ce", "center"}
  assert summary["ce"]["step"] == 8.0                     # 2 epochs x 4 steps
  saved = json.loads((job / "center" / "config.json").read_text())
  assert saved["aux_losses"][0]["center_update"] == "wen" and saved["num_epochs"] == 2
  assert (job / "features_side_by_side.png").stat().st_size > 1000
  assert (job / "ce" / "features_train.png").exists()
  assert "| center |" in out.stdout and "| ce |" in (job / "summary.md").read_text()


def test_cli_trains_one_run_of_a_multi_run_config(tmp_path):
  cfg = tmp_path / "tiny_job.py"
  cfg.write_text(TINY_JOB)
  out = _run(f"--config={cfg}:run=center", "--workdir", str(tmp_path / "one"),
             "--progress=false", "--config.aux_losses[0].alpha=0.25")
  assert out.returncode == 0, out.stderr[-3000:]
  saved = json.loads((tmp_path / "one" / "config.json").read_text())
  assert saved["aux_losses"][0]["alpha"] == 0.25
  assert (tmp_path / "one" / "final_metrics.json").exists()
  assert not (tmp_path / "one" / "summary.json").exists()


def test_cli_rejects_a_bad_config_before_compiling(tmp_path):
  cfg = tmp_path / "tiny_job.py"
  cfg.write_text(TINY_JOB)
  out = _run("--config", str(cfg), "--workdir", str(tmp_path / "bad"), "--config.batch_sise=3")
  assert out.returncode != 0 and "batch_sise" in out.stderr   # ml_collections: locked config
  out = _run("--config", str(cfg), "--workdir", str(tmp_path / "bad"),
             "--config.model.name=lenet7")
  assert out.returncode != 0
  assert "unknown model name 'lenet7'; known names: lenet5" in out.stderr
  assert not (tmp_path / "bad").exists()
