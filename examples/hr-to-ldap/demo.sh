#!/usr/bin/env bash
# Runs the hr-to-ldap example end to end: import the HR file (people, and
# its departments), synchronise, export to the directory (people in
# ou=people, department groups in ou=groups), confirm, and show the run
# history and the directory.
#
#   eval "$(bash examples/hr-to-ldap/start-slapd.sh)"   # a throwaway slapd
#   demo.sh [--fresh] [DIR]
#
# The directory comes from LDAP_URL, LDAP_BIND_DN, LDAP_PASSWORD and
# LDAP_BASE (start-slapd.sh prints them). It never writes inside examples/:
# it works on a copy of the example (autosync.toml, directory-to-app.toml,
# data/hr.csv), the working copy, in DIR (default: target/hr-to-ldap of
# this repository, which git ignores). A working copy that exists already
# is reused: edit DIR/data/hr.csv, run this again, and only the difference
# flows. --fresh replaces the working copy with the example again (its
# state goes too; the directory keeps what it has: a fresh server is
# start-slapd.sh stop, then start).
#
# Uses `autosync` from $AUTOSYNC, else from PATH, else builds it from this
# repository with cargo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

usage() {
  echo "usage: demo.sh [--fresh] [DIR]  (DIR default: $root/target/hr-to-ldap)" >&2
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
dir="${dir:-$root/target/hr-to-ldap}"

missing=""
for v in LDAP_URL LDAP_BIND_DN LDAP_PASSWORD; do
  [ -n "${!v:-}" ] || missing="$missing $v"
done
if [ -n "$missing" ]; then
  echo "demo.sh: no directory:$missing not set. Start a throwaway one first:" >&2
  echo "  eval \"\$(bash $here/start-slapd.sh)\"" >&2
  exit 2
fi
base="${LDAP_BASE:-dc=example,dc=org}"

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
  rm -rf "$dir/autosync.toml" "$dir/directory-to-app.toml" "$dir/data" "$dir/state"
fi
if [ -f "$dir/autosync.toml" ]; then
  echo "reusing the working copy in $dir (--fresh starts again from the example)"
else
  mkdir -p "$dir/data"
  cp "$here/autosync.toml" "$dir/autosync.toml"
  cp "$here/directory-to-app.toml" "$dir/directory-to-app.toml"
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

"$bin" -c "$cfg" check
echo
# The service, until nothing is left to do (--once): it imports what changed
# (the HR file, as people and as departments, at first), synchronises,
# exports to the directory and confirms,
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
"$bin" -c "$cfg" history --limit 12
echo

# The directory, as ldapsearch shows it (the password from a file only this
# script reads, never on the command line).
secret="$(mktemp)"
trap 'rm -f "$secret"' EXIT
printf '%s' "$LDAP_PASSWORD" >"$secret"
search() {
  ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URL" -D "$LDAP_BIND_DN" -y "$secret" "$@"
}
people="$(search -b "ou=people,$base" '(objectClass=inetOrgPerson)' dn | grep -c '^dn:' || true)"
echo "\$ ldapsearch -b ou=groups,$base '(objectClass=groupOfNames)' member"
search -b "ou=groups,$base" '(objectClass=groupOfNames)' member
echo "\$ ldapsearch -b ou=people,$base '(cn=Alan Turing)' uid mail title manager telephoneNumber"
search -b "ou=people,$base" '(cn=Alan Turing)' uid mail title manager telephoneNumber
echo "working copy: $dir"
echo "directory:    $LDAP_URL ($people people in ou=people,$base)"
echo
echo "Try: edit $dir/data/hr.csv (a last name: a rename; a department: a"
echo "move, and a new group membership; a status set to terminated: a"
echo "delete) and run this again: only the difference flows. Or keep the"
echo "directory in step as you edit, with the service:"
echo "  $shown run -c $cfg"
echo "The directory as a source (a phone number changed with ldapmodify"
echo "reaches an application's database in milliseconds): see"
echo "$here/README.md."
