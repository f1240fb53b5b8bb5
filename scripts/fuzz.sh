#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, one per input parser) with clang, ASan and UBSan,
# and runs each for a bounded time.
#
#   scripts/fuzz.sh [--seconds N] [--jobs J] [--keep-corpus] [harness ...]
#
#   --seconds N     wall-clock time per harness (default 60); libFuzzer's -max_total_time
#   --jobs J        harnesses run at once (default 1)
#   --keep-corpus   merge each run's new inputs (minimised) into fuzz/corpus/<harness>/,
#                   so ctest's replay (tests/fuzz) covers them from then on
#   harness         any of fuzz/harnesses.cmake's names (default: all)
#
# Each run uses -timeout=10 (an input busy for 10 s is a hang), -rss_limit_mb=2048 and
# -malloc_limit_mb=1024 (one allocation that large is a finding), and LeakSanitizer at exit.
# A finding is saved under build-fuzz/artifacts/<harness>/; copy it into
# fuzz/regressions/<harness>/ once fixed, so every ctest run replays it. Output per harness
# goes to build-fuzz/logs/<harness>.log; the script prints one summary line per harness and
# exits 1 when any found something.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
jobs=1
keep=0
harnesses=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --keep-corpus) keep=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) harnesses+=("$1"); shift ;;
  esac
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --seconds expects a positive integer, got '$seconds'" >&2; exit 2; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --jobs expects a positive integer, got '$jobs'" >&2; exit 2; }

all=$(sed -n 's/^set(PREFLIGHT_FUZZ_HARNESSES \(.*\))$/\1/p' fuzz/harnesses.cmake)
[ ${#harnesses[@]} -gt 0 ] || read -r -a harnesses <<<"$all"
for h in "${harnesses[@]}"; do
  [[ " $all " == *" $h "* ]] || { echo "fuzz.sh: no harness '$h' (have: $all)" >&2; exit 2; }
done

# clang and its runtime libraries (libFuzzer, ASan, UBSan) from Debian, when missing.
bash scripts/install_deps.sh
need=()
command -v clang++ >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

build=build-fuzz
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
if [ ! -f "$build/CMakeCache.txt" ]; then
  CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPREFLIGHT_CUDA=OFF -DPREFLIGHT_FUZZ=ON \
    -DCMAKE_CXX_FLAGS="$san" >"$build.configure.log" 2>&1 || { cat "$build.configure.log" >&2; exit 1; }
fi
targets=()
for h in "${harnesses[@]}"; do targets+=("fuzz_$h"); done
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}" >"$build/build.log" 2>&1 ||
  { tail -40 "$build/build.log" >&2; exit 1; }

mkdir -p "$build/logs" "$build/artifacts" "$build/corpus"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS=1

run_one() {
  local h="$1" work="$build/corpus/$h" art="$build/artifacts/$h/"
  mkdir -p "$work" "$art"
  # Read-only seeds: fuzz/corpus/<h>/ and the tree's directories named in harnesses.cmake.
  local seeds=""
  [ -d "fuzz/corpus/$h" ] && seeds="fuzz/corpus/$h"
  seeds="$seeds $(sed -n "s/^set(PREFLIGHT_FUZZ_SEEDS_$h \(.*\))$/\1/p" fuzz/harnesses.cmake)"
  local rc=0
  # The first corpus directory receives new inputs; the committed seeds are only read.
  "$build/fuzz/fuzz_$h" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="$art" "$work" $seeds >"$build/logs/$h.log" 2>&1 || rc=$?
  local execs cov corpus
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/logs/$h.log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$build/logs/$h.log" | tail -1 | cut -d' ' -f2)
  corpus=$(find "$work" -type f | wc -l)
  local found
  found=$(find "$art" -type f | wc -l)
  if [ "$rc" -eq 0 ] && [ "$found" -eq 0 ]; then
    printf 'fuzz %-13s ok     %5ss  %10s execs  cov %6s  corpus %5s  findings 0\n' "$h" "$seconds" "${execs:-?}" "${cov:-?}" "$corpus"
  else
    printf 'fuzz %-13s FOUND  %5ss  %10s execs  cov %6s  corpus %5s  findings %s (rc %s; %s, %s)\n' "$h" "$seconds" \
      "${execs:-?}" "${cov:-?}" "$corpus" "$found" "$rc" "$build/logs/$h.log" "$art"
    return 1
  fi
  if [ "$keep" -eq 1 ]; then
    mkdir -p "fuzz/corpus/$h"
    "$build/fuzz/fuzz_$h" -merge=1 -timeout=10 -rss_limit_mb=2048 "fuzz/corpus/$h" "$work" >>"$build/logs/$h.log" 2>&1
  fi
}

failed=0
pids=()
names=()
for h in "${harnesses[@]}"; do
  run_one "$h" &
  pids+=($!)
  names+=("$h")
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
exit "$failed"
