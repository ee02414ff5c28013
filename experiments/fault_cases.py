r"""A careless or hostile user's command lines and infrastructure faults, run and judged.

  python -m experiments.fault_cases --out results/reliability.md [--only 1-20,57]

Each case runs the entry points as a person would (``python -m experiments.train`` or
``experiments.reproduce`` in a subprocess, mostly on ``configs/tiny.py``), sometimes after
damaging a workdir, a checkpoint or a dataset, or while signalling, locking or filling
the disk under the run. It is judged **clean** when:

- a command that cannot run exits 1 (absl's own flag errors: 1 too) within its time limit,
  with no Python traceback on stderr, and its message names the problem (the words the
  case checks for: the field, the file, the lock holder...);
- a command that can run exits 0 and does what the case checks (a resume ends with the
  final metrics of the same run trained straight through, bit for bit; a log has no
  duplicate rows; a file that must not change did not);
- a stopped run exits with ``128 + signal`` (or is killed by SIGKILL), and the same command
  then resumes to the straight run's final metrics;
- nothing is lost beyond what the "data lost" column states, and nothing hangs.

Anything else is not clean, and the table says what happened. The multi-process cases run
``tests/train/test_multiprocess.py`` (two processes on one machine, gloo collectives).
The table goes into ``--out`` between the markers ``<!-- fault_cases:begin/end -->``
(the file's other text is kept); ``--only`` runs some cases and prints their rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gzip
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence

from absl import app, flags

REPO = pathlib.Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- fault_cases:begin -->", "<!-- fault_cases:end -->"
TIMING_KEYS = ("train_time_s", "median_step_s", "steps_per_s")


@dataclasses.dataclass
class Verdict:
  clean: bool
  outcome: str           # what happened (exit code, what the case checked)
  message: str = ""      # what a person saw (abridged)
  lost: str = "nothing"  # data lost


@dataclasses.dataclass
class Case:
  number: int
  group: str
  title: str
  run: Callable[[Harness], Verdict]


CASES: list[Case] = []


def case(group: str, title: str):
  def register(fn: Callable[[Harness], Verdict]) -> Callable[[Harness], Verdict]:
    CASES.append(Case(len(CASES) + 1, group, title, fn))
    return fn
  return register


@dataclasses.dataclass
class Proc:
  rc: int
  out: str
  err: str
  seconds: float
  timed_out: bool = False


class Harness:
  """Runs the entry points in subprocesses under one temporary root."""

  def __init__(self, root: pathlib.Path, mnist: pathlib.Path | None):
    self.root = root
    self.mnist = mnist                    # folder of the original MNIST files
    self._refs: dict[tuple, dict] = {}
    self._count = 0
    self.case = 0                         # the case running (names its folders)
    self.env = dict(os.environ, PYTHONUNBUFFERED="1",
                    JAX_COMPILATION_CACHE_DIR=str(root / "xla_cache"),
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    self.env.pop("XLA_FLAGS", None)

  def path(self, name: str) -> pathlib.Path:
    self._count += 1
    return self.root / f"case{self.case:03d}_{self._count:04d}_{name}"

  def config_file(self, body: str, name: str = "cfg") -> pathlib.Path:
    """A config file: ``body`` edits ``c`` (configs/tiny.py's config)."""
    path = self.path(name).with_suffix(".py")
    lines = ["from configs import base, tiny", "import ml_collections", "",
             "def get_config():", "  c = tiny.get_config()"]
    lines += ["  " + ln for ln in body.strip().splitlines()] + ["  return c", ""]
    path.write_text("\n".join(lines))
    return path

  def _argv(self, module: str, args: Sequence[str], config, workdir) -> list[str]:
    argv = [sys.executable, "-m", module]
    if config is not None:
      argv.append(f"--config={config}")
    if workdir is not None:
      argv.append(f"--workdir={workdir}")
    return argv + ["--noprogress", *args] if module == "experiments.train" else argv + list(args)

  def run(self, *args: str, config="configs/tiny.py", workdir=None, timeout: float = 300,
          module: str = "experiments.train", env: dict | None = None,
          cwd: pathlib.Path = REPO) -> Proc:
    start = time.time()
    try:
      p = subprocess.run(self._argv(module, args, config, workdir), cwd=cwd,
                         env=env or self.env, capture_output=True, text=True, timeout=timeout)
      return Proc(p.returncode, p.stdout, p.stderr, time.time() - start)
    except subprocess.TimeoutExpired as e:
      return Proc(-9, _text(e.stdout), _text(e.stderr), time.time() - start, timed_out=True)

  def start(self, *args: str, config="configs/tiny.py", workdir=None,
            module: str = "experiments.train", env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(self._argv(module, args, config, workdir), cwd=REPO,
                            env=env or self.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)

  def reference(self, *args: str, config="configs/tiny.py") -> dict:
    """Final metrics of a clean run of ``args`` (trained once per distinct command)."""
    key = (str(config), *args)
    if key not in self._refs:
      wd = self.path("reference")
      p = self.run(*args, config=config, workdir=wd)
      if p.rc != 0:
        raise RuntimeError(f"the reference run {key} failed:\n{p.err[-3000:]}")
      self._refs[key] = final(wd)
    return self._refs[key]

  def mnist_config(self, body: str = "") -> pathlib.Path:
    """configs/tiny.py on MNIST (the original files), 4 steps."""
    return self.config_file(f"""
c.dataset.name = "mnist"
c.dataset.kwargs = ml_collections.ConfigDict()
c.num_steps = 4
c.final_eval.retrieval = False
{body}""", "mnist_cfg")


def _text(value) -> str:
  if value is None:
    return ""
  return value.decode(errors="replace") if isinstance(value, bytes) else value


def final(workdir: pathlib.Path) -> dict:
  path = workdir / "final_metrics.json"
  return json.loads(path.read_text()) if path.is_file() else {}


def same_metrics(a: dict, b: dict) -> bool:
  """Equal final metrics, bit for bit, apart from the timing figures."""
  strip = lambda m: {k: v for k, v in m.items() if k not in TIMING_KEYS}  # noqa: E731
  return bool(a) and strip(a) == strip(b)


def message(p: Proc, root: pathlib.Path | None = None) -> str:
  """The line a person reads: 'error: ...', 'stopped...', FATAL..., or stderr's last line."""
  lines = [ln.strip() for ln in p.err.splitlines() if ln.strip()]
  keys = ("error:", "stopped", "training interrupted", "FATAL", "taking over", "resumed",
          "WARNING")
  picked = next((ln for ln in lines if ln.startswith(keys[:4])), None)
  picked = picked or next((ln for ln in lines if any(k in ln for k in keys[4:])), None)
  text = picked or (lines[-1] if lines else "")
  text = re.sub(r"^[WIE]\d{4} [\d:.]+ +\d+ \S+\] ", "", text)   # absl log prefix
  if root is not None:
    text = text.replace(str(root), "<tmp>")
  return text[:220] + ("..." if len(text) > 220 else "")


def has_traceback(p: Proc) -> bool:
  return "Traceback (most recent call last)" in p.err


def refused(h: Harness, p: Proc, *words: str, lost: str = "nothing") -> Verdict:
  """A command that must not run: exit 1, no traceback, a message with ``words``."""
  msg = message(p, h.root)
  missing = [w for w in words if w.lower() not in p.err.lower()]
  ok = p.rc == 1 and not has_traceback(p) and not missing and not p.timed_out
  why = []
  if p.timed_out:
    why.append("hung: killed at the time limit")
  if has_traceback(p):
    why.append("traceback on stderr")
  if missing:
    why.append(f"message lacks {missing}")
  return Verdict(ok, f"exit {p.rc} in {p.seconds:.0f} s" + (f" ({'; '.join(why)})" if why else ""),
                 msg, lost)


def ran(h: Harness, p: Proc, checks: dict[str, bool], lost: str = "nothing",
        expect_rc: int = 0) -> Verdict:
  """A command that must run: exit ``expect_rc`` and every check true."""
  failed = [name for name, ok in checks.items() if not ok]
  ok = p.rc == expect_rc and not failed and not p.timed_out
  text = f"exit {p.rc} in {p.seconds:.0f} s"
  if checks:
    text += "; " + ", ".join(f"{name}: {'yes' if v else 'NO'}" for name, v in checks.items())
  if p.timed_out:
    text += " (hung: killed at the time limit)"
  return Verdict(ok, text, message(p, h.root) if (failed or p.rc != expect_rc) else
                 (message(p, h.root) if p.rc else ""), lost)


def log_rows(workdir: pathlib.Path) -> list[dict]:
  path = workdir / "metrics.jsonl"
  if not path.is_file():
    return []
  rows = []
  for line in path.read_text().splitlines():
    try:
      rows.append(json.loads(line))
    except ValueError:
      rows.append({"garbage": line})
  return rows


def no_duplicate_rows(workdir: pathlib.Path) -> bool:
  keys = [(r.get("split"), r.get("step")) for r in log_rows(workdir)]
  return bool(keys) and len(keys) == len(set(keys)) and not any(
      "garbage" in r for r in log_rows(workdir))


def steps(workdir: pathlib.Path) -> list[int]:
  folder = workdir / "checkpoints"
  return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []


def damage(step_dir: pathlib.Path) -> None:
  """Overwrites a checkpoint's array data (as a disk or copy error would)."""
  for f in step_dir.rglob("*"):
    if f.is_file() and f.parent.name == "d":
      f.write_bytes(b"\x00garbage" * 8)


def wait_for(pred: Callable[[], bool], timeout: float, proc: subprocess.Popen | None = None
             ) -> bool:
  end = time.time() + timeout
  while time.time() < end:
    if pred():
      return True
    if proc is not None and proc.poll() is not None:
      return pred()
    time.sleep(0.05)
  return False


def finish(proc: subprocess.Popen, timeout: float = 120) -> Proc:
  start = time.time()
  try:
    out, err = proc.communicate(timeout=timeout)
    return Proc(proc.returncode, out, err, time.time() - start)
  except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    return Proc(-9, out, err, time.time() - start, timed_out=True)


def trained_past(workdir: pathlib.Path, step: int) -> Callable[[], bool]:
  return lambda: any(r.get("split") == "train" and r.get("step", 0) >= step
                     for r in log_rows(workdir))


# The sweeps of the reproduce cases: a table config on 'synthetic' data, one seed.
SWEEP_TABLE = "configs/intra_class_variance/table1_2_mnist.py"


def sweep_args(sweep: pathlib.Path, rows: str, *extra: str) -> tuple[str, ...]:
  return ("--seeds=1", f"--rows={rows}", f"--sweep_dir={sweep}", f"--out={sweep / 't.md'}",
          "--config.final_eval.max_train_examples=64", "--config.dataset.name=synthetic",
          "--noprogress", *extra)


# A run long enough to be signalled mid-training: 60 epochs of 8 steps, a log row per step.
LONG = ("--config.num_epochs=60", "--config.log_every=1")


# ----------------------------------------------------------------------------- config
def _bad_override(flag: str, *words: str):
  def run(h: Harness) -> Verdict:
    wd = h.path("w")
    return refused(h, h.run(flag, workdir=wd), *words, lost="nothing (no workdir made)"
                   ) if not wd.exists() else Verdict(False, "created a workdir", "")
  return run


for _flag, _words in [
    ("--config.optimizer.learning_rate=-1", ("optimizer.learning_rate", "> 0")),
    ("--config.optimizer.learning_rate=0", ("optimizer.learning_rate",)),
    ("--config.optimizer.learning_rate=inf", ("optimizer.learning_rate", "finite")),
    ("--config.optimizer.learning_rate=nan", ("optimizer.learning_rate", "finite")),
    ("--config.batch_size=0", ("batch_size", "positive")),
    ("--config.batch_size=-32", ("batch_size",)),
    ("--config.num_epochs=0", ("num_epochs",)),
    ("--config.num_steps=-5", ("num_steps",)),
    ("--config.log_every=0", ("log_every",)),
    ("--config.eval_every=0", ("eval_every",)),
    ("--config.checkpoint_every=-1", ("checkpoint_every",)),
    ("--config.keep_checkpoints=0", ("keep_checkpoints",)),
    ("--config.model.name=resnet9000", ("model", "resnet9000")),
    ("--config.dataset.name=mnist9000", ("dataset.name", "mnist9000")),
    ("--config.optimizer.name=adamx", ("optimizer", "adamx", "adam")),
    ("--config.schedule.name=linear_warmup", ("schedule", "linear_warmup")),
    ("--config.classification_loss.name=arcface", ("classification_loss", "arcface")),
    ("--config.label_smoothing=1.5", ("label_smoothing",)),
    ("--config.label_smoothing=-0.1", ("label_smoothing",)),
    ("--config.optimizer.weight_decay=-0.01", ("weight_decay",)),
    ("--config.best_metric=precision", ("best_metric", "precision")),
    ("--config.best_mode=maximum", ("best_mode",)),
    ("--config.dataset.sampler=stratified", ("sampler", "stratified")),
    ("--config.dataset.num_workers=-2", ("num_workers",)),
    ("--config.num_devices=3", ("num_devices",)),
    ("--config.final_eval.retrieval_k=1000", ("retrieval_k",)),
    ("--config.model.kwargs.featur_dim=4", ("featur_dim",)),
    ("--config.nonexistent_field=1", ("nonexistent_field",)),
    ("--config.batch_size=abc", ("batch_size", "abc")),
    ("--config.final_eval.retrieval=maybe", ("retrieval",)),
]:
  case("config", f"`{_flag}`")(_bad_override(_flag, *_words))


def _bad_file(title: str, body: str, *words: str):
  @case("config", title)
  def run(h: Harness) -> Verdict:
    return refused(h, h.run(config=h.config_file(body), workdir=h.path("w")), *words)
  return run


_bad_file("aux loss of an unknown name ('centre')", 'c.aux_losses = [base.aux_loss("centre", 0.1)]',
          "aux_losses[0]", "centre")
_bad_file("aux loss kwarg the loss does not take", 'c.aux_losses = [base.aux_loss("snnl", 1.0, '
          'kwargs={"temp": 2.0})]', "aux_losses[0]", "temp")
_bad_file("aux loss weight NaN", 'c.aux_losses = [base.aux_loss("center", float("nan"))]',
          "aux_losses[0].weight", "finite")
_bad_file("aux loss weight inf", 'c.aux_losses = [base.aux_loss("center", float("inf"))]',
          "aux_losses[0].weight", "finite")
_bad_file("aux loss param optimizer with lr 0", 'c.aux_losses = [base.aux_loss("center", 0.1, '
          'param_optimizer=base.optimizer("adam", 0.0))]', "param_optimizer.learning_rate")
_bad_file("aux loss on a feature the model does not sow", 'c.aux_losses = [base.aux_loss('
          '"center", 0.1, input="penultimate")]', "aux_losses[0]", "penultimate")
_bad_file("class subset with a class the dataset lacks",
          'c.dataset.class_subset = [0, 9]', "class_subset")
_bad_file("class subset larger than the dataset",
          'c.dataset.class_subset = {"num_classes": 7, "seed": 0}', "class_subset")
_bad_file("unknown augmentation", 'c.augment = ("jitter",)', "augment", "jitter")
_bad_file("extra eval dataset of an unknown name",
          'c.final_eval.extra_datasets = (base.extra_dataset("mnist9000"),)',
          "extra_datasets", "mnist9000")
_bad_file("config file that raises inside get_config", "c.foo.bar = 1", "foo", "line")
_bad_file("config file with a NaN in a model kwarg",
          'c.model.kwargs = ml_collections.ConfigDict({"feature_dim": 8, "dropout": float("nan")})',
          "model.kwargs.dropout", "finite")


@case("config", "config file with a syntax error")
def _syntax(h: Harness) -> Verdict:
  path = h.path("syntax").with_suffix(".py")
  path.write_text("def get_config(:\n")
  return refused(h, h.run(config=path, workdir=h.path("w")), "SyntaxError", "line 1")


@case("config", "config file that does not exist")
def _no_file(h: Harness) -> Verdict:
  return refused(h, h.run(config=h.root / "no_such_config.py", workdir=h.path("w")),
                 "no config file")


@case("config", "`:run=` of a run the file does not define")
def _bad_run(h: Harness) -> Verdict:
  return refused(h, h.run(config="configs/default.py:run=sigma3r", workdir=h.path("w")),
                 "sigma3r", "sigma2r")


@case("config", "no `--workdir`")
def _no_workdir(h: Harness) -> Verdict:
  return refused(h, h.run(), "--workdir")


@case("config", "no `--config`")
def _no_config(h: Harness) -> Verdict:
  return refused(h, h.run(config=None, workdir=h.path("w")), "--config")


@case("config", "an unknown flag (`--epochs 3`)")
def _unknown_flag(h: Harness) -> Verdict:
  return refused(h, h.run("--epochs", "3", workdir=h.path("w")), "epochs")


@case("config", "a stray positional argument")
def _positional(h: Harness) -> Verdict:
  return refused(h, h.run("configs/tiny.py", workdir=h.path("w")), "unexpected arguments")


@case("config", "`--config.distributed=True` without a cluster")
def _distributed(h: Harness) -> Verdict:
  return refused(h, h.run("--config.distributed=True", workdir=h.path("w")),
                 "distributed", "launch")


@case("config", "global batch not divisible by the devices (2 devices, batch 33)")
def _indivisible(h: Harness) -> Verdict:
  env = dict(h.env, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  return refused(h, h.run("--config.batch_size=33", workdir=h.path("w"), env=env),
                 "batch_size", "33")


@case("config", "`init_from` a path that does not exist")
def _init_missing(h: Harness) -> Verdict:
  return refused(h, h.run(f"--config.init_from={h.root / 'nowhere'}", workdir=h.path("w")),
                 "init_from", "nowhere")


@case("config", "`init_from` a run of another model width (feature_dim 16)")
def _init_mismatch(h: Harness) -> Verdict:
  src = h.path("src")
  first = h.run("--config.model.kwargs.feature_dim=16", "--config.num_steps=2", workdir=src)
  if first.rc:
    return Verdict(False, f"source run failed: exit {first.rc}", message(first, h.root))
  return refused(h, h.run(f"--config.init_from={src}", workdir=h.path("w")), "shape")


@case("config", "reproduce: `--rows` names an unknown run")
def _rows(h: Harness) -> Verdict:
  return refused(h, h.run("--rows=ce_3d", f"--sweep_dir={h.path('sweep')}",
                          module="experiments.reproduce", config=SWEEP_TABLE),
                 "ce_3d", "ce_2d")


@case("config", "reproduce: a malformed `--row_seeds`")
def _row_seeds(h: Harness) -> Verdict:
  return refused(h, h.run("--row_seeds=ce_2d:3", f"--sweep_dir={h.path('sweep')}",
                          module="experiments.reproduce", config=SWEEP_TABLE),
                 "row_seeds", "run=N")


@case("config", "reproduce: a config that is not a paper table")
def _not_table(h: Harness) -> Verdict:
  return refused(h, h.run(module="experiments.reproduce", config="configs/tiny.py"), "TABLE")


# ----------------------------------------------------------------------------- data
@case("data", "MNIST without its files and without network (`manual_dir` unset)")
def _no_data(h: Harness) -> Verdict:
  return refused(h, h.run(f"--config.dataset.data_dir={h.path('tfds')}",
                          config=h.mnist_config(), workdir=h.path("w")), "mnist", "manual_dir")


@case("data", "`manual_dir` that does not exist")
def _manual_missing(h: Harness) -> Verdict:
  return refused(h, h.run(f"--config.dataset.data_dir={h.path('tfds')}",
                          f"--config.dataset.manual_dir={h.root / 'no_such_dir'}",
                          config=h.mnist_config(), workdir=h.path("w")), "no_such_dir")


def _mnist_copy(h: Harness, edit: Callable[[pathlib.Path], None]) -> pathlib.Path:
  folder = h.path("mnist_files")
  shutil.copytree(h.mnist, folder)
  edit(folder)
  return folder


def _damaged_files(title: str, edit: Callable[[pathlib.Path], None], *words: str):
  @case("data", title)
  def run(h: Harness) -> Verdict:
    if h.mnist is None:
      return Verdict(False, "not run: no MNIST files (--mnist_dir)")
    folder = _mnist_copy(h, edit)
    return refused(h, h.run(f"--config.dataset.data_dir={h.path('tfds')}",
                            f"--config.dataset.manual_dir={folder}",
                            config=h.mnist_config(), workdir=h.path("w")), *words)
  return run


_damaged_files("`manual_dir` without the training labels",
               lambda f: (f / "train-labels-idx1-ubyte.gz").unlink(), "train-labels-idx1-ubyte.gz")
_damaged_files("an original file cut short (half the training images)",
               lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(
                   (f / "train-images-idx3-ubyte.gz").read_bytes()[:4_000_000]),
               "train-images-idx3-ubyte.gz")
_damaged_files("an original file replaced by other bytes of the same size",
               lambda f: (f / "t10k-labels-idx1-ubyte.gz").write_bytes(
                   b"\x00" * (f / "t10k-labels-idx1-ubyte.gz").stat().st_size),
               "t10k-labels-idx1-ubyte.gz")
_damaged_files("Fashion-MNIST's files given as MNIST's",
               lambda f: [shutil.copy(p, f / p.name) for p in
                          sorted((f.parent / "fashion_mnist_src").glob("*.gz"))],
               "train-images-idx3-ubyte.gz")


def _prepared(h: Harness) -> pathlib.Path:
  """A TFDS data_dir with MNIST built from the original files (built once)."""
  data_dir = h.root / "tfds_prepared"
  if not (data_dir / "disc_jax_mnist").is_dir():
    p = h.run(f"--config.dataset.data_dir={data_dir}", f"--config.dataset.manual_dir={h.mnist}",
              config=h.mnist_config(), workdir=h.path("prepare_run"), timeout=900)
    if p.rc:
      raise RuntimeError(f"preparing MNIST failed:\n{p.err[-3000:]}")
  copy = h.path("tfds")
  shutil.copytree(data_dir, copy)
  return copy


def _damaged_prepared(title: str, edit: Callable[[pathlib.Path], None], *words: str):
  @case("data", title)
  def run(h: Harness) -> Verdict:
    if h.mnist is None:
      return Verdict(False, "not run: no MNIST files (--mnist_dir)")
    data_dir = _prepared(h)
    edit(data_dir)
    return refused(h, h.run(f"--config.dataset.data_dir={data_dir}", config=h.mnist_config(),
                            workdir=h.path("w")), *words)
  return run


def _first(data_dir: pathlib.Path, pattern: str) -> pathlib.Path:
  return sorted(data_dir.rglob(pattern))[0]


_damaged_prepared("prepared dataset: a record file cut short",
                  lambda d: _first(d, "*train.array_record*").write_bytes(
                      _first(d, "*train.array_record*").read_bytes()[:1000]),
                  "disc_jax_mnist", "Delete")
_damaged_prepared("prepared dataset: `dataset_info.json` garbage",
                  lambda d: _first(d, "dataset_info.json").write_text("{garbage"),
                  "disc_jax_mnist", "Delete")
_damaged_prepared("prepared dataset: a record file deleted",
                  lambda d: _first(d, "*test.array_record*").unlink(), "disc_jax_mnist")


@case("data", "an offline build SIGKILLed midway, then run again")
def _killed_build(h: Harness) -> Verdict:
  if h.mnist is None:
    return Verdict(False, "not run: no MNIST files (--mnist_dir)")
  data_dir = h.path("tfds")
  args = (f"--config.dataset.data_dir={data_dir}", f"--config.dataset.manual_dir={h.mnist}")
  proc = h.start(*args, config=h.mnist_config(), workdir=h.path("w"))
  began = wait_for(lambda: any(data_dir.rglob("incomplete.*")), 300, proc)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  p = h.run(*args, config=h.mnist_config(), workdir=h.path("w2"), timeout=900)
  leftover = [str(x) for x in data_dir.rglob("incomplete.*")]
  return ran(h, p, {"killed inside the build": began, "no incomplete.* folder left": not leftover})


@case("data", "two runs preparing the same dataset at once")
def _two_builds(h: Harness) -> Verdict:
  if h.mnist is None:
    return Verdict(False, "not run: no MNIST files (--mnist_dir)")
  data_dir = h.path("tfds")
  args = (f"--config.dataset.data_dir={data_dir}", f"--config.dataset.manual_dir={h.mnist}")
  a = h.start(*args, config=h.mnist_config(), workdir=h.path("a"))
  b = h.start(*args, config=h.mnist_config(), workdir=h.path("b"))
  pa, pb = finish(a, 900), finish(b, 900)
  versions = [p for p in data_dir.rglob("dataset_info.json")]
  return ran(h, pa if pa.rc else pb, {"both exit 0": pa.rc == 0 and pb.rc == 0,
                                       "one prepared copy": len(versions) == 1})


# ----------------------------------------------------------------------------- workdir
@case("workdir", "`--workdir` is an existing file")
def _workdir_file(h: Harness) -> Verdict:
  f = h.path("file")
  f.write_text("not a folder")
  p = h.run(workdir=f)
  return refused(h, p, str(f.name)) if f.read_text() == "not a folder" else Verdict(
      False, "overwrote the file", message(p, h.root), "the file")


@case("workdir", "`--workdir gs://bucket/run` (a URL)")
def _url(h: Harness) -> Verdict:
  cwd = h.path("cwd")
  cwd.mkdir()
  env = dict(h.env, PYTHONPATH=str(REPO))
  p = h.run(workdir="gs://bucket/run", config=REPO / "configs/tiny.py", cwd=cwd, env=env)
  v = refused(h, p, "is a URL", "gcsfuse")
  wrote = list(cwd.iterdir())
  return v if not wrote else Verdict(False, v.outcome + f"; wrote {wrote}", v.message)


@case("workdir", "`--workdir` in folders that do not exist yet (a/b/c)")
def _deep(h: Harness) -> Verdict:
  wd = h.path("deep") / "a" / "b" / "c"
  p = h.run(workdir=wd)
  return ran(h, p, {"trained": bool(final(wd))})


@case("workdir", "`--workdir` with spaces and non-ASCII characters")
def _unicode(h: Harness) -> Verdict:
  wd = h.path("w") / "my run (σ²R) ü"
  p = h.run(workdir=wd)
  return ran(h, p, {"trained": bool(final(wd))})


@case("workdir", "`--workdir` relative to the current folder")
def _relative(h: Harness) -> Verdict:
  cwd = h.path("cwd")
  cwd.mkdir()
  env = dict(h.env, PYTHONPATH=str(REPO))
  p = h.run(workdir="runs/one", config=REPO / "configs/tiny.py", cwd=cwd, env=env)
  return ran(h, p, {"trained": bool(final(cwd / "runs/one"))})


@case("workdir", "`--workdir` a symlink to a folder")
def _symlink(h: Harness) -> Verdict:
  real = h.path("real")
  real.mkdir()
  link = h.path("link")
  link.symlink_to(real)
  p = h.run(workdir=link)
  return ran(h, p, {"trained": bool(final(real))})


@contextlib.contextmanager
def _tmpfs(h: Harness, size: str) -> Iterator[pathlib.Path | None]:
  """A tmpfs of ``size`` mounted for the case (None where this machine cannot mount)."""
  point = h.path("mnt")
  point.mkdir()
  r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                     capture_output=True)
  if r.returncode:
    yield None
    return
  try:
    yield point
  finally:
    subprocess.run(["umount", "-l", str(point)], capture_output=True)


NO_MOUNT = Verdict(False, "not run: cannot mount a tmpfs here")


@case("workdir", "read-only file system under the workdir")
def _read_only(h: Harness) -> Verdict:
  with _tmpfs(h, "4m") as point:
    if point is None:
      return NO_MOUNT
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
    return refused(h, h.run(workdir=point / "w"), "read-only")


@case("workdir", "disk full during training (a 300 kB file system)")
def _disk_full(h: Harness) -> Verdict:
  with _tmpfs(h, "300k") as point:
    if point is None:
      return NO_MOUNT
    return refused(h, h.run(workdir=point / "w"), "disk is full",
                   lost="steps after the last complete checkpoint")


@case("workdir", "disk full, then space freed and the same command run again")
def _disk_full_resume(h: Harness) -> Verdict:
  with _tmpfs(h, "300k") as point:
    if point is None:
      return NO_MOUNT
    first = h.run(workdir=point / "w")
    subprocess.run(["mount", "-o", "remount,size=64m", str(point)], check=True)
    p = h.run(workdir=point / "w")
    return ran(h, p, {"first run stopped": first.rc == 1,
                      "same result as a straight run": same_metrics(final(point / "w"),
                                                                    h.reference())},
               lost="nothing (the redone steps)")


def _lock(wd: pathlib.Path, holder: dict | str) -> None:
  wd.mkdir(parents=True, exist_ok=True)
  (wd / ".lock").write_text(holder if isinstance(holder, str) else json.dumps(holder))


@case("workdir", "workdir locked by a live run (same host)")
def _locked(h: Harness) -> Verdict:
  wd = h.path("w")
  sleeper = subprocess.Popen(["sleep", "120"])
  try:
    _lock(wd, {"host": socket.gethostname(), "pid": sleeper.pid, "since": "2026-01-01T00:00"})
    return refused(h, h.run(workdir=wd), "in use", str(sleeper.pid))
  finally:
    sleeper.kill()


@case("workdir", "stale lock: its holder is dead (same host)")
def _stale(h: Harness) -> Verdict:
  wd = h.path("w")
  dead = subprocess.Popen(["true"])
  dead.wait()
  _lock(wd, {"host": socket.gethostname(), "pid": dead.pid, "since": "2026-01-01T00:00"})
  p = h.run(workdir=wd)
  return ran(h, p, {"warned": "stale lock" in p.err, "trained": bool(final(wd)),
                    "lock removed": not (wd / ".lock").exists()})


@case("workdir", "lock file torn (empty) by a holder killed while writing it")
def _torn_lock(h: Harness) -> Verdict:
  wd = h.path("w")
  _lock(wd, "")
  old = time.time() - 60
  os.utime(wd / ".lock", (old, old))
  p = h.run(workdir=wd)
  return ran(h, p, {"trained": bool(final(wd))})


@case("workdir", "lock of another host untouched for 20 min")
def _silent_lock(h: Harness) -> Verdict:
  wd = h.path("w")
  _lock(wd, {"host": "other-host", "pid": 4242, "since": "2026-01-01T00:00"})
  old = time.time() - 1200
  os.utime(wd / ".lock", (old, old))
  p = h.run(workdir=wd)
  return ran(h, p, {"warned": "stale lock" in p.err, "trained": bool(final(wd))})


@case("workdir", "the same command started twice 0.5 s apart")
def _twice(h: Harness) -> Verdict:
  wd = h.path("w")
  a = h.start(workdir=wd)
  time.sleep(0.5)
  b = h.start(workdir=wd)
  pa, pb = finish(a), finish(b)
  first, second = (pa, pb) if pa.rc == 0 else (pb, pa)
  v = refused(h, second, "in use")
  checks = {"one ran": first.rc == 0, "other refused": v.clean,
            "no duplicate log rows": no_duplicate_rows(wd),
            "same result as a straight run": same_metrics(final(wd), h.reference())}
  return ran(h, first, checks) if first.rc == 0 else Verdict(False, v.outcome, v.message)


@case("workdir", "seed 0 and seed 1 started on one workdir")
def _two_seeds(h: Harness) -> Verdict:
  wd = h.path("w")
  a = h.start("--config.seed=0", workdir=wd)
  time.sleep(0.5)
  b = h.start("--config.seed=1", workdir=wd)
  pa, pb = finish(a), finish(b)
  ok_first = pa.rc == 0 and same_metrics(final(wd), h.reference("--config.seed=0"))
  v = refused(h, pb, "in use")
  return ran(h, pa, {"seed 0 ran, unmixed": ok_first, "seed 1 refused": v.clean},
             ) if pa.rc == 0 else Verdict(False, f"seed 0 exit {pa.rc}", message(pa, h.root))


# ----------------------------------------------------------------------------- resume
def _resume_case(title: str, first: Sequence[str], second: Sequence[str], *,
                 refuse: tuple[str, ...] | None, check_history: bool = False):
  @case("resume", title)
  def run(h: Harness) -> Verdict:
    wd = h.path("w")
    p1 = h.run(*first, "--config.num_epochs=1", workdir=wd)
    if p1.rc:
      return Verdict(False, f"first run exit {p1.rc}", message(p1, h.root))
    saved = (wd / "config.json").read_text()
    p2 = h.run(*second, "--config.num_epochs=1", workdir=wd)
    kept = (wd / "config.json").read_text() == saved
    if refuse is not None:
      v = refused(h, p2, *refuse)
      return Verdict(v.clean and kept, v.outcome + ("" if kept else "; config.json REWRITTEN"),
                     v.message)
    checks = {"config.json kept": kept}
    if check_history:
      checks["change in config_history.jsonl"] = (wd / "config_history.jsonl").is_file()
    return ran(h, p2, checks)
  return run


_resume_case("resume with another learning rate", (), ("--config.optimizer.learning_rate=0.5",),
             refuse=("optimizer.learning_rate", "0.001 -> 0.5"))
_resume_case("resume with another seed", (), ("--config.seed=7",), refuse=("seed",))
_resume_case("resume with another batch size", (), ("--config.batch_size=16",),
             refuse=("batch_size",))
_resume_case("resume with another log cadence (allowed)", (), ("--config.log_every=2",),
             refuse=None, check_history=True)


@case("resume", "resume with more epochs (allowed): continues to the new length")
def _more_epochs(h: Harness) -> Verdict:
  wd = h.path("w")
  p1 = h.run("--config.num_epochs=1", workdir=wd)
  p2 = h.run("--config.num_epochs=2", workdir=wd)
  m = final(wd)
  return ran(h, p2, {"first ran": p1.rc == 0, "reached step 16": m.get("step") == 16,
                     "no duplicate log rows": no_duplicate_rows(wd)})


@case("resume", "a finished run run again")
def _finished_again(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run(workdir=wd)
  before = final(wd)
  p = h.run(workdir=wd)
  after = final(wd)
  finals = [r for r in log_rows(wd) if r.get("split") == "final"]
  return ran(h, p, {"timing kept": all(before.get(k) == after.get(k) for k in TIMING_KEYS),
                    "metrics unchanged": same_metrics(after, before),
                    "one final log row": len(finals) == 1})


@case("resume", "latest checkpoint damaged: falls back to the previous one")
def _corrupt_latest(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run(workdir=wd)
  (wd / "final_metrics.json").unlink()
  damage(wd / "checkpoints" / "16")
  p = h.run(workdir=wd)
  return ran(h, p, {"warned naming step 16": "checkpoints/16" in p.err,
                    "same result as a straight run": same_metrics(final(wd), h.reference())},
             lost="steps after the previous checkpoint (redone)")


@case("resume", "every checkpoint damaged")
def _corrupt_all(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run(workdir=wd)
  (wd / "final_metrics.json").unlink()
  for s in steps(wd):
    damage(wd / "checkpoints" / str(s))
  return refused(h, h.run(workdir=wd), "checkpoints", "delete",
                 lost="the run (no checkpoint reads back)")


@case("resume", "a checkpoint's metadata file garbage")
def _corrupt_meta(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run(workdir=wd)
  (wd / "final_metrics.json").unlink()
  (wd / "checkpoints" / "16" / "metrics" / "metrics").write_text("{garbage")
  return refused(h, h.run(workdir=wd), "checkpoints/16")


@case("resume", "latest checkpoint folder emptied")
def _empty_step(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run(workdir=wd)
  (wd / "final_metrics.json").unlink()
  shutil.rmtree(wd / "checkpoints" / "16")
  (wd / "checkpoints" / "16").mkdir()
  p = h.run(workdir=wd)
  return ran(h, p, {"same result as a straight run": same_metrics(final(wd), h.reference())},
             lost="steps after the previous checkpoint (redone)")


@case("resume", "an unfinished Orbax save left behind (tmp folder)")
def _tmp_left(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run("--config.num_epochs=1", workdir=wd)
  shutil.copytree(wd / "checkpoints" / "8", wd / "checkpoints" / "12.orbax-checkpoint-tmp-1")
  p = h.run(workdir=wd)
  return ran(h, p, {"same result as a straight run": same_metrics(final(wd), h.reference())})


@case("resume", "`config.json` garbage in a workdir with checkpoints")
def _config_garbage(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run("--config.num_epochs=1", workdir=wd)
  (wd / "config.json").write_text("{garbage")
  return refused(h, h.run(workdir=wd), "config.json")


@case("resume", "`config.json` deleted in a workdir with checkpoints")
def _config_missing(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run("--config.num_epochs=1", workdir=wd)
  (wd / "config.json").unlink()
  return refused(h, h.run(workdir=wd), "config.json")


@case("resume", "`metrics.jsonl` with a torn last line")
def _torn_log(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run("--config.num_epochs=1", workdir=wd)
  with open(wd / "metrics.jsonl", "a") as f:
    f.write('{"step": 9, "split": "tr')
  p = h.run(workdir=wd)
  return ran(h, p, {"no duplicate or garbage rows": no_duplicate_rows(wd),
                    "same result as a straight run": same_metrics(final(wd), h.reference())})


@case("resume", "`metrics.jsonl` deleted before a resume")
def _log_deleted(h: Harness) -> Verdict:
  wd = h.path("w")
  h.run("--config.num_epochs=1", workdir=wd)
  (wd / "metrics.jsonl").unlink()
  p = h.run(workdir=wd)
  return ran(h, p, {"same result as a straight run": same_metrics(final(wd), h.reference())},
             lost="the deleted log rows")


@case("resume", "reproduce: a finished run's `final_metrics.json` garbage")
def _sweep_garbage(h: Harness) -> Verdict:
  sweep = h.path("sweep")
  args = sweep_args(sweep, "ce_2d", "--config.num_steps=2")
  first = h.run(*args, module="experiments.reproduce", config=SWEEP_TABLE)
  if first.rc:
    return Verdict(False, f"first sweep exit {first.rc}", message(first, h.root))
  (sweep / "ce_2d" / "seed_0" / "final_metrics.json").write_text("{garbage")
  p = h.run(*args, module="experiments.reproduce", config=SWEEP_TABLE)
  return ran(h, p, {"table written": (sweep / "t.md").is_file(),
                    "run redone or read": bool(final(sweep / "ce_2d" / "seed_0"))})


@case("resume", "reproduce: a sweep folder holding a run of another config")
def _sweep_other(h: Harness) -> Verdict:
  sweep = h.path("sweep")
  args = sweep_args(sweep, "ce_2d", "--config.num_steps=2")
  h.run(*args, module="experiments.reproduce", config=SWEEP_TABLE)
  return refused(h, h.run(*args, "--config.optimizer.learning_rate=0.01",
                          module="experiments.reproduce", config=SWEEP_TABLE), "learning_rate")


# ----------------------------------------------------------------------------- signals
def _signal_case(title: str, signum: int, *, at_step: int = 40, extra: Sequence[str] = (),
                 expect: int | None = None, twice: bool = False):
  @case("signals", title)
  def run(h: Harness) -> Verdict:
    wd = h.path("w")
    args = (*LONG, *extra)
    proc = h.start(*args, workdir=wd)
    reached = wait_for(trained_past(wd, at_step), 300, proc)
    os.killpg(proc.pid, signum)
    if twice:
      time.sleep(0.05)
      os.killpg(proc.pid, signum)
    stopped = finish(proc)
    rc_ok = stopped.rc == (expect if expect is not None else 128 + signum) or (
        signum == signal.SIGKILL and stopped.rc == -signal.SIGKILL)
    p = h.run(*args, workdir=wd)
    checks = {"signalled mid-training": reached, f"stop exit {stopped.rc}": rc_ok,
              "no traceback": not has_traceback(stopped),
              "resumed to the straight run's result": same_metrics(final(wd), h.reference(*args)),
              "no duplicate log rows": no_duplicate_rows(wd)}
    v = ran(h, p, checks, lost="nothing" if signum != signal.SIGKILL else
            "steps after the last checkpoint (redone)")
    v.message = message(stopped, h.root)
    return v
  return run


_signal_case("SIGTERM mid-training, then the same command", signal.SIGTERM)
_signal_case("SIGINT (Ctrl-C) mid-training, then the same command", signal.SIGINT)
_signal_case("SIGKILL mid-training, then the same command", signal.SIGKILL)
_signal_case("SIGKILL while saving a checkpoint every step", signal.SIGKILL,
             extra=("--config.checkpoint_every=1",))
_signal_case("SIGTERM twice, 50 ms apart", signal.SIGTERM, twice=True)
_signal_case("SIGHUP (terminal closed) mid-training", signal.SIGHUP)


@case("signals", "SIGTERM during start-up (before the first step)")
def _term_startup(h: Harness) -> Verdict:
  wd = h.path("w")
  proc = h.start(workdir=wd)
  wait_for(lambda: (wd / ".lock").exists(), 120, proc)
  os.killpg(proc.pid, signal.SIGTERM)
  stopped = finish(proc)
  p = h.run(workdir=wd)
  v = ran(h, p, {"stop exit 143": stopped.rc == 143, "no traceback": not has_traceback(stopped),
                 "then trained": same_metrics(final(wd), h.reference())})
  v.message = message(stopped, h.root)
  return v


@case("signals", "SIGTERM to a sweep, then the same command")
def _term_sweep(h: Harness) -> Verdict:
  sweep = h.path("sweep")
  args = sweep_args(sweep, "ce_2d,ce_4d", "--config.num_epochs=40", "--config.log_every=1")
  proc = h.start(*args, module="experiments.reproduce", config=SWEEP_TABLE)
  reached = wait_for(trained_past(sweep / "ce_2d" / "seed_0", 20), 300, proc)
  os.killpg(proc.pid, signal.SIGTERM)
  stopped = finish(proc)
  p = h.run(*args, module="experiments.reproduce", config=SWEEP_TABLE)
  v = ran(h, p, {"signalled mid-run": reached, "stop exit 143": stopped.rc == 143,
                 "table written": (sweep / "t.md").is_file()})
  v.message = message(stopped, h.root)
  return v


# ----------------------------------------------------------------------------- numerics
@case("numerics", "learning rate 1e30 (SNNL): the loss goes NaN")
def _nan_loss(h: Harness) -> Verdict:
  cfg = h.config_file('c.aux_losses = [base.aux_loss("snnl", 1.0)]\n'
                      'c.optimizer = base.optimizer("sgd", 1e30)\nc.checkpoint_every = 1')
  wd = h.path("w")
  p = h.run(config=cfg, workdir=wd)
  v = refused(h, p, "non-finite", "checkpoint")
  return v


@case("numerics", "update to inf parameters (SGD, lr 1e300) with a checkpoint every step")
def _inf_update(h: Harness) -> Verdict:
  cfg = h.config_file('c.optimizer = base.optimizer("sgd", 1e300)\nc.checkpoint_every = 1\n'
                      'c.aux_losses = []')
  wd = h.path("w")
  p = h.run(config=cfg, workdir=wd)
  v = refused(h, p, "non-finite")
  return Verdict(v.clean and not steps(wd), v.outcome + f"; checkpoints {steps(wd)}", v.message)


@case("numerics", "after a NaN stop: the same workdir with a lower learning rate")
def _after_nan(h: Harness) -> Verdict:
  cfg = h.config_file('c.aux_losses = [base.aux_loss("snnl", 1.0)]\n'
                      'c.optimizer = base.optimizer("sgd", 1e30)\nc.checkpoint_every = 1')
  wd = h.path("w")
  h.run(config=cfg, workdir=wd)
  p = h.run("--config.optimizer.learning_rate=0.01", config=cfg, workdir=wd)
  if p.rc == 0:
    return ran(h, p, {"trained": bool(final(wd))})
  return refused(h, p, "init_from")


@case("numerics", "a new run `init_from` a NaN-stopped run's last checkpoint (finite, huge "
      "params)")
def _init_after_nan(h: Harness) -> Verdict:
  cfg = h.config_file('c.aux_losses = [base.aux_loss("snnl", 1.0)]\n'
                      'c.optimizer = base.optimizer("sgd", 1e30)\nc.checkpoint_every = 1')
  bad = h.path("bad")
  h.run(config=cfg, workdir=bad)
  wd = h.path("w")
  p = h.run("--config.optimizer.learning_rate=0.01", f"--config.init_from={bad}",
            config=cfg, workdir=wd)
  if p.rc:      # the weights of step 1 are finite but ~1e30: a clear stop is clean too
    return refused(h, p, "non-finite", "step 1")
  return ran(h, p, {"trained": bool(final(wd)), "finite": all(
      isinstance(v, (int, float)) and v == v for v in final(wd).values())})


@case("numerics", "an aux weight of 1e30")
def _huge_weight(h: Harness) -> Verdict:
  cfg = h.config_file('c.aux_losses = [base.aux_loss("center", 1e30)]\nc.checkpoint_every = 1')
  wd = h.path("w")
  p = h.run(config=cfg, workdir=wd)
  if p.rc == 0:
    return ran(h, p, {"finite final metrics": all(v == v for v in final(wd).values())})
  return refused(h, p, "non-finite")


@case("numerics", "the same seed twice: identical results")
def _deterministic(h: Harness) -> Verdict:
  a, b = h.path("a"), h.path("b")
  pa, pb = h.run(workdir=a), h.run(workdir=b)
  return ran(h, pb, {"both ran": pa.rc == 0, "identical": same_metrics(final(a), final(b))})


@case("numerics", "2 devices instead of 1: same result to ~1e-5")
def _devices(h: Harness) -> Verdict:
  env = dict(h.env, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  wd = h.path("w")
  p = h.run(workdir=wd, env=env)
  ref, got = h.reference(), final(wd)
  close = bool(got) and all(abs(got[k] - ref[k]) <= 1e-4 * max(1.0, abs(ref[k]))
                            for k in ref if k not in TIMING_KEYS)
  return ran(h, p, {"close to 1 device": close})


@case("numerics", "fewer examples than one batch (20 examples, batch 32)")
def _tiny_data(h: Harness) -> Verdict:
  cfg = h.config_file('c.dataset.kwargs.num_examples = 20')
  p = h.run(config=cfg, workdir=h.path("w"))
  if p.rc == 0:
    return Verdict(False, "exit 0: trained on nothing?", message(p, h.root))
  return refused(h, p, "batch")


# ----------------------------------------------------------------------------- multi-process
def _multiprocess(title: str, test: str):
  @case("multi-process", title)
  def run(h: Harness) -> Verdict:
    start = time.time()
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                        "slow", "-n", "0", f"tests/train/test_multiprocess.py::{test}"],
                       cwd=REPO, capture_output=True, text=True, timeout=900)
    tail = [ln for ln in p.stdout.splitlines() if ln.strip()][-1:] or [""]
    return Verdict(p.returncode == 0, f"pytest exit {p.returncode} in {time.time() - start:.0f} s",
                   tail[0][:200])
  return run


_multiprocess("2 processes, SIGTERM to one: both stop at one step, one checkpoint, exact resume",
              "test_a_signal_stops_every_process_at_the_same_step_and_resumes_exactly[one_process]")
_multiprocess("2 processes, SIGTERM to both 0.3 s apart",
              "test_a_signal_stops_every_process_at_the_same_step_and_resumes_exactly"
              "[both_0.3s_apart]")
_multiprocess("2 processes: train, stop, resume; equal to 1 process",
              "test_two_processes_train_resume_and_match_one_process")


# ----------------------------------------------------------------------------- report
def table(results: Sequence[tuple[Case, Verdict]]) -> str:
  lines = ["| # | group | case | clean | outcome | message (abridged) | data lost |",
           "|---|---|---|---|---|---|---|"]
  esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
  for c, v in results:
    lines.append(f"| {c.number} | {c.group} | {esc(c.title)} | {'yes' if v.clean else '**no**'} "
                 f"| {esc(v.outcome)} | {esc(v.message) and '`' + esc(v.message) + '`'} "
                 f"| {esc(v.lost)} |")
  return "\n".join(lines)


def section(results: Sequence[tuple[Case, Verdict]], command: str, commit: str,
            wall_s: float) -> str:
  clean = sum(v.clean for _, v in results)
  return "\n".join([
      BEGIN, f"## The fault cases ({len(results)})", "",
      f"- command: `{command}`", f"- git commit: `{commit}`",
      f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; wall time "
      f"{wall_s / 60:.0f} min on this machine's 2 CPU cores (a sweep shared them)",
      f"- **{clean} of {len(results)} clean.** What counts as clean: "
      "`experiments/fault_cases.py`'s docstring.", "",
      table(results), END])


def write(out: pathlib.Path, text: str) -> None:
  old = out.read_text() if out.is_file() else ""
  if BEGIN in old and END in old:
    new = old[:old.index(BEGIN)] + text + old[old.index(END) + len(END):]
  else:
    new = old.rstrip() + "\n\n" + text + "\n"
  out.write_text(new)


def select(spec: str | None) -> list[Case]:
  if not spec:
    return list(CASES)
  wanted: set[int] = set()
  for part in spec.split(","):
    lo, _, hi = part.partition("-")
    wanted.update(range(int(lo), int(hi or lo) + 1))
  return [c for c in CASES if c.number in wanted]


def main(argv: list[str]) -> None:
  del argv
  from experiments.reproduce import git_commit  # noqa: PLC0415
  f = flags.FLAGS
  mnist = pathlib.Path(f.mnist_dir) if f.mnist_dir and pathlib.Path(f.mnist_dir).is_dir() else None
  root = pathlib.Path(tempfile.mkdtemp(prefix="disc_jax_faults_"))
  if mnist is not None and f.fashion_mnist_dir:
    shutil.copytree(f.fashion_mnist_dir, root / "fashion_mnist_src")
  h = Harness(root, mnist)
  start = time.time()
  results = []
  cases = select(f.only)
  for c in cases:
    t = time.time()
    h.case = c.number
    try:
      v = c.run(h)
    except Exception as e:  # noqa: BLE001 - a harness failure is a row, not a crash
      v = Verdict(False, f"harness error: {type(e).__name__}: {str(e)[:200]}")
    results.append((c, v))
    print(f"{c.number:3d} {'clean' if v.clean else 'NOT CLEAN':9s} {time.time() - t:5.0f} s  "
          f"{c.title[:60]}  | {v.outcome[:120]}", flush=True)
  command = "python -m experiments.fault_cases " + " ".join(sys.argv[1:])
  text = section(results, command, git_commit(), time.time() - start)
  if f.only:
    print(table(results))
  else:
    write(pathlib.Path(f.out), text)
  print(f"{sum(v.clean for _, v in results)} of {len(results)} clean; workdirs under {root}")
  if not f.keep:
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  flags.DEFINE_string("out", "results/reliability.md", "Markdown file the table goes into.")
  flags.DEFINE_string("only", None, "Only these case numbers, e.g. '1-20,57' (prints the rows).")
  flags.DEFINE_string("mnist_dir", str(REPO.parent / "shared/data/mnist"),
                      "Folder of the original MNIST files (the data cases).")
  flags.DEFINE_string("fashion_mnist_dir", str(REPO.parent / "shared/data/fashion_mnist"),
                      "Folder of the original Fashion-MNIST files (one data case).")
  flags.DEFINE_bool("keep", False, "Keep the temporary workdirs.")
  app.run(main)
