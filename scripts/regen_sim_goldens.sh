#!/usr/bin/env bash
# Regenerates goldens/sim/*.json: the full `preflight sim --json` report of the two
# 2048×H800 DeepSeek-V3 layouts and the Llama 3 405B layout; and goldens/faults/*.json: the
# fault Monte Carlo's `--json` report with a fixed seed plus its per-trial samples as exact
# hexadecimal floats (compared bit for bit by test_faults). Run after an intended change
# to the simulator or the fault model, and name this command in the commit message.
#   usage: scripts/regen_sim_goldens.sh [path/to/preflight]   (default build/cli/preflight)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/build/cli/preflight}"
mkdir -p "$root/goldens/sim"
"$bin" sim --model deepseek-v3-671b --cluster h800-2048 --layout deepseek-v3-dualpipe \
  --write-golden "$root/goldens/sim/deepseek-v3-dualpipe.json" > /dev/null
"$bin" sim --model deepseek-v3-671b --cluster h800-2048 --layout seed-pp16-ep32-dp4 \
  --write-golden "$root/goldens/sim/seed-pp16-ep32-dp4.json" > /dev/null
# Ranks 0-5 of this layout do not fit in the memory model: sim writes the golden, then
# exits 1 (status 1 = "does not fit"; anything else is an error).
"$bin" sim --model llama3-405b --cluster h100-8192 --layout llama3-405b-tp8-pp16 \
  --write-golden "$root/goldens/sim/llama3-405b-tp8-pp16.json" > /dev/null 2>&1 || [ $? -eq 1 ]
mkdir -p "$root/goldens/faults"
# No run length: the step time, tokens/step, GPUs and checkpoint size of the simulated
# default layout (so this golden also pins what faults takes from sim), with a small sweep.
"$bin" faults --trials 200 --seed 1 --threads 2 --sweep --sweep-trials 20 \
  --write-golden "$root/goldens/faults/deepseek-v3-2048-from-sim.json" > /dev/null
# A fixed wall-clock window of the Llama 3 preset.
"$bin" faults --faults llama3-54d --wall-days 54 --trials 100 --seed 3 --threads 2 \
  --write-golden "$root/goldens/faults/llama3-54d-window.json" > /dev/null
echo "regenerated $(ls "$root"/goldens/sim/*.json | wc -l) goldens in goldens/sim/, $(ls "$root"/goldens/faults/*.json | wc -l) in goldens/faults/"
