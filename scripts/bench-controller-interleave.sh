#!/usr/bin/env bash
# Interleaved runs of the controller scenarios (`quickstart`, `idle`,
# `vs-fixed-order`) with two `autosync` binaries under one benchmark program
# (ABBA order per scenario), one JSON line per run appended to $OUT. Each
# binary runs against the quickstart of its own checkout (EXAMPLE_OLD,
# EXAMPLE_NEW), so a configuration change between them cannot skew it.
#   BENCH=./target/release/autosync-bench \
#   OLD=../old/target/release/autosync EXAMPLE_OLD=../old/examples/quickstart \
#   NEW=./target/release/autosync      EXAMPLE_NEW=./examples/quickstart \
#   PAIRS=2 IDLE_SECONDS=60 OUT=controller.jsonl scripts/bench-controller-interleave.sh
set -euo pipefail
BENCH=$(realpath "${BENCH:-./target/release/autosync-bench}")
OLD=$(realpath "${OLD:?the old autosync binary}")
NEW=$(realpath "${NEW:-./target/release/autosync}")
EXAMPLE_OLD=$(realpath "${EXAMPLE_OLD:?the examples/quickstart folder of the old checkout}")
EXAMPLE_NEW=$(realpath "${EXAMPLE_NEW:-./examples/quickstart}")
OUT=$(realpath -m "${OUT:-controller-results.jsonl}")
run() { # label binary example scenario args...
  local label=$1 bin=$2 example=$3 scenario=$4 r
  shift 4
  r=$("$BENCH" "$scenario" --json --autosync "$bin" --example "$example" "$@")
  echo "{\"bin\":\"$label\",\"scenario\":\"$scenario\",\"at\":\"$(date -u +%H:%M:%S)\",\"out\":$r}" >> "$OUT"
}
pair() { # i scenario args...
  local i=$1
  shift
  if (( i % 2 )); then
    run old "$OLD" "$EXAMPLE_OLD" "$@"; run new "$NEW" "$EXAMPLE_NEW" "$@"
  else
    run new "$NEW" "$EXAMPLE_NEW" "$@"; run old "$OLD" "$EXAMPLE_OLD" "$@"
  fi
}
for i in $(seq 1 "${PAIRS:-2}"); do
  pair "$i" quickstart
  pair "$i" idle --seconds "${IDLE_SECONDS:-60}"
  pair "$i" vs-fixed-order
done
