#!/usr/bin/env bash
# Runs the quickstart end to end: import the HR file, synchronise, export to
# the application database and the directory file, confirm the exports, and
# show what happened.
#
#   demo.sh [--fresh] [DIR]
#
# It never writes inside examples/. It works on a copy of the example (its
# autosync.toml and data/hr.csv), the working copy, in DIR (default:
# target/quickstart of this repository, which git ignores). A working copy
# that exists already is reused: edit DIR/data/hr.csv, run this again, and
# only the difference flows. --fresh replaces the working copy with the
# example again (its state and target files go too).
#
# Uses `autosync` from $AUTOSYNC, else from PATH, else builds it from this
# repository with cargo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

usage() {
  echo "usage: demo.sh [--fresh] [DIR]  (DIR default: $root/target/quickstart)" >&2
  exit 2
}

fresh=0
dir=""
for arg in "$@"; do
  case "$arg" in
    --fresh) fresh=1 ;;
    -h|--help) usage ;;
    -*) echo "demo.sh: unknown option $arg" >&2; usage ;;
    *)
      [ -z "$dir" ] || { echo "demo.sh: one DIR only" >&2; usage; }
      dir="$arg"
      ;;
  esac
done
dir="${dir:-$root/target/quickstart}"

# The working copy: made from the example unless it exists (or --fresh).
# DIR as an absolute path (its existing part resolved), checked before
# anything is created: never inside the example folder.
abs="$dir"
[[ "$abs" == /* ]] || abs="$PWD/$abs"
existing="$abs"
rest=""
while [ ! -d "$existing" ]; do
  rest="/$(basename "$existing")$rest"
  existing="$(dirname "$existing")"
done
dir="$(cd "$existing" && pwd -P)$rest"
case "$dir/" in
  "$(cd "$here" && pwd -P)/"*)
    echo "demo.sh: $dir is inside the example folder; choose another DIR" >&2
    exit 2
    ;;
esac
mkdir -p "$dir"
if [ "$fresh" -eq 1 ]; then
  rm -rf "$dir/autosync.toml" "$dir/data" "$dir/state"
fi
if [ -f "$dir/autosync.toml" ]; then
  echo "reusing the working copy in $dir (--fresh starts again from the example)"
else
  mkdir -p "$dir/data"
  cp "$here/autosync.toml" "$dir/autosync.toml"
  cp "$here/data/hr.csv" "$dir/data/hr.csv"
  echo "made a working copy of the example in $dir"
fi
echo
cfg="$dir/autosync.toml"

shown="autosync"
if [ -n "${AUTOSYNC:-}" ]; then
  bin="$AUTOSYNC"
  shown="$bin"
elif command -v autosync >/dev/null 2>&1; then
  bin="$(command -v autosync)"
else
  echo "building autosync (cargo build --release -p autosync in $root);" \
    "the first build takes several minutes" >&2
  cargo build --release --manifest-path "$root/Cargo.toml" -p autosync
  bin="${CARGO_TARGET_DIR:-$root/target}/release/autosync"
  shown="cargo run --release -p autosync --"
  echo >&2
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
echo "working copy:         $dir"
echo "application database: $dir/data/app.db (table users)"
echo "directory file:       $dir/data/directory.jsonl ($(wc -l < "$dir/data/directory.jsonl") accounts)"
echo
echo "Try: edit $dir/data/hr.csv (change a title, set a status to terminated)"
echo "and run this again: only the difference flows. Or keep the targets in step"
echo "as you edit, with the service:"
echo "  $shown run -c $cfg"
