#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, run the main job on its
# built-in default (the DeepSeek-V3 model accounting). Extra arguments go to
# `preflight model`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target preflight >/dev/null
exec build/cli/preflight model "$@"
