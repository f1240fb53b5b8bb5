#!/bin/sh
# Regenerates data/debian-licenses.tok, the small real corpus `preflight train --data` ships
# with (docs/TRAINING.md §1): seven license texts from a Debian system's
# /usr/share/common-licenses (present on every Debian/Ubuntu install, base-files), one
# document per file, byte-level tokens (token = byte, vocab_size 512 recorded for `tiny`).
# Usage: scripts/prepare_corpus.sh [path/to/preflight]
set -eu
BIN=${1:-build/cli/preflight}
SRC=/usr/share/common-licenses
cd "$(dirname "$0")/.."
"$BIN" corpus --vocab 512 --out data/debian-licenses.tok \
  "$SRC/GPL-3" "$SRC/Apache-2.0" "$SRC/MPL-2.0" "$SRC/LGPL-2.1" "$SRC/Artistic" "$SRC/BSD" "$SRC/CC0-1.0"
