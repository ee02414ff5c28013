"""2-D scatter plots of deep features, saved as PNG (σ²R Fig. 4; intra-class-variance
paper Figs. 2-5, which use "2-component PCA" above two dimensions).

Figures are drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot,
no global backend switch, no display, nothing left open after saving.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import matplotlib.colors
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def pca_2d(features) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Projects [N, D] features on their first two principal axes (float64 SVD).

  Returns ``(projected [N, 2], components [2, D], explained_variance_ratio [2])``. Rows
  are centred on their mean; ``components`` are the top right-singular vectors of the
  centred data, each signed so that its largest-magnitude entry is positive (SVD signs
  are arbitrary). ``D == 2`` is returned as it is (centred), with identity components.

  >>> p, comp, _ = pca_2d(np.array([[1., 0., 0.], [-1., 0., 0.], [0., .5, 0.], [0., -.5, 0.]]))
  >>> comp.round(6).tolist()
  [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
  """
  x = np.asarray(features, dtype=np.float64)
  if x.ndim != 2 or x.shape[1] < 2:
    raise ValueError(f"`features` must have shape [N, D] with D >= 2, got {x.shape}; "
                     "a 1-D feature cannot be drawn as a 2-D scatter.")
  xc = x - x.mean(0) if len(x) else x
  if x.shape[1] == 2:
    var = xc.var(0) if len(x) else np.zeros(2)
    return xc, np.eye(2), var / var.sum() if var.sum() > 0 else np.zeros(2)
  _, s, vt = np.linalg.svd(xc, full_matrices=False)
  comp = vt[:2]
  comp = comp * np.where(comp[np.arange(2), np.abs(comp).argmax(1)] < 0, -1.0, 1.0)[:, None]
  total = float((s ** 2).sum())
  ratio = (s[:2] ** 2) / total if total > 0 else np.zeros(2)
  return xc @ comp.T, comp, ratio


def _draw(ax, features, labels, *, title, class_names, max_points, seed) -> None:
  x = np.asarray(features)
  y = np.asarray(labels).astype(np.int64)
  if y.shape != (x.shape[0],):
    raise ValueError(f"`labels` must have shape ({x.shape[0]},) to match `features` "
                     f"{x.shape}, got {y.shape}.")
  if max_points is not None and len(x) > max_points:  # same subset for the same inputs
    keep = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
    x, y = x[keep], y[keep]
  pts, _, ratio = pca_2d(x)
  pca = x.shape[1] > 2
  classes = np.unique(y)
  cmap = _colormap(int(classes.max()) + 1 if len(classes) else 1)
  names = [class_names[c] if class_names is not None and c < len(class_names) else str(c)
           for c in classes]
  # Classes named by colours (Fuzzy-RGB's 'red', 'green', 'blue') are drawn in them.
  by_name = all(matplotlib.colors.is_color_like(n) and not n.isdigit() for n in names)
  for c, name in zip(classes, names):
    sel = y == c
    color = name if by_name else cmap(c)
    ax.scatter(pts[sel, 0], pts[sel, 1], s=4, alpha=0.6, color=color, label=name,
               linewidths=0, rasterized=True)
  if 0 < len(classes) <= 20:
    ax.legend(markerscale=3, fontsize="small", loc="best", framealpha=0.8)
  if pca:
    ax.set_xlabel(f"PC 1 ({100 * ratio[0]:.1f}% var.)")
    ax.set_ylabel(f"PC 2 ({100 * ratio[1]:.1f}% var.)")
  else:
    ax.set_xlabel("feature 1")
    ax.set_ylabel("feature 2")
  if title:
    ax.set_title(title)
  ax.set_aspect("equal", adjustable="datalim")


def _colormap(num_classes: int):
  import matplotlib  # colormaps registry; no pyplot
  name = "tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "turbo"
  cm = matplotlib.colormaps[name]
  if name == "turbo":
    return lambda c: cm(c / max(num_classes - 1, 1))
  return lambda c: cm(c % cm.N)


def _save(fig: Figure, path) -> str:
  path = os.fspath(path)
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  FigureCanvasAgg(fig)
  fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
  return path


def scatter_features_2d(features, labels, path, *, title: str | None = None,
                        class_names: Sequence[str] | None = None,
                        max_points: int | None = 20000, seed: int = 0) -> str:
  """Saves a 2-D scatter of ``features`` [N, D] coloured by ``labels`` [N] as a PNG.

  ``D == 2`` is drawn as it is; ``D > 2`` is projected with :func:`pca_2d`. Above
  ``max_points`` rows a fixed random subset (``seed``) is drawn. Parent folders are
  created. Returns ``path`` as a string.
  """
  fig = Figure(figsize=(5, 5), layout="constrained")
  _draw(fig.add_subplot(1, 1, 1), features, labels, title=title, class_names=class_names,
        max_points=max_points, seed=seed)
  return _save(fig, path)


def scatter_runs_2d(runs: Mapping[str, tuple], path, *, title: str | None = None,
                    class_names: Sequence[str] | None = None,
                    max_points: int | None = 20000, seed: int = 0) -> str:
  """Saves one panel per run, side by side, as a PNG (σ²R Fig. 4: CE | center | σ²R).

  ``runs`` maps a panel title to ``(features, labels)``, in display order.
  """
  if not runs:
    raise ValueError("`runs` is empty; pass {'panel title': (features, labels), ...}.")
  fig = Figure(figsize=(4.5 * len(runs), 4.8), layout="constrained")
  for i, (name, (feats, labs)) in enumerate(runs.items()):
    _draw(fig.add_subplot(1, len(runs), i + 1), feats, labs, title=name,
          class_names=class_names, max_points=max_points, seed=seed)
  if title:
    fig.suptitle(title)
  return _save(fig, path)


def growth_rates(metrics_jsonl, path, *, title: str | None = None) -> str | None:
  """Plots each class's learned σ²R growth rate w_K against the epoch (σ²R Fig. 5).

  Reads the ``train`` rows of a run's ``metrics.jsonl`` and draws one line per
  ``w_K/<term>/<class>`` key; returns ``path``, or None when the run logged no w_K.
  """
  series: dict[str, list[tuple[float, float]]] = {}
  with open(metrics_jsonl, encoding="utf-8") as f:
    for line in f:
      row = json.loads(line)
      if row.get("split") != "train" or "epoch" not in row:
        continue
      for key, value in row.items():
        if key.startswith("w_K/") and isinstance(value, (int, float)):
          series.setdefault(key, []).append((row["epoch"], value))
  if not series:
    return None
  fig = Figure(figsize=(6, 4), layout="constrained")
  ax = fig.add_subplot(1, 1, 1)
  for key in sorted(series, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
    epochs, values = zip(*sorted(series[key]))
    ax.plot(epochs, values, label=f"class {key.rsplit('/', 1)[1]}", linewidth=1.2)
  ax.set_xlabel("epoch")
  ax.set_ylabel("$w_K$ (eq. 9: $K = \\epsilon + Z\\,\\sigma(w_K)$)")
  ax.set_title(title or "σ²R growth rates per class")
  ax.legend(fontsize=7, ncol=2)
  return _save(fig, path)
