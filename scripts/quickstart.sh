#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, then run the main jobs on their
# built-in defaults: the DeepSeek-V3 model accounting (`preflight model`; extra arguments
# go to it), then the simulator's report of one DeepSeek-V3 training step on its
# 2048×H800 cluster with the DualPipe layout (`preflight sim`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target preflight >/dev/null
build/cli/preflight model "$@"
echo
exec build/cli/preflight sim --model deepseek-v3-671b --cluster h800-2048 --layout deepseek-v3-dualpipe
