"""The registry of table configs and the paper-vs-ours markdown.

Every ``configs/<paper>/<name>.py`` (files starting with '_' are helpers) is a table
config: ``get_config(arg)`` and ``RUNS`` (the runs) plus ``TABLE`` (:class:`configs.paper.Table`, the
paper's figures). :func:`table_configs` lists them all; :func:`load` imports one by
path; :func:`comparison_markdown` turns per-seed final metrics into the published
comparison: one line per paper row, for every column the paper's figure, ours (mean ±
std over seeds, or the best seed) and ours minus the paper. ``python -m
experiments.tables`` prints the index of every table config (:func:`index_markdown`).

>>> names = [t.name for t in table_configs()]
>>> "gini_kl/table1_cifar100_resnet18" in names
True
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pathlib
from collections.abc import Mapping, Sequence
from types import ModuleType

import numpy as np

from configs import paper as paper_lib
from disc_jax.train.config import ConfigError

CONFIG_ROOT = pathlib.Path(__file__).resolve().parents[1] / "configs"
PAPERS = ("gini_kl", "intra_class_variance", "sigma2r", "itra", "group_softmax", "compare")


@dataclasses.dataclass(frozen=True)
class TableConfig:
  """One table config: its name ('<paper>/<file stem>'), file, module and figures."""

  name: str
  path: pathlib.Path
  module: ModuleType

  @property
  def table(self) -> paper_lib.Table:
    return self.module.TABLE

  def get_config(self):
    return self.module.get_config()


def _module_name(path: pathlib.Path) -> str:
  rel = path.resolve().relative_to(CONFIG_ROOT.parent)
  return ".".join(rel.with_suffix("").parts)


def load(path: str | pathlib.Path) -> TableConfig:
  """The table config at ``path`` (a file under configs/<paper>/).

  Raises ConfigError (a ValueError) if the file is not under configs/ or defines no ``TABLE``.
  """
  path = pathlib.Path(path).resolve()
  try:
    path.relative_to(CONFIG_ROOT)
  except ValueError:
    raise ConfigError(f"{path} is not under {CONFIG_ROOT}: table configs live in "
                     "configs/<paper>/<table>.py") from None
  module = importlib.import_module(_module_name(path))
  if not isinstance(getattr(module, "TABLE", None), paper_lib.Table):
    raise ConfigError(f"{path} defines no TABLE (a configs.paper.Table with the paper's "
                     "figures); only table configs can be reproduced")
  return TableConfig(f"{path.parent.name}/{path.stem}", path, module)


def table_configs(papers: Sequence[str] = PAPERS) -> list[TableConfig]:
  """Every table config under configs/<paper>/ for ``papers``, sorted by name."""
  out = []
  for name in papers:
    for path in sorted((CONFIG_ROOT / name).glob("*.py")):
      if not path.name.startswith("_"):
        out.append(load(path))
  return out


@dataclasses.dataclass(frozen=True)
class Stat:
  """A metric over seeds: mean, sample std (0 for one seed), max and count."""

  mean: float
  std: float
  max: float
  n: int


def aggregate(values: Sequence[float]) -> Stat | None:
  """Mean, std (ddof 1), max and count of ``values`` (None if empty).

  >>> s = aggregate([0.5, 0.7])
  >>> round(s.mean, 6), round(s.std, 4), s.max, s.n
  (0.6, 0.1414, 0.7, 2)
  """
  x = np.asarray([float(v) for v in values], np.float64)
  if x.size == 0:
    return None
  std = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
  return Stat(float(np.mean(x)), std, float(np.max(x)), int(x.size))


def _metric_values(runs: Sequence[Mapping[str, float]], key: str) -> list[float]:
  return [m[key] for m in runs if key in m and m[key] is not None]


def ours(column: paper_lib.Column, row: paper_lib.Row,
         results: Mapping[str, Sequence[Mapping[str, float]]]) -> Stat | str:
  """Our figure for one cell, in the paper's unit, or a short reason why there is none."""
  if row.run is None:
    return "not run"
  try:
    key = column.metric_key(row.params)
  except KeyError:
    return ""                       # the column does not apply to this row
  if key is None:
    return "n/a"
  values = _metric_values(results.get(row.run, ()), key)
  if not values:
    return "missing" if results.get(row.run) else "not run"
  converted = [column.convert(v) for v in values]
  if column.relative_to is not None:
    ref = _metric_values(results.get(column.relative_to, ()), key)
    if not ref:
      return f"needs {column.relative_to}"
    ref_mean = float(np.mean([column.convert(v) for v in ref]))
    converted = [v / ref_mean for v in converted]
  return aggregate(converted)


