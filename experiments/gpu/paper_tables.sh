#!/usr/bin/env bash
# The paper tables on a machine with one GPU and no network, as one call of at most
# 9 minutes: experiments.gpu.paper_tables trains every run of SWEEPS, many at once, and
# writes each table whose runs all finished. Everything comes back in two files under $OUT:
#   gpu_tables.tar.gz  results/<table>.md + .json of each table written, and each run's
#                      config, final metrics, metrics log and plots (no checkpoints);
#   paper_tables.log   the machine, the versions, and the scheduler's log.
#
# Prepare here (once): bash experiments/gpu/fetch_wheels.sh;
#   mkdir -p .gpu_data && cp -r ../shared/data/mnist ../shared/data/fashion_mnist .gpu_data/
# With a clean tree at the commit to run, call the device tool with
#   command="DISC_JAX_COMMIT=<that commit> bash experiments/gpu/paper_tables.sh",
#   carry=[".whl", ".gpu_data"], timeout_s=590
# then, here: tar xzf <files_at>/gpu_tables.tar.gz (results/ and workdir/sweeps/gpu/).
# A table some of whose runs finished in an earlier call resumes: add "workdir/sweeps/gpu"
# to carry (finished runs are read back; a fresh machine has no checkpoints of the others).
# DEADLINE (s, default 420) is when unfinished runs are stopped; JOBS runs train at once.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT" workdir
touch workdir/.gpu_start
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda
{
  nvidia-smi -L
  python3 -c "import jax, flax, optax, orbax.checkpoint as o, grain
print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
  python3 -m experiments.prepare mnist fashion_mnist --data_dir /tmp/tfds --manual_dir .gpu_data \
    2>&1 | grep -v '%|' || exit 1
  python3 -m experiments.gpu.paper_tables --data_dir /tmp/tfds --manual_dir .gpu_data \
    --deadline_s "${DEADLINE:-420}" --jobs "${JOBS:-14}" --sweep_root workdir/sweeps/gpu \
    --logs workdir/sweeps/gpu/logs
} 2>&1 | tee "$OUT/paper_tables.log"
find results -newer workdir/.gpu_start -type f > workdir/.gpu_tables
tar czf "$OUT/gpu_tables.tar.gz" --exclude=checkpoints --exclude=features.npz \
  --exclude=tensorboard --exclude='features_*.png' -T workdir/.gpu_tables workdir/sweeps/gpu
ls -la "$OUT"
