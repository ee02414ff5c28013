"""disc_jax.plots: PNGs are written, PCA matches NumPy on known principal axes."""

from __future__ import annotations

import struct
import sys

import numpy as np
import pytest

from disc_jax import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
  """(width, height) from the PNG IHDR chunk."""
  with open(path, "rb") as f:
    head = f.read(24)
  assert head[:8] == PNG_MAGIC, "not a PNG file"
  return struct.unpack(">II", head[16:24])


def known_axes_data(d: int = 5, seed: int = 0):
  """Points ±a q1, ±b q2, ±c q3 (+ an offset) for an orthonormal Q: the principal axes
  are exactly q1, q2 (a > b > c) and the centred 2-D projection is exactly (±a, ±b)."""
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(d, d)))
  a, b, c = 5.0, 2.0, 0.5
  coords = np.array([[a, 0, 0], [-a, 0, 0], [0, b, 0], [0, -b, 0], [0, 0, c], [0, 0, -c]])
  x = coords @ q[:, :3].T + rng.normal(size=d)
  return x, q, coords


def test_pca_recovers_known_axes_and_matches_numpy_eigh():
  x, q, coords = known_axes_data()
  proj, comp, ratio = plots.pca_2d(x)
  # components are q1, q2 up to sign; the projection is the known coordinates up to sign.
  signs = np.sign(np.sum(comp * q[:, :2].T, axis=1))
  np.testing.assert_allclose(comp, signs[:, None] * q[:, :2].T, atol=1e-12)
  np.testing.assert_allclose(proj, coords[:, :2] * signs, atol=1e-12)
  # independent NumPy check: top eigenvectors of the covariance matrix.
  evals, evecs = np.linalg.eigh(np.cov(x, rowvar=False))
  top = evecs[:, ::-1][:, :2].T
  np.testing.assert_allclose(np.abs(np.sum(comp * top, axis=1)), [1.0, 1.0], atol=1e-10)
  np.testing.assert_allclose(ratio, evals[::-1][:2] / evals.sum(), rtol=1e-10)
  # sign convention: the largest-magnitude entry of each component is positive.
  assert all(comp[i, np.abs(comp[i]).argmax()] > 0 for i in range(2))


def test_pca_two_dims_is_identity_and_rejects_one_dim():
  x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
  proj, comp, _ = plots.pca_2d(x)
  np.testing.assert_allclose(proj, x - x.mean(0))
  np.testing.assert_array_equal(comp, np.eye(2))
  with pytest.raises(ValueError, match="D >= 2"):
    plots.pca_2d(np.ones((4, 1)))


def test_scatter_2d_writes_png(tmp_path):
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(3), 20)
  feats = rng.normal(size=(60, 2)) + 4 * np.eye(3, 2)[labels]
  path = plots.scatter_features_2d(feats, labels, tmp_path / "sub" / "feat.png",
                                   title="LeNet++ features", class_names=["R", "G", "B"])
  assert isinstance(path, str) and path.endswith("feat.png")
  w, h = png_size(path)
  assert w > 100 and h > 100
  assert (tmp_path / "sub" / "feat.png").stat().st_size > 1000


def test_scatter_high_dim_uses_pca_and_subsamples(tmp_path, monkeypatch):
  x, _, _ = known_axes_data(d=6)
  x = np.repeat(x, 10, axis=0)
  labels = np.arange(len(x)) % 4
  calls = []
  real_pca = plots.pca_2d
  monkeypatch.setattr(plots, "pca_2d", lambda f: calls.append(np.shape(f)) or real_pca(f))
  path = plots.scatter_features_2d(x, labels, tmp_path / "pca.png", max_points=25)
  assert calls == [(25, 6)]  # projected from 6-D, on a subset of 25 rows
  assert png_size(path)[0] > 100


def test_scatter_runs_side_by_side(tmp_path):
  rng = np.random.default_rng(2)
  labels = np.repeat(np.arange(3), 10)
  runs = {name: (rng.normal(size=(30, 2)) * s, labels)
          for name, s in [("cross-entropy", 3.0), ("center loss", 1.0), ("σ²R", 0.3)]}
  one = plots.scatter_features_2d(*runs["σ²R"], tmp_path / "one.png")
  three = plots.scatter_runs_2d(runs, tmp_path / "three.png", title="Fuzzy-RGB")
  assert png_size(three)[0] > 2 * png_size(one)[0]
  with pytest.raises(ValueError, match="empty"):
    plots.scatter_runs_2d({}, tmp_path / "none.png")


def test_scatter_rejects_mismatched_labels_and_uses_no_pyplot(tmp_path):
  with pytest.raises(ValueError, match="labels"):
    plots.scatter_features_2d(np.zeros((5, 2)), np.zeros(4, int), tmp_path / "bad.png")
  if "matplotlib.pyplot" not in sys.modules:  # nothing else in this process imported it
    plots.scatter_features_2d(np.eye(2), np.arange(2), tmp_path / "ok.png")
    assert "matplotlib.pyplot" not in sys.modules


def test_classes_named_by_colours_are_drawn_in_them():
  from matplotlib import colors
  from matplotlib.figure import Figure
  x = np.random.default_rng(0).normal(size=(30, 2))
  y = np.repeat(np.arange(3), 10)
  ax = Figure().add_subplot()
  plots._draw(ax, x, y, title=None, class_names=["red", "green", "blue"], max_points=None, seed=0)
  drawn = [colors.to_hex(c.get_facecolor()[0], keep_alpha=False) for c in ax.collections]
  assert drawn == [colors.to_hex(n) for n in ("red", "green", "blue")]
  ax = Figure().add_subplot()  # other names keep the palette
  plots._draw(ax, x, y, title=None, class_names=["cat", "dog", "1"], max_points=None, seed=0)
  drawn = [colors.to_hex(c.get_facecolor()[0], keep_alpha=False) for c in ax.collections]
  assert colors.to_hex("red") not in drawn and len(set(drawn)) == 3
