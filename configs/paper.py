"""The papers' published figures as data, so a table config can be compared with its paper.

Every table config (``configs/<paper>/<table>.py``) defines ``TABLE``: a :class:`Table`
whose :class:`Row` s name the run (of the module's ``RUNS``) that reproduces them and whose
:class:`Column` s say which final metric (``final_metrics.json`` of a run, see
:mod:`disc_jax.train.evaluate`) is compared with the paper's figure and how it is
converted to the paper's unit::

  ours = offset + scale * metric          (e.g. error in %: offset 100, scale -100)

``experiments.tables`` finds every ``TABLE`` and ``experiments.reproduce`` prints
paper, ours (mean ± std over seeds, or the max for ``stat='max'``) and the difference.

A column key may contain ``{name}`` fields filled from the row's ``params``: the
intra-class variance paper's nearest-centroid accuracy uses the learned centroids
(``nearest_centroid_accuracy/intra_class_variance``) for its own rows and the class
means (``nearest_centroid_accuracy/train``) for the cross-entropy rows. A row whose
``run`` is None (or a column whose ``key`` is None) cannot be produced by this library
yet; its ``note`` says why, and the report prints the note instead of a number.

>>> t = Table("demo", "Table 1", "demo", columns=(Column("acc (%)", "accuracy", scale=100),),
...           rows=(Row("baseline", "ce", {"acc (%)": (71.47, 0.36)}),))
>>> t.rows[0].figure("acc (%)")
(71.47, 0.36)
>>> t.columns[0].convert(0.7)
70.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

STATS = ("mean", "max")
Figure = tuple[float, float | None]


@dataclasses.dataclass(frozen=True)
class Column:
  """One compared quantity.

  Attributes:
    name: header, in the paper's unit (e.g. 'CIFAR-100 acc. (%)').
    key: the final-metrics key (may hold ``{param}`` fields), or None if no run of
      this library reports it (``note`` says why).
    scale, offset: ours = offset + scale * metric.
    stat: 'mean' (mean ± std over seeds) or 'max' (the best seed: σ²R Tables 3-4).
    relative_to: a run name: ours is divided by that run's mean of the same metric
      (training-time ratio to cross-entropy).
    digits: decimals printed.
    note: printed when ``key`` is None.
  """

  name: str
  key: str | None
  scale: float = 1.0
  offset: float = 0.0
  stat: str = "mean"
  relative_to: str | None = None
  digits: int = 2
  note: str = ""

  def __post_init__(self):
    if self.stat not in STATS:
      raise ValueError(f"Column {self.name!r}: stat must be one of {STATS}, got {self.stat!r}")

  def convert(self, value: float) -> float:
    """A metric value in the paper's unit."""
    return self.offset + self.scale * value

  def metric_key(self, params: Mapping[str, Any]) -> str | None:
    return None if self.key is None else self.key.format(**params)


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of a paper table.

  Attributes:
    label: the row as the paper names it.
    run: the run name (of the module's ``RUNS``) that reproduces it (None: not runnable, see note).
    paper: column name -> the paper's figure: a float, a (mean, std) pair, or None
      (the paper gives none).
    params: values for the ``{fields}`` of the column keys.
    note: why the row cannot be run, or a caveat printed under the table.
  """

  label: str
  run: str | None
  paper: Mapping[str, float | tuple[float, float] | None]
  params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  note: str = ""

  def figure(self, column: str) -> Figure | None:
    """The paper's figure for ``column`` as (value, std or None), or None."""
    value = self.paper.get(column)
    if value is None:
      return None
    if isinstance(value, (tuple, list)):
      return float(value[0]), float(value[1])
    return float(value), None


@dataclasses.dataclass(frozen=True)
class Table:
  """A paper table (or the part of it one config reproduces).

  Attributes:
    paper: the paper's file stem under /work/shared/papers (e.g. 'gini_kl_discriminability_loss').
    table: the paper's table number(s), e.g. 'Table 1'.
    title: what the table shows.
    columns, rows: see :class:`Column`, :class:`Row`.
    trials: how many trials the paper averages (None: not stated).
    notes: printed under the table (protocol differences, choices).
  """

  paper: str
  table: str
  title: str
  columns: tuple[Column, ...]
  rows: tuple[Row, ...]
  trials: int | None = None
  notes: str = ""

  def __post_init__(self):
    names = [c.name for c in self.columns]
    if len(set(names)) != len(names):
      raise ValueError(f"{self.table}: duplicate column names {names}")
    for row in self.rows:
      unknown = set(row.paper) - set(names)
      if unknown:
        raise ValueError(f"{self.table}, row {row.label!r}: figures for unknown columns "
                         f"{sorted(unknown)}; columns are {names}")

  @property
  def runs(self) -> tuple[str, ...]:
    """The config runs this table needs, in row order, without repeats."""
    out: list[str] = []
    for row in self.rows:
      if row.run is not None and row.run not in out:
        out.append(row.run)
    for col in self.columns:
      if col.relative_to is not None and col.relative_to not in out:
        out.append(col.relative_to)
    return tuple(out)
