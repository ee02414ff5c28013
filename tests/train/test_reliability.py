"""What a run does when things go wrong: non-finite state, a second run on the workdir, a
changed config on resume, re-runs and resumes of the logs, a corrupt checkpoint."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from disc_jax.train import (Checkpointer, ConfigError, aux_loss, build, optimizer,
                            train_and_evaluate)
from disc_jax.train import workdir as workdir_lib
from disc_jax.train.checkpoint import CorruptCheckpoint
from disc_jax.train.step import all_finite


def _rows(workdir, split):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").open()
          if json.loads(line)["split"] == split]


def _steps(workdir):
  ckpt = Checkpointer(workdir / "checkpoints")
  try:
    return ckpt.all_steps()
  finally:
    ckpt.close()


def test_all_finite_allows_infinite_scalar_bookkeeping_only_when_asked():
  inf = np.float32(np.inf)
  assert bool(all_finite({"a": np.ones(3), "n": np.int32(7)}))
  assert not bool(all_finite({"a": np.array([1.0, np.nan])}))
  assert not bool(all_finite({"best": inf}))
  assert bool(all_finite({"best": inf}, scalars_may_be_inf=True))
  assert not bool(all_finite({"best": np.float32(np.nan)}, scalars_may_be_inf=True))
  assert not bool(all_finite({"nu": np.array([1.0, np.inf])}, scalars_may_be_inf=True))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")   # the lr 1e300
def test_an_update_to_nonfinite_params_stops_before_its_checkpoint(tiny, tmp_path):
  config = tiny()
  config.optimizer = optimizer("sgd", 1e300)   # inf in float32: the first update is inf/nan
  config.checkpoint_every = 1
  with pytest.raises(FloatingPointError, match=r"non-finite parameters or optimizer state "
                     r"after the update of step 1 .* nothing was checkpointed; delete"):
    train_and_evaluate(config, tmp_path / "w", progress=False)
  assert _rows(tmp_path / "w", "train")[-1]["finite"] == 0.0
  assert _rows(tmp_path / "w", "train")[-1]["loss"] != "nan"   # the loss itself was finite
  assert not (tmp_path / "w" / "checkpoints").exists() or _steps(tmp_path / "w") == []
  assert not (tmp_path / "w" / ".lock").exists()                # released on the exception
  # Nothing was checkpointed, so another config may start afresh there; the failed rows go.
  config.optimizer = optimizer("sgd", 0.01)
  config.num_epochs = 1
  train_and_evaluate(config, tmp_path / "w", progress=False)
  assert [r["step"] for r in _rows(tmp_path / "w", "train")] == list(range(1, 9))
  assert json.loads((tmp_path / "w" / "config.json").read_text())["optimizer"]["name"] == "sgd"


def test_the_last_finite_checkpoint_is_kept_and_named(tiny, tmp_path):
  config = tiny()
  config.optimizer.learning_rate = 1e30        # finite weights after step 1, nan loss later
  config.aux_losses = [aux_loss("snnl", 1.0)]
  config.checkpoint_every = 1
  config.keep_checkpoints = 3
  work = tmp_path / "w"
  with pytest.raises(FloatingPointError) as info:
    train_and_evaluate(config, work, progress=False)
  steps = _steps(work)
  bad = int(_rows(work, "train")[-1]["step"])
  assert steps and steps[-1] == bad - 1
  msg = str(info.value)
  assert f"the latest is {work / 'checkpoints' / str(steps[-1])}" in msg
  assert f"--config.init_from={work / 'checkpoints' / str(steps[-1])}" in msg
  assert f"delete {work} to start from scratch" in msg
  ckpt = Checkpointer(work / "checkpoints")
  state, _ = ckpt.restore(build(config).init())
  ckpt.close()
  assert bool(all_finite((state.params, state.loss_params, state.batch_stats)))


def test_a_second_run_on_a_locked_workdir_refuses_naming_the_holder(tiny, tmp_path):
  work = tmp_path / "w"
  work.mkdir()
  with workdir_lib.WorkdirLock(work):
    holder = json.loads((work / ".lock").read_text())
    with pytest.raises(workdir_lib.WorkdirLocked,
                       match=rf"in use by another run \(host {socket.gethostname()}, pid "
                             rf"{os.getpid()}, since {holder['since']}\)"):
      train_and_evaluate(tiny(), work, progress=False)
    assert (work / ".lock").exists()           # the refused run left the holder's lock alone
  assert not (work / ".lock").exists()
  other = {"host": "some-other-host", "pid": 1, "since": "2026-01-01T00:00:00"}
  (work / ".lock").write_text(json.dumps(other))
  with pytest.raises(workdir_lib.WorkdirLocked, match="host some-other-host, pid 1"):
    workdir_lib.WorkdirLock(work).acquire()
  # Another host's lock untouched for longer than STALE_S: its holder was killed.
  old = time.time() - workdir_lib.STALE_S - 5
  os.utime(work / ".lock", (old, old))
  with workdir_lib.WorkdirLock(work):
    assert json.loads((work / ".lock").read_text())["pid"] == os.getpid()
  assert not (work / ".lock").exists()


def test_a_stale_lock_is_taken_over_with_a_warning(tiny, tmp_path, caplog):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  work = tmp_path / "w"
  work.mkdir()
  (work / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid,
                                          "since": "2026-01-01T00:00:00"}))
  config = tiny()
  config.num_epochs = 1
  with caplog.at_level(logging.WARNING):
    train_and_evaluate(config, work, progress=False)
  assert f"stale lock {work / '.lock'} of process {dead.pid}" in caplog.text
  assert not (work / ".lock").exists()


def test_resume_refuses_a_config_that_changes_results_and_records_allowed_changes(tiny, tmp_path):
  work = tmp_path / "w"
  config = tiny()
  config.num_epochs = 1                        # 8 steps
  first = train_and_evaluate(config, work, progress=False)
  saved = (work / "config.json").read_text()
  changed = tiny()
  changed.num_epochs = 1
  changed.optimizer.learning_rate = 0.5
  with pytest.raises(workdir_lib.ConfigMismatch,
                     match=r"optimizer.learning_rate: 0.001 -> 0.5\).*another workdir \(with "
                     r"--config.init_from=.*latest weights\), or delete"):
    train_and_evaluate(changed, work, progress=False)
  assert (work / "config.json").read_text() == saved

  # Re-running the finished run: only the final evaluation, timing figures kept, no duplicates.
  again = train_and_evaluate(config, work, progress=False)
  for key in ("train_time_s", "median_step_s", "steps_per_s", "accuracy"):
    assert again[key] == first[key], key
  assert json.loads((work / "final_metrics.json").read_text())["median_step_s"] == first["median_step_s"]
  assert [r["step"] for r in _rows(work, "final")] == [8]
  assert [r["step"] for r in _rows(work, "train")] == list(range(1, 9))

  # Training longer is allowed; config.json keeps the first config, the change is recorded.
  longer = tiny()
  longer.num_epochs = 2
  longer.log_every = 2
  train_and_evaluate(longer, work, progress=False)
  assert (work / "config.json").read_text() == saved
  history = [json.loads(line) for line in (work / "config_history.jsonl").open()]
  assert history == [{"step": 8, "changed": {"log_every": [1, 2], "num_epochs": [1, 2]}}]
  assert [r["step"] for r in _rows(work, "train")] == [*range(1, 9), 10, 12, 14, 16]
  assert [r["step"] for r in _rows(work, "eval")] == [8, 16]
  assert [r["step"] for r in _rows(work, "final")] == [16]


def test_trim_metrics_keeps_rows_up_to_the_resumed_step(tmp_path):
  rows = [{"step": 1, "split": "train"}, {"step": 2, "split": "train"},
          {"step": 2, "split": "eval"}, {"step": 2, "split": "final"},
          {"step": 3, "split": "train"}, {"step": 4, "split": "eval"}]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"st')
  assert workdir_lib.trim_metrics(tmp_path, 2) == 4
  kept = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
  assert kept == rows[:3]


def _damage(step_dir):
  """Overwrites the state's files (the arrays and their index), as a bad disk would."""
  for path in (step_dir / "state").rglob("*"):
    if path.is_file() and path.name != "commit_success.txt":
      path.write_bytes(b"\0garbage")


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_step(tiny, tmp_path, caplog):
  work = tmp_path / "w"
  config = tiny()
  config.num_epochs = 1
  config.checkpoint_every = 4
  train_and_evaluate(config, work, progress=False)
  assert _steps(work) == [4, 8]
  _damage(work / "checkpoints" / "8")
  like = build(config).init()
  ckpt = Checkpointer(work / "checkpoints")
  with caplog.at_level(logging.WARNING):
    state, _ = ckpt.restore(like)
  ckpt.close()
  assert int(state.step) == 4
  assert f"checkpoint {work / 'checkpoints' / '8'} does not read back" in caplog.text
  assert (work / "checkpoints" / "8.corrupt").is_dir() and _steps(work) == [4]
  # The run resumes from step 4 and saves step 8 again.
  train_and_evaluate(config, work, progress=False)
  assert _steps(work) == [4, 8]
  for path in (work / "checkpoints").iterdir():
    if path.name.isdigit():
      _damage(path)
  ckpt = Checkpointer(work / "checkpoints")
  with pytest.raises(CorruptCheckpoint, match="does not read back .* and no earlier step does"):
    ckpt.restore(like)
  ckpt.close()
  # A damaged metadata file fails already when the checkpoints are opened: named too.
  assert _steps(work) == [4]                   # 8 was moved aside again
  (work / "checkpoints" / "8.corrupt").rename(work / "checkpoints" / "8")
  (work / "checkpoints" / "8" / "metrics" / "metrics").write_text("{garbage")
  with pytest.raises(CorruptCheckpoint, match=rf"checkpoints in {work / 'checkpoints'} do not "
                     rf"read back .* most likely the latest, {work / 'checkpoints' / '8'}"):
    Checkpointer(work / "checkpoints")
  jax.clear_caches()


