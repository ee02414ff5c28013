"""``train_and_evaluate(config, workdir)``: validate, build, init/restore, loop, evaluate.

A fresh run starts from random weights, or from another run's model weights when
``config.init_from`` is set (:mod:`.checkpoint`); after training, the final metrics are
computed on the eval split and on every ``config.final_eval.extra_datasets`` entry
(:mod:`.evaluate`).

One run writes into ``workdir``: ``.lock`` while it runs, ``config.json`` (the config it
started with; a resume may change only the fields :mod:`.workdir` allows, recorded in
``config_history.jsonl``), ``metrics.jsonl`` + ``tensorboard/``
(:mod:`.logging`), ``checkpoints/`` (:mod:`.checkpoint`), ``final_metrics.json``, the
feature plots ``features_{train,test}.png``, σ²R's ``w_K.png`` and, for features of at
most ``MAX_SAVED_FEATURE_DIM`` dims, ``features.npz``. Running the same command again
resumes from the latest checkpoint with the data pipeline at the same step, after cutting
``metrics.jsonl`` back to that step (a finished run only re-does the final evaluation and
keeps its timing figures).

Per step the host dispatches step s and then reads the metrics of step s-1 (so the device
never waits for the host); at every eval/checkpoint/epoch boundary it reads the current
metrics first, so a non-finite loss, gradient or updated state stops the run with a
``FloatingPointError`` naming the terms and the checkpoint to go on from before anything
is saved: no checkpoint holds a non-finite value. SIGTERM/SIGINT save a checkpoint at the
next step and raise :class:`~.checkpoint.Interrupted`; in a multi-process run each
process's signal flag is an input of the step (``batch['stop']``, reduced to its max), so
every process reads the same flag from the same step's metrics and all stop, save and
raise at the same step, also when only one of them was signalled.
"""

from __future__ import annotations

import dataclasses
import contextlib
import json
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from disc_jax import data as data_lib
from disc_jax import models
from disc_jax import plots
from disc_jax.train import checkpoint as ckpt_lib
from disc_jax.train import evaluate, objective
from disc_jax.train import state as state_lib
from disc_jax.train import step as step_lib
from disc_jax.train import workdir as workdir_lib
from disc_jax.train.config import ConfigError, num_classes_of, to_plain, validate
from disc_jax.train.logging import MetricLogger, median_step_seconds
from disc_jax.train.step import initialize_distributed, nonfinite_message

MAX_SAVED_FEATURE_DIM = 64
Callback = Callable[[int, Any, dict], None]


@dataclasses.dataclass
class Run:
  """A built run: its data, model and jitted steps on the ('data',) mesh."""

  config: ml_collections.ConfigDict
  num_classes: int
  model: Any
  mesh: Any
  train_pipeline: data_lib.Pipeline
  eval_pipeline: data_lib.Pipeline
  train_eval_pipeline: data_lib.Pipeline
  extra_pipelines: dict[str, data_lib.Pipeline]
  total_steps: int
  train_step: Callable
  eval_step: Callable
  predict_step: Callable
  init: Callable[[], state_lib.TrainState]

  @property
  def steps_per_epoch(self) -> int:
    return self.train_pipeline.steps_per_epoch

  def shard(self, batch) -> dict[str, jax.Array]:
    return step_lib.shard_batch(self.mesh, batch)


