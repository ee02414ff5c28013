"""The entry points' error paragraphs (``experiments._cli.exit_on_stop``): what went wrong,
the path, what to do; the traceback in ``<workdir>/error.log``."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import socket

import pytest

from disc_jax.train.workdir import ConfigMismatch, WorkdirLocked
from experiments._cli import ERROR_LOG, exit_on_stop
from tests.train.test_cli import TINY_JOB, _run


def _exit(tmp_path, capsys, error):
  with pytest.raises(SystemExit) as info, exit_on_stop(tmp_path):
    raise error
  return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("error, expected", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/w/checkpoints/8"),
     "error: the disk is full: writing /data/w/checkpoints/8 failed"),
    (RuntimeError("tensorstore: write failed: No space left on device"),
     "error: the disk is full: writing {tmp} failed"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/w/config.json"),
     "error: cannot write /ro/w/config.json ([Errno 30] Read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied", "/w/.lock"),
     "error: cannot write /w/.lock"),
    (WorkdirLocked("/w is in use by another run (host h, pid 7, since t)"),
     "error: /w is in use by another run (host h, pid 7, since t)"),
    (ConfigMismatch("/w holds checkpoints of a run whose config differs"), "error: /w holds"),
])
def test_a_fixable_error_is_one_paragraph_with_the_traceback_in_error_log(
    tmp_path, capsys, error, expected):
  code, err = _exit(tmp_path, capsys, error)
  assert code == 1
  assert expected.format(tmp=tmp_path) in err
  assert "Traceback" not in err and f"(full traceback: {tmp_path / ERROR_LOG})" in err
  assert "Traceback" in (tmp_path / ERROR_LOG).read_text()


def test_a_bug_keeps_its_traceback(tmp_path):
  with pytest.raises(KeyError), exit_on_stop(tmp_path):
    raise KeyError("bug")
  assert not (tmp_path / ERROR_LOG).exists()


def test_sigterm_outside_the_loop_exits_with_a_message(tmp_path, capsys):
  before, before_hup = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
  with pytest.raises(SystemExit) as info, exit_on_stop(tmp_path):
    os.kill(os.getpid(), signal.SIGTERM)
  assert info.value.code == 128 + signal.SIGTERM
  assert "stopped by SIGTERM outside the training loop's own stop" in capsys.readouterr().err
  assert signal.getsignal(signal.SIGTERM) is before
  assert signal.getsignal(signal.SIGHUP) is before_hup


def test_cli_refuses_a_workdir_in_use(tmp_path):
  cfg = tmp_path / "tiny_job.py"
  cfg.write_text(TINY_JOB)
  work = tmp_path / "w"
  work.mkdir()
  (work / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                          "since": "2026-11-29T20:00:00"}))
  out = _run(f"--config={cfg}:run=ce", "--workdir", str(work), "--progress=false")
  assert out.returncode == 1, out.stderr[-3000:]
  assert (f"error: {work} is in use by another run (host {socket.gethostname()}, pid "
          f"{os.getpid()}, since 2026-11-29T20:00:00)") in out.stderr
  assert "Traceback" not in out.stderr and (work / ERROR_LOG).exists()
  assert json.loads((work / ".lock").read_text())["pid"] == os.getpid()   # left alone


def test_cli_distributed_without_a_cluster_says_how_to_launch(tmp_path):
  cfg = tmp_path / "tiny_job.py"
  cfg.write_text(TINY_JOB)
  out = _run(f"--config={cfg}:run=ce", "--workdir", str(tmp_path / "w"), "--progress=false",
             "--config.distributed=True", "--verbosity=1")
  assert out.returncode == 1, out.stderr[-3000:]
  assert "error: config.distributed=True but JAX found no cluster to join" in out.stderr
  assert "README 'Multi-host runs'" in out.stderr
  assert "Traceback" in out.stderr                  # --verbosity=1: the traceback on stderr


@pytest.mark.parametrize("config_text, args, expected", [
    (None, ["--config.optimizer.learning_rate=-1"],
     "error: config.optimizer.learning_rate must be a finite number > 0, got -1.0"),
    (None, ["--config.nonexistent=1"], "error: --config.nonexistent: the config has no field "
     "'nonexistent'"),
    ("def get_config(:\n", [], "SyntaxError: invalid syntax (raised at {cfg}, line 1)"),
    ("from configs import base\ndef get_config():\n  c = base.get_config()\n  c.foo.bar = 1\n"
     "  return c\n", [], "AttributeError: \"'foo'\" (raised at {cfg}, line 4)"),
    ("", [], "error: --config: no config file '{cfg}'"),
])
def test_a_config_that_cannot_run_is_one_line_and_leaves_no_workdir(
    tmp_path, config_text, args, expected):
  cfg = tmp_path / "cfg.py"          # config_text "": a file that is not there
  if config_text:
    cfg.write_text(config_text)
  path = "configs/tiny.py" if config_text is None else str(cfg)
  out = _run(f"--config={path}", *args, "--workdir", str(tmp_path / "w"))
  assert out.returncode == 1, out.stderr[-2000:]
  assert expected.format(cfg=cfg) in out.stderr, out.stderr[-2000:]
  assert "Traceback" not in out.stderr
  assert not (tmp_path / "w").exists()


def test_background_errors_go_to_the_traceback_file_not_stderr(tmp_path, capsys):
  """An Orbax background save that fails logs its traceback from several threads; the
  entry point keeps those records off stderr and puts them in error.log."""
  from absl import logging as absl_logging

  record = logging.LogRecord("absl", logging.ERROR, "/x/orbax/checkpoint/future.py", 1,
                             "save failed: No space left on device", None, None)
  with pytest.raises(SystemExit), exit_on_stop(tmp_path):
    absl_logging.get_absl_handler().handle(record)
    raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt"))
  err = capsys.readouterr().err
  assert "save failed" not in err and "error: the disk is full" in err
  assert "save failed: No space left on device" in (tmp_path / ERROR_LOG).read_text()
