#!/usr/bin/env bash
# Downloads, here (where the package registry is reachable), the wheels that a GPU machine
# without network lacks for disc_jax's training stack, into .whl/ at the repository root
# (git-ignored). The GPU machine's own Python 3.12 has jax (CUDA), flax, optax, orbax,
# chex, numpy, pillow, matplotlib, scikit-learn, tqdm; experiments/gpu/run.sh installs the
# rest from .whl/. Usage (from the repository root): bash experiments/gpu/fetch_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
# Name every package: --no-deps fetches none of their needs.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp "${platforms[@]}" -d .whl \
  ml_collections tensorflow-datasets array_record grain tensorboardX importlib_resources \
  dm-tree simple-parsing docstring-parser tensorflow-metadata googleapis-common-protos \
  termcolor toml immutabledict portpicker
# promise (needed by TFDS) is published as source only: build its pure-Python wheel here.
python3 -m pip wheel -q --no-deps -w .whl promise
ls .whl
