#!/usr/bin/env bash
# Interleaved runs of two builds of the `engine` benchmark (ABBA order, each
# run in a fresh folder), one JSON line per run appended to $OUT.
#   OLD=/path/to/old/autosync-bench NEW=./target/release/autosync-bench \
#   PAIRS100=8 PAIRS1M=4 OUT=results.jsonl scripts/bench-interleave.sh
# Build the old binary from a worktree of the old commit
# (`git worktree add ../old REV && cd ../old && cargo build --release -p autosync-bench`).
set -euo pipefail
OLD=${OLD:?the old autosync-bench binary}
NEW=${NEW:-./target/release/autosync-bench}
OUT=${OUT:-bench-results.jsonl}
OLD=$(realpath "$OLD"); NEW=$(realpath "$NEW"); OUT=$(realpath -m "$OUT")
run() { # binary label objects
  local d r
  d=$(mktemp -d)
  r=$(cd "$d" && "$1" engine --objects "$3" --json)
  echo "{\"bin\":\"$2\",\"n\":$3,\"at\":\"$(date -u +%H:%M:%S)\",\"out\":$r}" >> "$OUT"
  rm -rf "$d"
}
pair() { # i objects
  if (( $1 % 2 )); then run "$OLD" old "$2"; run "$NEW" new "$2"
  else run "$NEW" new "$2"; run "$OLD" old "$2"; fi
}
for i in $(seq 1 "${PAIRS100:-6}"); do pair "$i" 100000; done
for i in $(seq 1 "${PAIRS1M:-3}"); do pair "$i" 1000000; done
