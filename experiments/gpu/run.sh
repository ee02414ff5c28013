#!/usr/bin/env bash
# The GPU checks, as one script of at most 9 minutes on a machine with one GPU and no
# network: the loss and step tests on the GPU, `experiments.benchmark --sections gpu`, and
# the input-pipeline benchmark with that machine's cores. Logs and JSON go to $OUT (or
# ./gpu_out); record the figures in results/ (results/benchmarks.md, results/input_pipeline.md).
#
# Prepare here: bash experiments/gpu/fetch_wheels.sh, and copy the MNIST-like original files
# into .gpu_data/ (cp -r ../shared/data .gpu_data) if a sweep needs them. Then, with the
# device tool: run(command="bash experiments/gpu/run.sh", carry=[".whl", ".gpu_data"],
# timeout_s=560).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 JAX_PLATFORMS=cuda
python3 -c "import jax; print(jax.devices())" 2>&1 | tee "$OUT/devices.txt"
nvidia-smi > "$OUT/nvidia_smi.txt" 2>&1
# 1. Tests on the GPU (the conftest's 8 fake CPU devices do not apply: one real device).
timeout 240 python3 -m pytest -q -p no:cacheprovider -x \
  tests/losses tests/train/test_objective.py tests/train/test_aux_losses.py \
  tests/train/test_loop.py 2>&1 | tail -n 40 > "$OUT/tests.txt"
# 2. Step benchmark on the accelerator (images/s, MFU), merged into results/benchmarks.json.
timeout 180 python3 -m experiments.benchmark --sections gpu 2>&1 | tail -n 60 > "$OUT/benchmark_gpu.txt"
cp results/benchmarks.json results/benchmarks.md "$OUT/" 2>/dev/null
# 3. Input pipeline: JPEG decode + random-resized-crop + flip against grain workers.
timeout 120 python3 -m experiments.benchmark_pipeline --sections jpeg --jpeg_dir /tmp/disc_jax_jpegs \
  2>&1 | tail -n 40 > "$OUT/pipeline.txt"
cp results/input_pipeline.md "$OUT/" 2>/dev/null
tail -n 3 "$OUT"/*.txt
