#!/usr/bin/env bash
# Runs every test of autosync on this machine, installing or starting what the
# tests need first: cargo-nextest, the PostgreSQL and MariaDB servers on
# loopback, Python's aiosmtpd (the SMTP sink of the email tests) and
# OpenLDAP's slapd and ldap-utils (the LDAP tests start their own slapd).
# Safe to run again. This is the one test command: the README names it and
# .ci/run calls it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '==> %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install --locked cargo-nextest
fi

# --- servers the tests talk to (loopback only) -------------------------------
need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
# The notification tests send email to a real SMTP sink (aiosmtpd).
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need_apt+=(python3-aiosmtpd)
# The LDAP tests start their own slapd (crates/testkit) and use ldap-utils;
# the package's own server is not needed (the kit runs slapd itself).
[ -x /usr/sbin/slapd ] || need_apt+=(slapd)
command -v ldapmodify >/dev/null 2>&1 || need_apt+=(ldap-utils)
if [ "${#need_apt[@]}" -gt 0 ]; then
  say "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; then
  say "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1 && break; sleep 1; done
fi

# --- checks ------------------------------------------------------------------
say "cargo fmt --check"
cargo fmt --all --check
# On a fresh clone the first build compiles about 350 crates (several
# minutes on 2 cores); cargo shows its progress.
say "cargo clippy (lints every crate; the first time it compiles the dependencies)"
cargo clippy --workspace --all-targets -- -D warnings
say "cargo nextest (builds the tests, then runs them)"
cargo nextest run --workspace --no-fail-fast --profile ci