def build(config: ml_collections.ConfigDict) -> Run:
  """The pipelines, model, optimizer and jitted steps of a validated ``config``."""
  mesh = step_lib.make_mesh(config.num_devices)
  ds = config.dataset
  src_kw = dict(data_dir=ds.data_dir, manual_dir=ds.manual_dir, **to_plain(ds.kwargs))
  train_src = data_lib.load_source(ds.name, ds.train_split, **src_kw)
  eval_src = data_lib.load_source(ds.name, ds.eval_split, **src_kw)
  if ds.class_subset is not None:   # one class list for both splits
    classes = data_lib.choose_classes(train_src.num_classes, to_plain(ds.class_subset))
    train_src = data_lib.ClassSubsetSource(train_src, classes)
    eval_src = data_lib.ClassSubsetSource(eval_src, classes)
  eval_bs = config.eval_batch_size or config.batch_size
  # Each process reads and decodes only its own rows of every global batch.
  pipe_kw = dict(num_shards=mesh.size, image_size=ds.image_size,
                 process_index=jax.process_index(), process_count=jax.process_count())
  try:
    train_pipe = data_lib.Pipeline(
        train_src, batch_size=config.batch_size, seed=config.seed, train=True,
        augment=tuple(config.augment), sampler=ds.sampler, min_per_class=ds.min_per_class,
        second_batch=objective.needs_second_batch(config), num_workers=ds.num_workers,
        **pipe_kw)
  except ValueError as e:   # the batch or sampler settings do not fit this dataset's split
    raise ConfigError(f"config.batch_size / config.dataset ({ds.name!r}, split "
                      f"{ds.train_split!r}): {e}") from e
  eval_pipe = data_lib.Pipeline(eval_src, batch_size=eval_bs, train=False, **pipe_kw)
  train_eval_pipe = data_lib.Pipeline(train_src, batch_size=eval_bs, train=False, **pipe_kw)
  num_classes = num_classes_of(config)
  spe = train_pipe.steps_per_epoch
  total = int(config.num_steps or config.num_epochs * spe)
  model = models.get_model(config.model.name, num_classes=num_classes,
                           **to_plain(config.model.kwargs))
  tx, schedule = state_lib.make_tx(config, steps_per_epoch=spe, total_steps=total)
  rep, rows = NamedSharding(mesh, P()), NamedSharding(mesh, P(step_lib.DATA_AXIS))
  train_step = jax.jit(
      step_lib.make_train_step(config, model, tx, schedule, num_classes=num_classes,
                               steps_per_epoch=spe),
      in_shardings=(rep, rows), out_shardings=(rep, rep), donate_argnums=(0,))
  eval_step = jax.jit(step_lib.make_eval_step(model), in_shardings=(rep, rows),
                      out_shardings=rep)
  # Predictions come back replicated so every process can read them (multi-host).
  predict_step = jax.jit(step_lib.make_predict_step(model), in_shardings=(rep, rows),
                         out_shardings=(rep, rep))
  input_shape = train_pipe.image_shape
  extra = evaluate.extra_pipelines(config, image_shape=input_shape, num_classes=num_classes,
                                   batch_size=eval_bs, num_shards=mesh.size,
                                   process_index=jax.process_index(),
                                   process_count=jax.process_count())

  def init() -> state_lib.TrainState:
    def fn(rng):
      return state_lib.create_state(config, model, tx, rng=rng, input_shape=input_shape,
                                    num_classes=num_classes)

    return jax.jit(fn, out_shardings=rep)(jax.random.PRNGKey(config.seed))

  return Run(config, num_classes, model, mesh, train_pipe, eval_pipe, train_eval_pipe, extra,
             total, train_step, eval_step, predict_step, init)


def _every(value: int | None, default: int) -> int:
  return default if value is None else int(value)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                       callbacks: Sequence[Callback] = (), progress: bool = True
                       ) -> dict[str, float]:
  """Trains and evaluates ``config`` in ``workdir``; returns the final metrics.

  ``callbacks`` are called as ``cb(step, state, metrics)`` after every processed step
  (host metrics as floats); they must not keep ``state`` (it is donated).
  """
  workdir = workdir_lib.local_path(workdir)
  initialize_distributed(config)
  validate(config)
  lead = jax.process_index() == 0
  with workdir_lib.claim(workdir, config, lead=lead) as changed:
    return _train(config, workdir, changed, lead, callbacks, progress)


