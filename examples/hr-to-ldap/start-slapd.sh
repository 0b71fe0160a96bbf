#!/usr/bin/env bash
# Starts a throwaway OpenLDAP server for the hr-to-ldap example, and prints
# the environment variables its configurations read:
#
#   eval "$(bash examples/hr-to-ldap/start-slapd.sh)"    # start (or show)
#   bash examples/hr-to-ldap/start-slapd.sh stop         # stop, remove all
#
# The server lives in a folder of its own ($SLAPD_DIR, default
# ${TMPDIR:-/tmp}/autosync-hr-to-ldap-slapd): its slapd.conf, its database,
# its log. It listens on a free loopback port, with the suffix
# dc=example,dc=org (or $LDAP_BASE), the entries ou=people and ou=groups,
# the administrator cn=admin,<suffix> with a password made for it, and
# content synchronisation (syncprov), so that a delta import reads only
# what changed and the service hears each change as it is made. Started
# again while it runs, it prints the same variables. Needs slapd and
# ldap-utils (Debian, Ubuntu: apt-get install -y slapd ldap-utils).
set -euo pipefail

dir="${SLAPD_DIR:-${TMPDIR:-/tmp}/autosync-hr-to-ldap-slapd}"
suffix="${LDAP_BASE:-dc=example,dc=org}"
admin="cn=admin,$suffix"

say() { echo "start-slapd.sh: $*" >&2; }

running() {
  [ -f "$dir/slapd.pid" ] && kill -0 "$(cat "$dir/slapd.pid")" 2>/dev/null
}

stop() {
  if running; then
    local pid
    pid="$(cat "$dir/slapd.pid")"
    kill "$pid"
    # slapd removes its pid file once it has stopped.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    say "stopped slapd ($pid)"
  fi
  # Only a folder this script made (it holds its marker) is removed.
  if [ -f "$dir/.autosync-hr-to-ldap" ]; then
    rm -rf "$dir"
    say "removed $dir"
  fi
}

print_env() {
  cat <<EOF
export LDAP_URL='$(cat "$dir/url")'
export LDAP_BIND_DN='$admin'
export LDAP_PASSWORD='$(cat "$dir/password")'
export LDAP_BASE='$suffix'
EOF
}

case "${1:-start}" in
  stop) stop; exit 0 ;;
  start) ;;
  *) echo "usage: start-slapd.sh [start|stop]" >&2; exit 2 ;;
esac

if running; then
  say "slapd already runs ($(cat "$dir/url"), folder $dir)"
  print_env
  exit 0
fi

first() { for p in "$@"; do [ -e "$p" ] && { echo "$p"; return 0; }; done; return 1; }
slapd="$(command -v slapd || first /usr/sbin/slapd /usr/local/libexec/slapd /usr/libexec/slapd)" || {
  say "slapd is not installed: apt-get install -y slapd ldap-utils"
  exit 1
}
command -v ldapadd >/dev/null || { say "ldapadd is not installed: apt-get install -y ldap-utils"; exit 1; }
schemas="$(first /etc/ldap/schema /etc/openldap/schema /usr/local/etc/openldap/schema)" || {
  say "no OpenLDAP schema folder (/etc/ldap/schema) found"
  exit 1
}
modules="$(first /usr/lib/ldap /usr/lib64/openldap /usr/lib/openldap || true)"

# A folder left by a server that is gone: start afresh.
[ -f "$dir/.autosync-hr-to-ldap" ] && rm -rf "$dir"
if [ -e "$dir" ]; then
  say "$dir exists and was not made by this script; set SLAPD_DIR to another folder"
  exit 1
fi
# Only its owner reads the folder (the password is in it).
umask 077
mkdir -p "$dir/data"
touch "$dir/.autosync-hr-to-ldap"
# A password for this server only.
password="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$password" >"$dir/password"

{
  for s in core cosine inetorgperson nis; do echo "include $schemas/$s.schema"; done
  if [ -n "$modules" ]; then
    echo "modulepath $modules"
    # Built in on some systems: a module that is not there is not needed.
    [ -e "$modules/back_mdb.la" ] || [ -e "$modules/back_mdb.so" ] && echo "moduleload back_mdb"
    echo "moduleload syncprov"
  fi
  cat <<EOF
pidfile $dir/slapd.pid
argsfile $dir/slapd.args

database mdb
suffix "$suffix"
rootdn "$admin"
rootpw $password
directory $dir/data
maxsize 268435456
index objectClass,entryUUID,entryCSN,uid,cn,employeeNumber eq
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
syncprov-reloadhint TRUE
EOF
} >"$dir/slapd.conf"

# A free loopback port: one nothing answers on (tried again if slapd
# cannot bind it after all).
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

started=0
for _ in 1 2 3 4 5; do
  port="$(free_port)"
  url="ldap://127.0.0.1:$port"
  # slapd goes into the background once it listens.
  if "$slapd" -f "$dir/slapd.conf" -h "$url/" >>"$dir/slapd.log" 2>&1; then
    started=1
    break
  fi
done
if [ "$started" -ne 1 ]; then
  say "slapd did not start; its log:"
  cat "$dir/slapd.log" >&2
  exit 1
fi
echo "$url" >"$dir/url"

# Ready when it answers (it usually does at once).
for _ in $(seq 100); do
  ldapsearch -x -H "$url" -s base -b "" namingContexts >/dev/null 2>&1 && break
  sleep 0.1
done

top="${suffix%%,*}"
attr="${top%%=*}"
value="${top#*=}"
case "$attr" in
  dc) body="objectClass: dcObject
objectClass: organization
dc: $value
o: $value" ;;
  o) body="objectClass: organization
o: $value" ;;
  ou) body="objectClass: organizationalUnit
ou: $value" ;;
  *) say "LDAP_BASE must start with dc=, o= or ou=, not $attr="; stop; exit 1 ;;
esac
ldapadd -x -H "$url" -D "$admin" -y "$dir/password" >/dev/null <<EOF
dn: $suffix
$body

dn: ou=people,$suffix
objectClass: organizationalUnit
ou: people

dn: ou=groups,$suffix
objectClass: organizationalUnit
ou: groups
EOF

stop_cmd="bash $0 stop"
[ -z "${SLAPD_DIR:-}" ] || stop_cmd="SLAPD_DIR=$dir $stop_cmd"
say "slapd runs on $url (folder $dir; stop it with: $stop_cmd)"
print_env
