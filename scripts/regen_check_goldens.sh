#!/usr/bin/env bash
# Regenerates goldens/check/*.json: the launch readiness values of the 2048×H800
# DeepSeek-V3 layouts. Run from the repository root after a deliberate change to the
# simulator, the cost model, the fault model or the presets; review the diff.
#   PREFLIGHT_BIN=path/to/preflight scripts/regen_check_goldens.sh
set -euo pipefail
bin="${PREFLIGHT_BIN:-build/cli/preflight}"
for layout in deepseek-v3-dualpipe seed-pp16-ep32-dp4; do
  "$bin" check --model deepseek-v3-671b --cluster h800-2048 --layout "$layout" \
    --faults deepseek-v3-2048 --tokens 14.8e12 --trials 2000 --seed 1 --update-golden
done
