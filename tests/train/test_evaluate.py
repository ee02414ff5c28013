"""disc_jax.train.evaluate on host arrays: the intra-class std keys of the final metrics.

σ²R Tables 1-2 read I_k of eq. 12 per class: ``intra_class_std/class_<k>`` (test) and
``train/intra_class_std/class_<k>`` (train), reported for up to 100 classes. The final
evaluation is driven here by stand-in steps/pipelines whose "network" returns the
image as its features, so no model is compiled.
"""

from __future__ import annotations


import numpy as np
import pytest

from disc_jax.train import evaluate


def _np_std(x, y, k):
  """Eq. 12 with numpy: sqrt(sum ||x - mu_k||^2 / (n_k - 1)), NaN below 2 examples."""
  out = np.full(k, np.nan)
  for c in range(k):
    xc = x[y == c]
    if len(xc) >= 2:
      out[c] = np.sqrt(np.sum((xc - xc.mean(0)) ** 2) / (len(xc) - 1))
  return out


def test_per_class_keys_match_numpy_with_nan_for_small_classes():
  rng = np.random.default_rng(0)
  k = 5
  y = np.array([0, 0, 0, 1, 1, 2, 4, 4, 4, 4])    # class 3 absent, class 2 one example
  x = rng.normal(size=(len(y), 3)) * (1 + y[:, None])
  m = evaluate.intra_class_std_metrics(x.astype(np.float32), y, k, prefix="train/")
  ref = _np_std(x, y, k)
  assert set(m) == {"train/intra_class_std"} | {f"train/intra_class_std/class_{c}"
                                                 for c in range(k)}
  got = np.array([m[f"train/intra_class_std/class_{c}"] for c in range(k)])
  np.testing.assert_allclose(got, ref, rtol=1e-5)       # NaN in the same places
  assert np.isnan(got[2]) and np.isnan(got[3])
  assert m["train/intra_class_std"] == pytest.approx(np.nanmean(ref), rel=1e-5)


@pytest.mark.parametrize("k,per_class", [(100, True), (101, False)])
def test_per_class_keys_only_up_to_100_classes(k, per_class):
  y = np.repeat(np.arange(k), 2)
  x = np.random.default_rng(1).normal(size=(2 * k, 2))
  m = evaluate.intra_class_std_metrics(x, y, k)
  assert ("intra_class_std/class_0" in m) is per_class
  assert ("intra_class_std/class_99" in m) is per_class
  assert len(m) == 1 + k * per_class and np.isfinite(m["intra_class_std"])


class _Pipeline:
  """An eval pipeline over fixed arrays: batches of 4, the last one padded."""

  def __init__(self, x, y):
    self.x, self.y = x, y

  def batches(self):
    for i in range(0, len(self.x), 4):
      x, y = self.x[i:i + 4], self.y[i:i + 4]
      pad = 4 - len(x)
      yield {"image": np.concatenate([x, np.zeros((pad, x.shape[1]), x.dtype)]),
             "label": np.concatenate([y, np.zeros(pad, y.dtype)]).astype(np.int32),
             "mask": np.concatenate([np.ones(len(x)), np.zeros(pad)]).astype(np.float32)}


def test_final_metrics_report_per_class_std_of_each_split():
  k = 3
  rng = np.random.default_rng(2)
  train_y, test_y = np.repeat(np.arange(k), 4), np.array([0, 0, 1, 1, 1, 2, 2])
  train_x = rng.normal(size=(len(train_y), 2)).astype(np.float32)
  test_x = (3 * rng.normal(size=(len(test_y), 2))).astype(np.float32)
  def predict(state, x):
    return np.eye(k, dtype=np.float32)[np.argmax(x[:, :1] > 0, 1)], x

  out, arrays = evaluate.final_metrics(
      predict, lambda b: b, None, train_pipeline=_Pipeline(train_x, train_y),
      test_pipeline=_Pipeline(test_x, test_y), centers={}, num_classes=k,
      max_train_examples=len(train_y), plot_dir=None)
  np.testing.assert_array_equal(arrays["test_features"], test_x)
  for prefix, (x, y) in {"": (test_x, test_y), "train/": (train_x, train_y)}.items():
    ref = _np_std(x, y, k)
    got = [out[f"{prefix}intra_class_std/class_{c}"] for c in range(k)]
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert out[f"{prefix}intra_class_std"] == pytest.approx(ref.mean(), rel=1e-5)
  assert "accuracy" in out and "nearest_centroid_accuracy/train" in out
