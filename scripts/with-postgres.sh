#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server with pgbouncer in front of it: installs
# PostgreSQL and pgbouncer with apt where they are missing, starts a private cluster and a
# transaction-pooling pgbouncer on loopback ports as the unprivileged `postgres` user, exports
# DATABASE_URL (PostgreSQL itself), PGBOUNCER_URL (the same database through pgbouncer) and a
# SECRET_KEY for the run (settings require one with a database server), runs the command, and
# stops both (and only them) afterwards.
#
# Also exported, for the tests that stop and start the server under load: CREDITS_PG_CTL, the
# pg_ctl command line for this cluster with its options, run as its owner (a shell-quoted
# string, e.g. `eval "$CREDITS_PG_CTL stop -m fast"`).
set -euo pipefail

PORT="${CREDITS_PG_PORT:-54329}"
BOUNCER_PORT="${CREDITS_PGBOUNCER_PORT:-$((PORT + 10000))}"

find_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! BINDIR="$(find_bindir)"; then
  echo "PostgreSQL not found; installing it with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  BINDIR="$(find_bindir)"
fi
"$(dirname "$0")/ensure-debian-packages.sh" pgbouncer:pgbouncer
PGBOUNCER="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres

AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); fi

DATADIR="$(mktemp -d /tmp/credits-pg.XXXXXX)"
BOUNCERDIR="$(mktemp -d /tmp/credits-pgbouncer.XXXXXX)"
chmod 700 "$DATADIR" "$BOUNCERDIR"
[ "$(id -u)" = 0 ] && chown postgres "$DATADIR" "$BOUNCERDIR"

stop() {
  if [ -f "$BOUNCERDIR/pgbouncer.pid" ]; then
    kill "$(cat "$BOUNCERDIR/pgbouncer.pid")" 2>/dev/null || true
  fi
  "${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DATADIR" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DATADIR" "$BOUNCERDIR"
}
trap stop EXIT

SERVER_OPTIONS="-h 127.0.0.1 -p $PORT -k $DATADIR -c max_connections=200 -c timezone=UTC -c fsync=off -c synchronous_commit=off -c full_page_writes=off ${CREDITS_PG_OPTIONS:-}"
PG_CTL=("${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DATADIR" -l "$DATADIR/server.log" -o "$SERVER_OPTIONS")

"${AS_PG[@]}" "$BINDIR/initdb" -D "$DATADIR" -U credits --auth=trust -E UTF8 >/dev/null
"${PG_CTL[@]}" -w start >/dev/null
"${AS_PG[@]}" "$BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U credits credits

# Every database name maps to the cluster, so the test database (made by the test run) is
# reachable through pgbouncer too. Transaction pooling: a server connection serves one
# transaction of a client, then the next client's.
cat >"$BOUNCERDIR/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
# The tests release server connections (KILL, RESUME) on the admin console.
admin_users = credits
auth_file = $BOUNCERDIR/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
server_login_retry = 1
logfile = $BOUNCERDIR/pgbouncer.log
pidfile = $BOUNCERDIR/pgbouncer.pid
INI
echo '"credits" ""' >"$BOUNCERDIR/users.txt"
[ "$(id -u)" = 0 ] && chown postgres "$BOUNCERDIR"/*
"${AS_PG[@]}" "$PGBOUNCER" -d -q "$BOUNCERDIR/pgbouncer.ini"

export DATABASE_URL="postgres://credits@127.0.0.1:$PORT/credits"
export SECRET_KEY="${SECRET_KEY:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
export PGBOUNCER_URL="postgres://credits@127.0.0.1:$BOUNCER_PORT/credits"
CREDITS_PG_CTL="$(printf '%q ' "${PG_CTL[@]}")"
export CREDITS_PG_CTL
"$@"