def _train(config, workdir: pathlib.Path, changed: dict, lead: bool,
           callbacks: Sequence[Callback], progress: bool) -> dict[str, float]:
  run = build(config)
  spe, total = run.steps_per_epoch, run.total_steps
  eval_every = _every(config.eval_every, spe)
  ckpt_every = _every(config.checkpoint_every, spe)
  checkpointer = ckpt_lib.Checkpointer(workdir / "checkpoints", keep=config.keep_checkpoints,
                                       best_metric=config.best_metric, best_mode=config.best_mode)
  state = run.init()
  meta: dict[str, Any] = {}
  restored = checkpointer.restore(state)
  if restored is not None:
    state, meta = restored
  elif config.init_from is not None:
    state = ckpt_lib.initialize(state, config.init_from, tuple(config.init_from_skip))
  start = int(state.step)
  if lead:
    workdir_lib.record_config(workdir, config, changed, start)
    workdir_lib.trim_metrics(workdir, start)   # rows of steps this run will do again
  logger = MetricLogger(workdir, total_steps=total, initial_step=start, enabled=lead,
                        progress=progress)
  if restored is not None:
    logger.message(f"resumed from {checkpointer.directory} at step {start}"
                   + (f" (changed: {changed})" if changed else ""))
  elif config.init_from is not None:
    logger.message(f"initialised the model from {ckpt_lib.find_checkpoint(config.init_from)}"
                   + (f" (kept fresh: {list(config.init_from_skip)})" if config.init_from_skip
                      else ""))
  t0 = time.time()
  time_before = float(meta.get("train_time_s", 0.0))   # of the runs this one resumes
  # Wall time between the host receiving consecutive steps' metrics: one step each in
  # steady state. The first step (compile) has no predecessor and is not in it.
  step_seconds: list[float] = []
  last_seen: float | None = None
  multi = jax.process_count() > 1
  agreed = 0   # multi-process: the signal all processes agreed on (read from the step)

  def process(done: int, device_metrics) -> dict[str, float]:
    nonlocal last_seen, agreed
    m = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
    agreed = agreed or int(m.pop("stop", 0))
    now = time.perf_counter()
    if last_seen is not None:
      step_seconds.append(now - last_seen)
    last_seen = now
    if not m["finite"]:
      logger.write(done, m)
      raise FloatingPointError(nonfinite_message(done, m) + "; " + workdir_lib.restart_hint(
          workdir, checkpointer.all_steps()))
    if done % config.log_every == 0 or done == total:
      logger.write(done, {**m, "epoch": done / spe, "steps_per_s": (done - start) /
                          max(time.time() - t0, 1e-9)})
    logger.progress(done, m)
    for cb in callbacks:
      cb(done, state, m)
    return m

  periodic_eval = evaluate.periodic(config, run)   # + retrieval/* if best_metric names one
  with ckpt_lib.SignalGuard() as guard:
    stop = lambda: agreed if multi else guard.signum  # noqa: E731
    batches = run.train_pipeline.batches(start_step=start)   # grain: prefetched
    try:
      pending = None
      for step in range(start, total):
        batch = next(batches)
        if multi:   # this process's signal rides with its rows; the step takes the max
          batch = {**batch, "stop": np.full(len(batch["label"]), guard.signum or 0, np.int32)}
        state, metrics = run.train_step(state, run.shard(batch))
        done = step + 1
        if pending is not None:
          process(*pending)
        pending = (done, metrics)
        do_eval = done % eval_every == 0 or done == total
        do_ckpt = (ckpt_every and done % ckpt_every == 0) or done == total or do_eval
        if not (done % spe == 0 or do_eval or do_ckpt or stop() or callbacks):
          continue
        process(*pending)
        pending = None
        evaluated = None
        if do_eval:
          evaluated = periodic_eval(state)
          logger.write(done, evaluated, split="eval")
          logger.message(f"step {done} (epoch {done / spe:.2f}): eval accuracy "
                         f"{evaluated['accuracy']:.4f}, "
                         f"cross-entropy {evaluated['cross_entropy']:.4f}")
        if do_ckpt or stop():
          meta["train_time_s"] = time_before + time.time() - t0
          checkpointer.save(done, state, meta=meta,
                            metrics=evaluated if do_eval and config.best_metric else None)
        if stop():
          checkpointer.wait()
          raise ckpt_lib.Interrupted(stop(), done)
      if pending is not None:
        process(*pending)
    except BaseException:
      logger.close()
      checkpointer.close()
      raise
    finally:
      batches.close()

  try:
    # The loop's wall time, periodic evals included, summed over resumed processes.
    this_process = time.time() - t0
    class_names = getattr(run.train_pipeline.source, "label_names", None)
    name = "+".join([config.classification_loss.name]
                    + objective.term_labels(objective.entries(config)))
    title = f"{config.model.name} / {name}"
    final, arrays = evaluate.final_metrics(
        run.predict_step, run.shard, state, train_pipeline=run.train_eval_pipeline,
        test_pipeline=run.eval_pipeline,
        centers=objective.learned_centers(config, state.loss_params),
        num_classes=run.num_classes, max_train_examples=config.final_eval.max_train_examples,
        plot_dir=workdir if (config.final_eval.plot and lead) else None, title=title,
        class_names=class_names, retrieval=config.final_eval.retrieval,
        retrieval_k=config.final_eval.retrieval_k)
    for prefix, pipeline in run.extra_pipelines.items():
      result = evaluate.evaluate(run.eval_step, run.shard, state, pipeline)
      final.update({f"{prefix}/accuracy": result["accuracy"],
                    f"{prefix}/cross_entropy": result["cross_entropy"]})
    final.update(step=float(int(state.step)), train_time_s=time_before + this_process,
                 steps_per_s=(int(state.step) - start) / max(this_process, 1e-9),
                 # the median outvotes steps that waited for an evaluation or a checkpoint
                 median_step_s=float(np.median(step_seconds)) if step_seconds else float("nan"))
    if start == total:   # a finished run, evaluated again: its timing is that of its training
      before = workdir_lib.read_json(workdir / "final_metrics.json")
      final.update({k: before[k] for k in ("train_time_s", "steps_per_s", "median_step_s")
                    if k in before})
      if "median_step_s" not in before:
        final["median_step_s"] = median_step_seconds(workdir) or float("nan")
    logger.summary(final)
    logger.close()
    if lead:
      (workdir / "final_metrics.json").write_text(json.dumps(final, indent=2, sort_keys=True))
      if config.final_eval.plot:
        plots.growth_rates(workdir / "metrics.jsonl", workdir / "w_K.png",
                           title=f"{title}: σ²R w_K per class")
      if arrays["test_features"].shape[1] <= MAX_SAVED_FEATURE_DIM:
        names = np.asarray(class_names if class_names else [], dtype=str)
        np.savez_compressed(workdir / "features.npz", class_names=names, **arrays)
  except BaseException:   # close what writes in the background, then report the error
    for close in (logger.close, checkpointer.close):
      with contextlib.suppress(Exception):
        close()
    raise
  checkpointer.close()
  return final
