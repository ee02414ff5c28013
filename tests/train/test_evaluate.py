"""disc_jax.train.evaluate on host arrays: the intra-class std and retrieval keys.

σ²R Tables 1-2 read I_k of eq. 12 per class: ``intra_class_std/class_<k>`` (test) and
``train/intra_class_std/class_<k>`` (train), reported for up to 100 classes. The final
evaluation is driven here by stand-in steps/pipelines whose "network" returns the
image as its features, so no model is compiled. The ``retrieval/*`` keys (final eval,
and the periodic eval when ``best_metric`` names one) count each test example once on
a split whose last eval batch is padded; one tiny run keeps its best checkpoint by
``retrieval/map_at_r``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from disc_jax import metrics as metrics_lib
from disc_jax.train import Checkpointer, train_and_evaluate
from disc_jax.train import config as config_lib
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


def _predict(k):
  def predict(state, x):
    return np.eye(k, dtype=np.float32)[np.argmax(x[:, :1] > 0, 1)], x
  return predict


def _split(seed, n, k, scale=1.0):
  rng = np.random.default_rng(seed)
  y = np.arange(n) % k
  x = (scale * rng.normal(size=(n, 3)) + 2.0 * y[:, None]).astype(np.float32)
  return x, y


def test_final_metrics_report_retrieval_and_clustering_of_the_collected_arrays():
  k = 3
  (train_x, train_y), (test_x, test_y) = _split(3, 16, k), _split(4, 11, k)
  kw = dict(train_pipeline=_Pipeline(train_x, train_y), test_pipeline=_Pipeline(test_x, test_y),
            centers={}, num_classes=k, max_train_examples=16, plot_dir=None)
  out, arrays = evaluate.final_metrics(_predict(k), lambda b: b, None, retrieval=True,
                                       retrieval_k=5, **kw)
  want = metrics_lib.retrieval_metrics(arrays["test_features"], arrays["test_labels"],
                                       arrays["train_features"], arrays["train_labels"], k=5)
  assert {f"retrieval/{m}": v for m, v in want.items()} == {
      key: out[key] for key in evaluate.RETRIEVAL_KEYS}
  clusters = metrics_lib.clustering_metrics(arrays["test_features"], arrays["test_labels"])
  assert {f"clustering/{m}": v for m, v in clusters.items()} == {
      key: out[key] for key in evaluate.CLUSTERING_KEYS}
  assert all(np.isfinite(out[key]) for key in evaluate.RETRIEVAL_KEYS + evaluate.CLUSTERING_KEYS)
  without, _ = evaluate.final_metrics(_predict(k), lambda b: b, None, **kw)
  assert not set(without) & set(evaluate.RETRIEVAL_KEYS + evaluate.CLUSTERING_KEYS)
  assert without == {key: v for key, v in out.items() if key in without}


def _brute_force(qx, qy, rx, ry, k):
  """precision@1 and k-NN accuracy with numpy (distinct distances: no ties)."""
  order = np.argsort(((qx[:, None] - rx[None]) ** 2).sum(-1), axis=1)
  nearest = ry[order]
  votes = [np.bincount(row[:k]).argmax() for row in nearest]
  return np.mean(nearest[:, 0] == qy), np.mean(np.asarray(votes) == qy)


def test_ragged_split_counts_each_test_example_once():
  """7 test examples in batches of 4 (1 padding row: zeros, label 0, next to the class-0
  references: counted, it would raise precision@1 to 6/8) and 6 references cut from 8
  collected training rows (the 7th would fix the query at 1.4)."""
  k = 2
  train_x = np.array([[0.1, 0, 0], [3, 0, 0], [0.2, 0, 0], [3.1, 0, 0], [0.3, 0, 0],
                      [3.2, 0, 0], [1.45, 0, 0], [9, 9, 8]], np.float32)
  train_y = np.array([0, 1, 0, 1, 0, 1, 1, 1])
  test_x = np.array([[2.9, 0, 0], [0.15, 0, 0], [3.05, 0, 0], [1.8, 0, 0], [3.3, 0, 0],
                     [0.25, 0, 0], [1.4, 0, 0]], np.float32)
  test_y = np.array([1, 0, 1, 0, 1, 0, 1])          # the last two are misretrieved
  p1, knn = _brute_force(test_x, test_y, train_x[:6], train_y[:6], 3)
  assert p1 * 7 == pytest.approx(5) and knn * 7 == pytest.approx(5)
  assert _brute_force(test_x, test_y, train_x, train_y, 3)[0] * 7 == pytest.approx(6)  # uncut
  out, arrays = evaluate.final_metrics(
      _predict(k), lambda b: b, None, train_pipeline=_Pipeline(train_x, train_y),
      test_pipeline=_Pipeline(test_x, test_y), centers={}, num_classes=k,
      max_train_examples=6, plot_dir=None, retrieval=True, retrieval_k=3)
  assert len(arrays["test_labels"]) == 7 and len(arrays["train_labels"]) == 8
  periodic = evaluate.evaluate_retrieval(
      _predict(k), lambda b: b, None, _Pipeline(test_x, test_y),
      train_pipeline=_Pipeline(train_x, train_y), max_train_examples=6, k=3)
  assert periodic["count"] == 7
  for got in (out, periodic):
    assert got["retrieval/precision_at_1"] == pytest.approx(p1)
    assert got["retrieval/knn_accuracy"] == pytest.approx(knn)
  assert {key: periodic[key] for key in evaluate.RETRIEVAL_KEYS} == {
      key: out[key] for key in evaluate.RETRIEVAL_KEYS}


@pytest.mark.parametrize("mutate, match", [
    (lambda c: setattr(c, "best_metric", "map_at_r"),
     r"config.best_metric 'map_at_r' is not a metric of the periodic eval; choose one of "
     r"\['accuracy', 'cross_entropy', 'retrieval/precision_at_1', .*'retrieval/map_at_r'"),
    (lambda c: setattr(c, "best_metric", "clustering/nmi"), r"best_metric 'clustering/nmi'"),
    (lambda c: setattr(c.final_eval, "retrieval_k", 100),
     r"retrieval_k=100 exceeds the 64 retrieval references \(final_eval.max_train_examples\)"),
    (lambda c: setattr(c.final_eval, "retrieval_k", 0), r"final_eval.retrieval_k must be a positive int"),
])
def test_validate_rejects_bad_retrieval_settings(tiny, mutate, match):
  config = tiny()
  mutate(config)
  with pytest.raises(ValueError, match=match):
    config_lib.validate(config)


def test_validate_accepts_retrieval_best_metric_and_no_best_metric(tiny):
  config = tiny()
  config.final_eval.retrieval = False
  config.final_eval.retrieval_k = 100            # unused: no retrieval anywhere
  config_lib.validate(config)
  config.best_metric = ""
  config_lib.validate(config)
  config = tiny()
  config.best_metric = "retrieval/map_at_r"
  config_lib.validate(config)


def test_best_checkpoint_kept_by_retrieval_map_at_r(tiny, tmp_path):
  config = tiny(examples=64)
  config.num_steps = 4
  config.eval_every = 1
  config.keep_checkpoints = 1
  config.best_metric = "retrieval/map_at_r"
  config.final_eval.retrieval_k = 3
  final = train_and_evaluate(config, tmp_path, progress=False)
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
  evals = {r["step"]: r for r in records if r["split"] == "eval"}
  assert sorted(evals) == [1, 2, 3, 4]
  for r in evals.values():
    assert set(evaluate.RETRIEVAL_KEYS) <= set(r) and r["count"] == 64
  scores = {step: r["retrieval/map_at_r"] for step, r in evals.items()}
  ckpt = Checkpointer(tmp_path / "checkpoints", best_metric="retrieval/map_at_r")
  steps, best = ckpt.all_steps(), ckpt._manager.best_step()
  ckpt.close()
  assert scores[best] == max(scores.values())
  assert steps == sorted({best, 4})                # the last one plus the best by MAP@R
  # The last periodic eval and the final eval see the same model and the same arrays.
  assert final["retrieval/map_at_r"] == pytest.approx(scores[4], rel=1e-6)
  assert final["accuracy"] == pytest.approx(evals[4]["accuracy"])
  assert {"clustering/nmi", "clustering/ami"} <= set(final)


def test_eval_of_a_ragged_split_counts_every_example_once(tiny):
  """The real pipeline and jitted eval step: 100 test examples in batches of 32 (4 padded
  rows in the last batch) are counted once each, on 8 devices, in the periodic and the
  final evaluation."""
  from disc_jax.train import build  # noqa: PLC0415
  config = tiny(examples=100)
  config.eval_batch_size = 32
  run = build(config)
  assert len(run.eval_pipeline.source) == 100 and run.eval_pipeline.steps_per_epoch == 4
  state = run.init()
  got = evaluate.evaluate(run.eval_step, run.shard, state, run.eval_pipeline)
  assert got["count"] == 100
  _, arrays = evaluate.final_metrics(
      run.predict_step, run.shard, state, train_pipeline=run.train_eval_pipeline,
      test_pipeline=run.eval_pipeline, centers={}, num_classes=run.num_classes,
      max_train_examples=10_000, plot_dir=None)
  assert len(arrays["test_labels"]) == 100 and len(arrays["train_labels"]) == 100
