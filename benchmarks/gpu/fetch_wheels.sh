#!/usr/bin/env bash
# Fetch the wheels benchmarks/gpu/paper_preset.sh installs on an offline GPU machine (Python 3.12,
# x86-64, JAX already there) into .whl/ at the repository root (git-ignored). About 6.5 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
for spec in "keras==${KERAS_VERSION:-3.15.1}" "namex" "optree" "pyccl==${PYCCL_VERSION:-3.3.6}"; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$spec"
done
ls -la .whl
