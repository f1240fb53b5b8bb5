#!/usr/bin/env bash
# Configures and builds everything into build/ (Release, CUDA when nvcc exists).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${PREFLIGHT_CMAKE_ARGS:-} >build.configure.log 2>&1 ||
  { cat build.configure.log >&2; exit 1; }
cmake --build build -j"$jobs" "$@"
