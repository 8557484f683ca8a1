#!/usr/bin/env bash
# Installs PostgreSQL from Debian's packages if needed and starts a private cluster for the tests on
# 127.0.0.1:${GATEHOUSE_PG_PORT:-55432}, with data under target/postgres (ignored by git). Idempotent:
# a running cluster is left alone. Prints the admin URL on its last line; tests create one database each.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
port="${GATEHOUSE_PG_PORT:-55432}"
data="$root/target/postgres/data"
url="postgres://gatehouse:gatehouse@127.0.0.1:$port/postgres"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages" >&2
  if [[ $(id -u) -ne 0 ]]; then echo "need root to apt-get install postgresql" >&2; exit 1; fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# initdb and postgres refuse to run as root; run them as the packaged postgres user when we are root.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  echo "$url"
  exit 0
fi

mkdir -p "$root/target/postgres"
if [[ $(id -u) -eq 0 ]]; then chown postgres "$root/target/postgres"; fi
if [[ ! -f "$data/PG_VERSION" ]]; then
  echo "creating a PostgreSQL cluster in $data" >&2
  pwfile="$(mktemp)"; echo gatehouse > "$pwfile"; chmod 644 "$pwfile"
  as_pg "$bindir/initdb" -D "$data" -U gatehouse --pwfile="$pwfile" -A scram-sha-256 >/dev/null
  rm -f "$pwfile"
fi
# fsync stays on: the tests check that a restart loses nothing.
as_pg "$bindir/pg_ctl" -D "$data" -l "$root/target/postgres/log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=/tmp -c max_connections=300" start >&2
echo "$url"
