"""Every config under configs/ loads and validates; every table config runs on random data.

Per table config: its first and last runs validate (``python -m pytest -m slow`` validates
every run), ``TABLE`` names exactly the config's ``RUNS``, the docstring carries the
reproduce command and points to ``TABLE`` for the figures and to ``experiments.cost`` for
the cost, and one row (the table's last run) runs on
'synthetic' images of the table's kind (28x28x1 or 32x32x3, 4 classes, batch 32 over the
8 test devices). The train step of every table is traced with ``jax.eval_shape`` (a real
compile of a ResNet-50 takes minutes on the 2 shared cores); the three CPU tables in
:data:`REAL` (one per small network / pipeline feature: balanced batches + group
softmax, ITRA's second batch, the embedding CNN's learned centroids) really train 2 steps
and evaluate, through :func:`experiments._seeds.run_seeds` twice: the second call
must read the finished run back instead of training again, and its final metrics must
hold every key the table reads. The per-class intra-class std keys of the σ²R tables
(10 classes; the smoke runs have 4) are checked against
:func:`disc_jax.train.evaluate.intra_class_std_metrics` at the dataset's class count.
"""

from __future__ import annotations

import importlib
import math
import pathlib

import jax
import numpy as np
import pytest

from disc_jax.train import config as config_lib
from disc_jax.train import evaluate, loop, objective
from experiments import cost, tables
from experiments._seeds import run_seeds

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG_FILES = sorted(p for p in (ROOT / "configs").rglob("*.py")
                      if not p.name.startswith("_") and p.name != "paper.py")
TABLES = tables.table_configs()
REAL = ("compare/fashion_mnist", "itra/table1_fashion_mnist", "intra_class_variance/table1_2_mnist")


def _module(path: pathlib.Path):
  return importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))


def _runs(module) -> tuple[str | None, ...]:
  return tuple(getattr(module, "RUNS", None) or (None,))


def _run_config(module, run):
  """The run's config as validated on one device, without its ``init_from``: the tests have
  8 fake devices, which some paper batches (500, 50) do not divide, and ``init_from`` names
  another table's run, which this machine has not trained (both are checked for real when
  the run starts: tests/train/test_config.py)."""
  config = module.get_config() if run is None else module.get_config(f"run={run}")
  config.num_devices = 1
  config.init_from = None
  return config


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_config_file_loads_and_validates(path):
  module = _module(path)
  runs = _runs(module)
  for run in {runs[0], runs[-1]}:
    config_lib.validate(_run_config(module, run))


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_every_run_of_a_config_file_validates(path):
  module = _module(path)
  for run in _runs(module):
    config_lib.validate(_run_config(module, run))


def test_every_paper_directory_has_table_configs():
  names = {t.name.split("/")[0] for t in TABLES}
  assert names == set(tables.PAPERS)
  assert len(TABLES) >= 20


@pytest.mark.parametrize("entry", TABLES, ids=lambda t: t.name)
def test_table_names_exactly_the_config_runs(entry):
  runs = entry.module.RUNS
  assert set(entry.table.runs) == set(runs), (
      f"{entry.name}: TABLE rows use {sorted(entry.table.runs)}, config has {sorted(runs)}")


@pytest.mark.parametrize("entry", TABLES, ids=lambda t: t.name)
def test_docstring_has_the_command_and_points_to_table_and_cost(entry):
  doc = entry.module.__doc__
  assert entry.path.relative_to(ROOT).as_posix() in doc, f"{entry.name}: no command"
  assert "python -m experiments.reproduce" in doc
  has_figures = any(row.figure(c.name) is not None for row in entry.table.rows
                    for c in entry.table.columns)
  assert "``TABLE``" in doc or not has_figures, f"{entry.name}: say the figures live in TABLE"
  assert "python -m experiments.cost" in doc, f"{entry.name}: say how to compute the cost"


def _smoke_config(entry):
  run = entry.table.runs[-1]
  config = entry.module.get_config(f"run={run}")
  shape = (28, 28, 1) if cost.image_shape(config)[2] == 1 else (32, 32, 3)
  return run, shape, cost.synthetic_config(config, image_shape=shape)


def _expected_keys(entry, run: str) -> set[str]:
  keys = set()
  for row in entry.table.rows:
    if row.run != run:
      continue
    for column in entry.table.columns:
      try:
        key = column.metric_key(row.params)
      except KeyError:
        continue
      if key is not None:
        keys.add(key)
  return keys


def _std_keys(entry) -> set[str]:
  """Every intra-class std key (mean or per class, train or test) of the table's rows."""
  return {k for run in entry.table.runs for k in _expected_keys(entry, run)
          if k.removeprefix("train/").split("/class_")[0] == "intra_class_std"}


STD_TABLES = [t for t in TABLES if _std_keys(t)]


def test_sigma2r_tables_read_per_class_std():
  names = {t.name for t in STD_TABLES}
  assert {"sigma2r/table1_fashion_mnist", "sigma2r/table2_3_cifar10"} <= names
  keys = _std_keys(next(t for t in STD_TABLES if t.name == "sigma2r/table1_fashion_mnist"))
  assert {"intra_class_std/class_9", "train/intra_class_std/class_0"} <= keys


@pytest.mark.parametrize("entry", STD_TABLES, ids=lambda t: t.name)
def test_final_metrics_report_every_intra_class_std_key(entry):
  """The final evaluation's intra-class std keys (disc_jax.train.evaluate) at the
  dataset's real class count cover every std key the table reads (σ²R Tables 1-2's
  per-class ``[train/]intra_class_std/class_<k>``)."""
  k = config_lib.num_classes_of(entry.module.get_config())
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(3 * k, 4)), np.repeat(np.arange(k), 3)
  reported = {**evaluate.intra_class_std_metrics(x, y, k),
              **evaluate.intra_class_std_metrics(x, y, k, prefix="train/")}
  missing = _std_keys(entry) - set(reported)
  assert not missing, f"{entry.name}: final metrics lack {sorted(missing)}"


def test_real_tables_exist():
  assert set(REAL) <= {t.name for t in TABLES}


@pytest.mark.parametrize("entry", TABLES, ids=lambda t: t.name)
def test_table_runs_on_random_data(entry, tmp_path):
  run, shape, config = _smoke_config(entry)
  if entry.name in REAL:
    logs = []
    metrics = run_seeds({run: config}, tmp_path, seeds=[0], progress=False,
                        log=logs.append)[run][0]
    again = run_seeds({run: config}, tmp_path, seeds=[0], progress=False,
                      log=logs.append)[run][0]
    assert "training" in logs[0] and "finished earlier" in logs[1]
    assert again == metrics
    assert metrics["step"] == 2
    assert math.isfinite(metrics["accuracy"]) and math.isfinite(metrics["cross_entropy"])
    missing = _expected_keys(entry, run) - set(metrics)
    assert not missing, f"{entry.name}/{run}: final metrics lack {sorted(missing)}"
    return
  built = loop.build(config)
  state, batch = cost.abstract_step_inputs(built, shape, config.batch_size)
  new_state, metrics = jax.eval_shape(built.train_step, state, batch)
  assert metrics["loss"].shape == ()
  assert np.dtype(metrics["loss"].dtype) == np.float32
  assert jax.tree.structure(new_state.params) == jax.tree.structure(state.params)
  assert len([k for k in metrics if k.startswith("loss/")]) == len(objective.entries(config))
