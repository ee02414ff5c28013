"""One process of the multi-process training test (``test_multiprocess.py``).

Run as a script by the test, one per JAX process, with the repository root on
``PYTHONPATH`` and ``XLA_FLAGS`` giving the fake CPU device count (set before JAX starts)::

  python tests/train/_two_process_worker.py --workdir W --out O \
      --process-id I --num-processes 2 --port P [--interrupt-at S [--interrupt-delays D0,D1]]
      [--num-steps N] [--step-sleep T]

It joins the cluster at ``127.0.0.1:P`` with ``jax.distributed.initialize`` and JAX's
gloo CPU collectives, trains :func:`tiny_config` with ``train_and_evaluate(config, W)``
(``config.distributed`` stays False: the cluster is already up), and writes into ``O``:

* ``state_<I>.npz``: its model params, batch statistics and loss params after the last step
  (the state is replicated, so every process holds all of it);
* ``final_<I>.json``: the final metrics ``train_and_evaluate`` returned on this process;
* ``interrupted_<I>.json``: ``{"step": s, "signum": n, "signalled": t or None, "exited": t}``
  when the loop saved a checkpoint and raised ``Interrupted`` (the process then exits with
  ``128 + n``, as the entry points do). ``--interrupt-at s`` makes each process send
  itself a SIGTERM after step s, process i ``D_i`` seconds later (``--interrupt-delays``;
  a negative delay: never), ``signalled`` its wall time.
* ``--step-sleep T`` sleeps T s in every step's callback (a slower run, so a signal
  sent later still arrives during training).

With ``--num-processes 1`` it runs alone (no ``jax.distributed``): the reference.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import sys

import ml_collections
import numpy as np

NUM_STEPS = 6


def tiny_config(num_steps: int = NUM_STEPS) -> ml_collections.ConfigDict:
  """The main job (``configs/default.py``, run 'sigma2r': LeNet++ with 2-D features on
  Fuzzy-RGB at 8x8, balanced batches, Adam + cosine, σ²R with its own Adam at 0.1), shrunk:
  32 train / 8 test images per class (3 classes), batches of 24 (8 per class) -> 4 steps
  an epoch, ``num_steps`` steps (across an epoch boundary), σ²R with n = 3 neighbours,
  a checkpoint every 2 steps, evaluation at the end only."""
  from configs import base, default

  c = default.get_config("run=sigma2r")
  c.dataset.kwargs = ml_collections.ConfigDict({"per_class": 40, "train_per_class": 32})
  c.dataset.min_per_class = 4                      # >= n + 1 for σ²R's neighbourhoods
  c.aux_losses = [base.aux_loss("sigma2r", 0.01, kwargs={"n_neighbors": 3},
                                param_optimizer=base.optimizer("adam", 0.1))]
  c.batch_size = 24
  c.eval_batch_size = 8                            # 3 eval batches of the 24 test images
  c.num_steps = num_steps
  c.checkpoint_every = 2
  c.keep_checkpoints = 2
  c.eval_every = num_steps
  c.log_every = 1
  c.final_eval.max_train_examples = 48
  return c


def state_arrays(state) -> dict[str, np.ndarray]:
  """``{'params/...': array, 'batch_stats/...': ..., 'loss_params/...': ...}`` on the host."""
  from disc_jax.train.checkpoint import flatten

  out = {}
  for name in ("params", "batch_stats", "loss_params"):
    for path, leaf in flatten(getattr(state, name) or {}).items():
      out[f"{name}/{path}"] = np.asarray(leaf)   # replicated: this process holds all of it
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser()
  p.add_argument("--workdir", required=True)
  p.add_argument("--out", required=True)
  p.add_argument("--process-id", type=int, default=0)
  p.add_argument("--num-processes", type=int, default=1)
  p.add_argument("--port", type=int, default=0)
  p.add_argument("--interrupt-at", type=int, default=None)
  p.add_argument("--interrupt-delays", default="")
  p.add_argument("--num-steps", type=int, default=NUM_STEPS)
  p.add_argument("--step-sleep", type=float, default=0.0)
  args = p.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)

  import threading
  import time

  import jax

  if args.num_processes > 1:
    # Before anything touches the backend: the CPU client is created with the
    # distributed client and gloo (TCP) collectives for cross-process all-reduces.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # The coordinator binds [::]:port unless told otherwise: loopback only.
    address = f"127.0.0.1:{args.port}"
    jax.distributed.initialize(coordinator_address=address, coordinator_bind_address=address,
                               num_processes=args.num_processes, process_id=args.process_id,
                               initialization_timeout=120)
  assert jax.process_count() == args.num_processes, jax.process_count()
  assert jax.process_index() == args.process_id, jax.process_index()

  from disc_jax.train import Interrupted, train_and_evaluate

  config = tiny_config(args.num_steps)
  total = int(config.num_steps)
  i = args.process_id
  delays = [float(d) for d in args.interrupt_delays.split(",") if d] or [0.0] * args.num_processes
  signalled = []

  def sigterm():
    signalled.append(time.time())
    os.kill(os.getpid(), signal.SIGTERM)

  def callback(step, state, metrics):
    del metrics
    if step == total:
      np.savez(out / f"state_{i}.npz", **state_arrays(state))
    if args.interrupt_at is not None and step == args.interrupt_at and delays[i] >= 0:
      if delays[i] == 0:
        sigterm()                          # as a preemption would
      else:
        threading.Timer(delays[i], sigterm).start()
    time.sleep(args.step_sleep)

  print(f"process {i}/{args.num_processes}: {len(jax.local_devices())} local of "
        f"{len(jax.devices())} devices", flush=True)
  try:
    final = train_and_evaluate(config, args.workdir, callbacks=[callback], progress=False)
  except Interrupted as e:
    (out / f"interrupted_{i}.json").write_text(json.dumps(
        {"step": e.step, "signum": e.signum, "signalled": signalled[0] if signalled else None,
         "exited": time.time()}))
    print(f"process {i}: interrupted at step {e.step}", flush=True)
    return 128 + e.signum
  (out / f"final_{i}.json").write_text(json.dumps(final, sort_keys=True))
  print(f"process {i}: done", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
