"""experiments.benchmark_pipeline's jpeg section: JPEGs written once, crops pure in (seed, index), rates."""
from __future__ import annotations

import numpy as np

from experiments import benchmark_pipeline as bp


def test_jpegs_crops_and_rate(tmp_path):
  paths = bp.write_jpegs(tmp_path, n=3)
  assert len(paths) == 3 and bp.write_jpegs(tmp_path, n=3) == paths
  f = bp.DecodeCropFlip(size=32)
  a, b = f(5, paths[0]), f(5, paths[0])
  assert a.shape == (32, 32, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, f(i, paths[0])) for i in range(6, 10))
  rng = np.random.default_rng(0)
  for _ in range(50):
    x0, y0, x1, y1 = f.crop_box(rng, 500, 375)
    assert 0 <= x0 < x1 <= 500 and 0 <= y0 < y1 <= 375
  batches = list(bp.jpeg_dataset(paths, batch_size=2, workers=0, epochs=2))
  assert [x.shape for x in batches] == [(2, 224, 224, 3)] * 3
  assert min(bp.jpeg_rate(paths, workers=0, batch_size=2, batches=2)) > 0
