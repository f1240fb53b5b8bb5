#!/usr/bin/env bash
# Regenerates goldens/reference/tiny-{fp32,bf16,fp8}.json: the whole-model forward+backward of
# `tiny` (fixed seed and batch; definition in tests/reference/golden_model.hpp) as bit
# patterns. Run after an intended change to the reference numerics, and name this command in
# the commit message; the CUDA deterministic path is compared against these files.
#   usage: scripts/regen_reference_goldens.sh [build dir]   (default build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
cmake --build "$build" --target reference_goldens >/dev/null
mkdir -p "$root/goldens/reference"
OMP_WAIT_POLICY=PASSIVE "$build/tests/reference/reference_goldens" "$root/goldens/reference"