def _num(value: float, digits: int) -> str:
  return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def _cell_ours(column: paper_lib.Column, stat: Stat | str) -> str:
  if isinstance(stat, str):
    return stat
  if column.stat == "max":
    return _num(stat.max, column.digits)
  if stat.n == 1:
    return _num(stat.mean, column.digits)
  return f"{_num(stat.mean, column.digits)} ± {_num(stat.std, column.digits)}"


def _cell_paper(column: paper_lib.Column, figure) -> str:
  if figure is None:
    return "-"
  value, std = figure
  text = _num(value, column.digits)
  return text if std is None else f"{text} ± {_num(std, column.digits)}"


def _cell_diff(column: paper_lib.Column, figure, stat: Stat | str) -> str:
  if figure is None or isinstance(stat, str):
    return ""
  ours_value = stat.max if column.stat == "max" else stat.mean
  return f"{ours_value - figure[0]:+.{column.digits}f}"


def comparison_markdown(table: paper_lib.Table,
                        results: Mapping[str, Sequence[Mapping[str, float]]]) -> str:
  """The markdown table: per paper row, paper / ours / difference for every column.

  ``results`` maps a run name to its per-seed final metrics. Cells: 'not run' (no
  results for that run), 'missing' (the runs lack the metric), 'n/a' (no run of this
  library reports it; see the notes), '' (the column does not apply to the row).
  """
  head = ["row", "run"]
  for col in table.columns:
    head += [f"{col.name} paper", f"{col.name} ours", "Δ"]
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  notes = []
  for row in table.rows:
    cells = [row.label, row.run or "-"]
    for col in table.columns:
      stat = ours(col, row, results)
      figure = row.figure(col.name)
      cells += [_cell_paper(col, figure), _cell_ours(col, stat), _cell_diff(col, figure, stat)]
    lines.append("| " + " | ".join(cells) + " |")
    if row.note:
      notes.append(f"- {row.label}: {row.note}")
  for col in table.columns:
    if col.note:
      notes.append(f"- column '{col.name}': {col.note}")
    if col.stat == "max":
      notes.append(f"- column '{col.name}': ours is the best seed, as the paper reports the max.")
    if col.relative_to:
      notes.append(f"- column '{col.name}': divided by the mean of run '{col.relative_to}'.")
  seeds = sorted({len(v) for v in results.values()})
  lines += ["", f"Ours: mean ± sample std over {', '.join(map(str, seeds)) or 0} seed(s) per run; "
            f"the paper: {table.trials or 'unstated'} trial(s). Δ = ours - paper."]
  if table.notes:
    lines += ["", table.notes.strip()]
  if notes:
    lines += ["", *notes]
  return "\n".join(lines) + "\n"


def index_markdown(entries: Sequence[TableConfig] | None = None) -> str:
  """One line per table config: name, paper table, runs, rows with a paper figure."""
  entries = table_configs() if entries is None else entries
  lines = ["| config | paper | table | runs | rows with paper figures |", "|---|---|---|---|---|"]
  for e in entries:
    figured = sum(any(r.figure(c.name) for c in e.table.columns) for r in e.table.rows)
    lines.append(f"| configs/{e.name}.py | {e.table.paper} | {e.table.table} | "
                 f"{len(e.table.runs)} | {figured} of {len(e.table.rows)} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  print(index_markdown())
