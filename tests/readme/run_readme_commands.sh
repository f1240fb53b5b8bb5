#!/usr/bin/env bash
# Runs every `$P ...` command of README.md's "The `preflight` command" block, as written,
# from a scratch directory outside the checkout (so nothing may depend on the working
# directory being the repository root). Relative input paths in the README (data/,
# configs/, tests/data/) resolve through symlinks to the checkout.
#
# usage: run_readme_commands.sh PREFLIGHT_BINARY SOURCE_DIR [--full]
# Shortening (without --full): a fresh `train` gets `--stop-at 130`, past step 120 where the
# README's run once failed, and `train --resume` then `--stop-at 140` (ten steps more from the
# checkpoint the first one wrote); --full runs every command exactly as written.
# A command that needs a GPU (`parity`) must, without one, print one error line and exit 1.
set -uo pipefail
bin=$(realpath "$1") src=$(realpath "$2") full=${3:-}
readme="$src/README.md"
[ -x "$bin" ] || { echo "not executable: $bin"; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for d in data configs tests; do ln -s "$src/$d" "$scratch/$d"; done

# The commands: lines starting with `$P ` inside the block that defines P=build/cli/preflight.
mapfile -t cmds < <(awk '/^P=build\/cli\/preflight/{on=1; next} on && /^```/{exit} on && /^\$P /{print}' "$readme")
[ ${#cmds[@]} -ge 8 ] || { echo "found only ${#cmds[@]} README commands; the block's format changed?"; exit 1; }

have_gpu=0
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && have_gpu=1

pass=0 fail=0
for line in "${cmds[@]}"; do
  cmd=${line%%  #*}                       # drop the trailing comment
  cmd=${cmd%"${cmd##*[![:space:]]}"}      # and trailing blanks
  args=${cmd#\$P }
  sub=${args%% *}
  if [ "$sub" = train ] && [ "$full" != --full ]; then
    case " $args " in
      *" --resume "*) args="$args --stop-at 140" ;;
      *) args="$args --stop-at 130" ;;
    esac
  fi
  cd "$scratch" || exit 1
  # eval: the README's own quoting and word splitting.
  out=$(eval "\"$bin\" $args" 2>"$scratch/stderr" >"$scratch/stdout"; echo $?)
  rc=$out
  err_lines=$(wc -l <"$scratch/stderr")
  ok=1 why=""
  if [ "$sub" = parity ] && [ $have_gpu = 0 ]; then
    if [ "$rc" != 1 ] || [ "$err_lines" != 1 ] || ! grep -q '^preflight: error: ' "$scratch/stderr"; then
      ok=0 why="without a GPU expected one error line and exit 1, got rc=$rc and $err_lines stderr lines"
    fi
  elif [ "$rc" != 0 ]; then
    ok=0 why="exit $rc: $(head -c 400 "$scratch/stderr")"
  elif [ ! -s "$scratch/stdout" ]; then
    ok=0 why="printed nothing"
  fi
  if [ $ok = 1 ]; then
    pass=$((pass + 1)); echo "ok    \$P $args"
  else
    fail=$((fail + 1)); echo "FAIL  \$P $args: $why"
  fi
done
# Files the README promises.
cd "$scratch"
for f in step.json pipeline.svg run; do
  if [ -e "$f" ]; then pass=$((pass + 1)); echo "ok    wrote $f"; else fail=$((fail + 1)); echo "FAIL  expected output $f"; fi
done
# The resumed run continued the first one's checkpoints in run/ and wrote its own last one.
last=run/ckpt-00000140
[ "$full" = --full ] && last=run/ckpt-00000600
if [ -f "$last/MANIFEST.sha256" ]; then pass=$((pass + 1)); echo "ok    wrote $last"; else fail=$((fail + 1)); echo "FAIL  expected checkpoint $last"; fi
echo "readme: $pass passed, $fail failed"
[ $fail = 0 ]
