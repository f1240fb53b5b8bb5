#!/usr/bin/env bash
# Quick start, command 2 (and what CI runs): install what is missing, build everything,
# run every test. GPU tests skip cleanly when no GPU is visible. Tests labelled `heavy`
# (minutes each: large sweeps, proxy-size runs) run only with PREFLIGHT_HEAVY=1. Extra
# arguments go to ctest (e.g. -L exhaustive).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
filter=(-LE heavy)
[ "${PREFLIGHT_HEAVY:-0}" = "1" ] && filter=()
ctest --test-dir build --output-on-failure -j"$jobs" "${filter[@]}" "$@" 2>&1 | tee build/ctest.log
status=${PIPESTATUS[0]}
# Measured bounds and counts the tests print (ulp bounds, exhaustive sweeps, totals).
log=build/Testing/Temporary/LastTest.log
if [ -f "$log" ]; then
  echo
  echo "== measured by the tests =="
  grep -h -E '^\[ *(ulp|exhaustive|params|bound|measured|model|philox|parity) *\]' "$log" | sort -u || true
  echo
  # End with ctest's own summary, so the last lines are the runner's verdict.
  grep -cE '^\s+[0-9]+ - .*\(Skipped\)$' build/ctest.log | sed 's/^/skipped (no GPU, or a case the test does not apply to): /' || true
  grep -E '^[0-9]+% tests passed|^Total Test time' build/ctest.log | tail -n 2 || true
fi
exit "$status"
