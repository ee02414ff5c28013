"""Two JAX processes on this machine train as one: same parameters as one process, and resume.

Two CPU processes (2 fake devices each, gloo collectives, coordinator on 127.0.0.1) run
``train_and_evaluate`` on one workdir (:mod:`tests.train._two_process_worker`: the main job
shrunk, LeNet++ + σ²R on Fuzzy-RGB). Each reads only its own rows of every global batch;
the train step all-reduces over the 4-device mesh. The first invocation is preempted
(SIGTERM in both processes after step 3: both stop at step 4, save a checkpoint and
raise ``Interrupted``); the second, on the same workdir, resumes from it to step 6. Then:

* both processes hold identical final parameters and σ²R parameters (centers, growth rates),
  and return identical final metrics (the eval gathers every process's labels);
* these equal a single process on 4 devices trained straight through the 6 steps, up to
  float summation order (rtol 1e-5; atol 1e-5 = 1% of an Adam step, see the test);
* process 0 wrote ``final_metrics.json``, the logs and the plots; the checkpoints are at
  the expected steps.

Slow (three runs that each compile the steps: 70-100 s on 2 shared cores)::

  python -m pytest -m slow tests/train/test_multiprocess.py
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.train import _two_process_worker as worker

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = pathlib.Path(worker.__file__).resolve()
DEVICES_PER_PROCESS = 2
TIMEOUT_S = 240
SIGTERM_EXIT = 128 + signal.SIGTERM


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _child_env(devices: int) -> dict[str, str]:
  # No proxy for the coordinator's gRPC on 127.0.0.1 (JAX warns that one may hang initialize).
  env = {k: v for k, v in os.environ.items() if "_proxy" not in k.lower()}
  flags = [f for f in env.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices}"])
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
  return env


def _tail(path: pathlib.Path, n: int = 4000) -> str:
  return path.read_text(errors="replace")[-n:] if path.exists() else "(no output)"


def _launch(workdir, out, logs, *, num_processes: int, devices: int = DEVICES_PER_PROCESS,
            interrupt_at: int | None = None, script: pathlib.Path = WORKER,
            timeout_s: float = TIMEOUT_S, expect: int = 0, extra: tuple[str, ...] = ()) -> None:
  """Runs ``num_processes`` workers at once; fails with their output tails on error/timeout
  or when a worker's exit status is not ``expect``."""
  logs.mkdir(parents=True, exist_ok=True)
  port = _free_port()
  procs = []
  for i in range(num_processes):
    cmd = [sys.executable, str(script), "--workdir", str(workdir), "--out", str(out),
           "--process-id", str(i), "--num-processes", str(num_processes), "--port", str(port)]
    if interrupt_at is not None:
      cmd += ["--interrupt-at", str(interrupt_at)]
    cmd += list(extra)
    log = (logs / f"p{i}.log").open("w")
    procs.append((subprocess.Popen(cmd, cwd=ROOT, env=_child_env(devices),
                                   stdout=log, stderr=subprocess.STDOUT), log))
  deadline = time.monotonic() + timeout_s
  timed_out = False
  try:
    for proc, _ in procs:
      try:
        proc.wait(timeout=max(deadline - time.monotonic(), 1))
      except subprocess.TimeoutExpired:
        timed_out = True
        break
  finally:
    for proc, log in procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait()
      log.close()
  codes = [proc.returncode for proc, _ in procs]
  if timed_out or any(c != expect for c in codes):
    tails = "\n".join(f"--- process {i} (exit {c}) ---\n{_tail(logs / f'p{i}.log')}"
                      for i, c in enumerate(codes))
    pytest.fail(f"{f'timed out after {timeout_s} s' if timed_out else 'failed'}: "
                f"{num_processes} worker process(es)\n{tails}")


def _load(path: pathlib.Path) -> dict[str, np.ndarray]:
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


