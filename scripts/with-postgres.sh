#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL server: installs PostgreSQL with apt where it is
# missing, starts a private cluster on a loopback port as the unprivileged `postgres` user,
# exports DATABASE_URL (and a SECRET_KEY for the run, which settings require with a database
# server), runs the command, and stops the cluster (and only it) afterwards.
set -euo pipefail

PORT="${CREDITS_PG_PORT:-54329}"

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
id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres

AS_PG=()
if [ "$(id -u)" = 0 ]; then AS_PG=(runuser -u postgres --); fi

DATADIR="$(mktemp -d /tmp/credits-pg.XXXXXX)"
chmod 700 "$DATADIR"
[ "$(id -u)" = 0 ] && chown postgres "$DATADIR"

stop() {
  "${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DATADIR" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$DATADIR"
}
trap stop EXIT

"${AS_PG[@]}" "$BINDIR/initdb" -D "$DATADIR" -U credits --auth=trust -E UTF8 >/dev/null
"${AS_PG[@]}" "$BINDIR/pg_ctl" -D "$DATADIR" -l "$DATADIR/server.log" -w -o \
  "-h 127.0.0.1 -p $PORT -k $DATADIR -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off ${CREDITS_PG_OPTIONS:-}" \
  start >/dev/null
"${AS_PG[@]}" "$BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U credits credits

export DATABASE_URL="postgres://credits@127.0.0.1:$PORT/credits"
export SECRET_KEY="${SECRET_KEY:-$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')}"
"$@"
