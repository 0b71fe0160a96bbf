#!/usr/bin/env bash
# Runs the quickstart end to end: import the HR file, synchronise, export to
# the application database and the directory file, confirm the exports, and
# show what happened. Safe to run again: the second time nothing changes
# unless data/hr.csv did.
#
# Uses `autosync` from $AUTOSYNC, else from PATH, else builds it from this
# repository with cargo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cfg="$here/autosync.toml"

if [ -n "${AUTOSYNC:-}" ]; then
  bin="$AUTOSYNC"
elif command -v autosync >/dev/null 2>&1; then
  bin="$(command -v autosync)"
else
  root="$(cd "$here/../.." && pwd)"
  echo "building autosync (cargo build --release) ..." >&2
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" -p autosync
  bin="$root/target/release/autosync"
fi

run() {
  echo "\$ autosync run-profile $1 $2"
  "$bin" -c "$cfg" run-profile "$1" "$2" --no-progress || {
    code=$?
    # 1 = completed with per-object errors: shown above, carry on.
    [ "$code" -eq 1 ] || exit "$code"
  }
  echo
}

"$bin" -c "$cfg" check
echo
run hr full-import
run hr full-sync
run app export
run directory export
run app full-import
run directory full-import
run app delta-sync
run directory delta-sync

echo "\$ autosync history"
"$bin" -c "$cfg" history --limit 8
echo
echo "application database: $here/data/app.db (table users)"
echo "directory file:       $here/data/directory.jsonl ($(wc -l < "$here/data/directory.jsonl") accounts)"
echo "Try: edit data/hr.csv (change a title, set a status to terminated) and run this again."