def test_a_torn_lock_is_taken_over_and_a_file_is_no_workdir(tmp_path, caplog):
  work = tmp_path / "w"
  work.mkdir()
  (work / ".lock").write_text("")             # its writer died between create and write
  with pytest.raises(workdir_lib.WorkdirLocked):
    workdir_lib.WorkdirLock(work).acquire()   # fresh: it may be being written right now
  old = time.time() - workdir_lib.TORN_S - 1
  os.utime(work / ".lock", (old, old))
  with caplog.at_level(logging.WARNING), workdir_lib.WorkdirLock(work):
    pass
  assert "unreadable" in caplog.text
  file = tmp_path / "f"
  file.write_text("x")
  with pytest.raises(workdir_lib.WorkdirError, match="is a file, not a folder"):
    with workdir_lib.claim(file, None, lead=True):
      pass
  assert file.read_text() == "x"


def test_checkpoints_without_a_readable_config_json_are_not_resumed(tiny, tmp_path):
  work = tmp_path / "w"
  config = tiny()
  config.num_epochs = 1
  train_and_evaluate(config, work, progress=False)
  (work / "config.json").write_text("{garbage")
  with pytest.raises(workdir_lib.ConfigMismatch, match=r"config.json does not read back"):
    workdir_lib.check_config(work, config)
  (work / "config.json").unlink()
  with pytest.raises(workdir_lib.ConfigMismatch, match=r"holds checkpoints but no config.json"):
    workdir_lib.check_config(work, config)
  assert workdir_lib.check_config(tmp_path / "fresh", config) == {}


def test_a_url_workdir_is_refused_before_anything_is_written(tiny, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ConfigError, match="is a URL; .* gcsfuse"):
    train_and_evaluate(tiny(), "gs://bucket/run", progress=False)
  assert list(tmp_path.iterdir()) == []
