#!/usr/bin/env bash
# Regenerates goldens/sim/*.json: the full `preflight sim --json` report of the two
# 2048×H800 DeepSeek-V3 layouts and the Llama 3 405B layout. Run after an intended change
# to the simulator, and name this command in the commit message.
#   usage: scripts/regen_sim_goldens.sh [path/to/preflight]   (default build/cli/preflight)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/build/cli/preflight}"
mkdir -p "$root/goldens/sim"
"$bin" sim --model deepseek-v3-671b --cluster h800-2048 --layout deepseek-v3-dualpipe \
  --write-golden "$root/goldens/sim/deepseek-v3-dualpipe.json" > /dev/null
"$bin" sim --model deepseek-v3-671b --cluster h800-2048 --layout seed-pp16-ep32-dp4 \
  --write-golden "$root/goldens/sim/seed-pp16-ep32-dp4.json" > /dev/null
"$bin" sim --model llama3-405b --cluster h100-8192 --layout llama3-405b-tp8-pp16 \
  --write-golden "$root/goldens/sim/llama3-405b-tp8-pp16.json" > /dev/null
echo "regenerated $(ls "$root"/goldens/sim/*.json | wc -l) goldens in goldens/sim/"