@pytest.mark.slow
def test_two_processes_train_resume_and_match_one_process(tmp_path):
  from disc_jax.train import Checkpointer

  work, out, logs = tmp_path / "two", tmp_path / "out", tmp_path / "logs"
  # 1. Two processes, both preempted after step 3: the flag goes through step 4, where both
  # stop; checkpoints at 2 (periodic) and 4.
  _launch(work, out / "first", logs / "first", num_processes=2, interrupt_at=3, expect=SIGTERM_EXIT)
  assert [json.loads((out / "first" / f"interrupted_{i}.json").read_text())["step"]
          for i in range(2)] == [4, 4]
  ckpt = Checkpointer(work / "checkpoints")
  assert ckpt.all_steps() == [2, 4]
  ckpt.close()
  assert not (work / "final_metrics.json").exists()
  # 2. Both again on the same workdir: they resume at step 4 and train to 6.
  _launch(work, out / "second", logs / "second", num_processes=2)
  assert f"resumed from {work / 'checkpoints'} at step 4" in _tail(logs / "second" / "p0.log", 10**6)
  # 3. The reference: one process holding all 4 devices, 6 steps straight through.
  _launch(tmp_path / "one", out / "one", logs / "one", num_processes=1,
          devices=2 * DEVICES_PER_PROCESS)

  total = worker.NUM_STEPS
  two = [_load(out / "second" / f"state_{i}.npz") for i in range(2)]
  one = _load(out / "one" / "state_0.npz")
  assert two[0].keys() == two[1].keys() == one.keys()
  assert any(k.startswith("params/") for k in one) and any(k.startswith("loss_params/") for k in one)
  for k in one:
    np.testing.assert_array_equal(two[0][k], two[1][k], err_msg=k)       # one replicated state
    # Cross-process all-reduces sum in another order than one process's. Adam divides by
    # sqrt(v), so a weight whose gradient is near zero turns that 1e-7 noise into a larger
    # change of its step; measured: 9 of 400k kernel entries off by up to 1.7e-6 (0.2% of
    # one Adam step of the lr 1e-3), all else < 1e-7. atol 1e-5 = 1% of one step.
    np.testing.assert_allclose(two[0][k], one[k], rtol=1e-5, atol=1e-5, err_msg=k)
  flat = lambda d: np.concatenate([d[k].ravel() for k in sorted(d)])   # noqa: E731
  assert np.mean(np.abs(flat(two[0]) - flat(one)) > 1e-7) < 1e-4     # the bulk to float noise
  ckpt = Checkpointer(work / "checkpoints")
  assert ckpt.all_steps() == [4, 6]                   # keep_checkpoints = 2
  ckpt.close()

  finals = [json.loads((out / "second" / f"final_{i}.json").read_text()) for i in range(2)]
  reference = json.loads((out / "one" / "final_0.json").read_text())
  assert finals[0].keys() == finals[1].keys() == reference.keys()
  timing = ("train_time_s", "steps_per_s", "median_step_s")
  for key in reference:
    if key in timing:
      continue
    assert finals[0][key] == finals[1][key] or (np.isnan(finals[0][key]) and np.isnan(finals[1][key])), key
    np.testing.assert_allclose(finals[0][key], reference[key], rtol=1e-4, atol=1e-6, err_msg=key)
  assert finals[0]["step"] == total

  # Process 0 wrote the run's files; the resumed run's final metrics are process 0's.
  written = json.loads((work / "final_metrics.json").read_text())
  assert written["step"] == total and written["accuracy"] == finals[0]["accuracy"]
  for name in ("config.json", "metrics.jsonl", "features.npz", "features_train.png", "features_test.png",
               "w_K.png"):
    assert (work / name).exists(), name
  records = [json.loads(line) for line in (work / "metrics.jsonl").open()]
  assert sorted(r["step"] for r in records if r["split"] == "train") == [1, 2, 3, 4, 5, 6]
  assert [r["step"] for r in records if r["split"] == "eval"] == [total]


@pytest.mark.slow
@pytest.mark.parametrize("delays", ["-1,0", "0,0.3"], ids=["one_process", "both_0.3s_apart"])
def test_a_signal_stops_every_process_at_the_same_step_and_resumes_exactly(tmp_path, delays):
  """SIGTERM to process 1 only, or to both 0.3 s apart: both exit with 128 + 15 within
  seconds at the same step, with one checkpoint of it; the resumed run ends bitwise equal
  to the same two processes trained straight through."""
  from disc_jax.train import Checkpointer

  steps, slow = 8, ("--num-steps", "8", "--step-sleep", "0.1")
  work, out, logs = tmp_path / "cut", tmp_path / "out", tmp_path / "logs"
  _launch(work, out / "first", logs / "first", num_processes=2, interrupt_at=2,
          expect=SIGTERM_EXIT, extra=(f"--interrupt-delays={delays}", *slow))
  stops = [json.loads((out / "first" / f"interrupted_{i}.json").read_text()) for i in range(2)]
  assert stops[0]["step"] == stops[1]["step"] and 2 < stops[0]["step"] < steps, stops
  assert {s["signum"] for s in stops} == {signal.SIGTERM}
  first_signal = min(s["signalled"] for s in stops if s["signalled"] is not None)
  assert max(s["exited"] for s in stops) - first_signal < 30, stops
  ckpt = Checkpointer(work / "checkpoints")
  assert ckpt.all_steps()[-1] == stops[0]["step"]          # the stop's checkpoint, only once
  ckpt.close()
  _launch(work, out / "second", logs / "second", num_processes=2, extra=slow[:2])
  _launch(tmp_path / "straight", out / "straight", logs / "straight", num_processes=2,
          extra=slow[:2])
  resumed, straight = _load(out / "second" / "state_0.npz"), _load(out / "straight" / "state_0.npz")
  assert resumed.keys() == straight.keys()
  for k in straight:
    np.testing.assert_array_equal(resumed[k], straight[k], err_msg=k)


def test_launcher_kills_on_timeout_and_reports_output(tmp_path):
  """The launcher itself (fast): a hung worker is killed at the timeout, a failing one
  fails the test; both with the workers' output."""
  hang = tmp_path / "hang.py"
  hang.write_text("import sys, time\nprint('worker', sys.argv[sys.argv.index('--process-id') + 1], "
                  "'started', flush=True)\ntime.sleep(600)\n")
  t0 = time.monotonic()
  with pytest.raises(pytest.fail.Exception, match=r"(?s)timed out after 3 s.*worker 1 started"):
    _launch(tmp_path / "w", tmp_path / "o", tmp_path / "l1", num_processes=2, script=hang,
            timeout_s=3)
  assert time.monotonic() - t0 < 30
  crash = tmp_path / "crash.py"
  crash.write_text("import sys\nsys.exit('boom in ' + sys.argv[sys.argv.index('--process-id') + 1])\n")
  with pytest.raises(pytest.fail.Exception, match=r"(?s)failed.*exit 1.*boom in 0.*boom in 1"):
    _launch(tmp_path / "w", tmp_path / "o", tmp_path / "l2", num_processes=2, script=crash)
