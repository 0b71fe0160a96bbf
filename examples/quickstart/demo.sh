#!/usr/bin/env bash
# Runs the quickstart end to end: import the HR and groups files,
# synchronise, export to the application database and the directory file,
# confirm the exports, and show what happened.
#
#   demo.sh [--fresh] [DIR]
#
# It never writes inside examples/. It works on a copy of the example (its
# autosync.toml, data/hr.csv and data/groups.csv), the working copy, in DIR (default:
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
  cp "$here/data/groups.csv" "$dir/data/groups.csv"
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

"$bin" -c "$cfg" check
echo
# The service, until nothing is left to do (--once): it imports what changed
# (both files at first), synchronises, exports to each target and confirms,
# as often as references and provisioning need. Its log goes to a file.
log="$dir/state/run.log"
mkdir -p "$dir/state"
echo "\$ autosync run --once   (log: $log)"
"$bin" -c "$cfg" run --once 2>"$log" || {
  code=$?
  # 1 = completed with per-object errors: the history shows them.
  [ "$code" -eq 1 ] || { tail -20 "$log" >&2; exit "$code"; }
}
echo

echo "\$ autosync history"
"$bin" -c "$cfg" history --limit 16
echo
accounts="$(grep -c '"kind":"account"' "$dir/data/directory.jsonl" || true)"
groups="$(grep -c '"kind":"group"' "$dir/data/directory.jsonl" || true)"
echo "working copy:         $dir"
echo "application database: $dir/data/app.db (tables users, groups, group_members)"
echo "directory file:       $dir/data/directory.jsonl ($accounts accounts, $groups groups)"
echo
echo "Try: edit $dir/data/hr.csv (change a title or a manager_id, set a status"
echo "to terminated) or $dir/data/groups.csv (a group's members), and run this"
echo "again: only the difference flows. Or keep the targets in step as you"
echo "edit, with the service:"
echo "  $shown run -c $cfg"
