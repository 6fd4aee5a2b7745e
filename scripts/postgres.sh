#!/usr/bin/env bash
# A throwaway PostgreSQL on loopback, from Debian's server binaries (package `postgresql`).
#
#   scripts/postgres.sh start DIR [PORT]   initdb DIR/data, start on 127.0.0.1:PORT (default: a
#                                          free port), create user and database `tickwatch`;
#                                          prints the SQLAlchemy URL (also kept in DIR/url)
#   scripts/postgres.sh stop DIR [--keep]  stop the server and delete DIR (--keep: keep the data,
#                                          so `start DIR PORT` brings the same server back)
#   scripts/postgres.sh url DIR            print the URL of a running instance
#
# As root the server runs as the unprivileged `postgres` user (PostgreSQL refuses root).
# Durability is switched off (fsync, full_page_writes): the data is thrown away anyway.
# PG_BIN overrides the folder of the server binaries.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

pg_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$found" ] || die "no PostgreSQL server binaries under /usr/lib/postgresql; run scripts/install-system-deps.sh (Debian package postgresql)"
  echo "$found"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 port=${2:-} bin
  bin=$(pg_bin)
  [ -n "$port" ] || port=$(free_port)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user (created by the Debian package postgresql)"
    chown postgres: "$dir"
    chmod 700 "$dir"
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" --pgdata="$dir/data" --username=postgres --auth-local=trust \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-instructions >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  fi
  as_owner "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null || { cat "$dir/server.log" >&2; die "server did not start"; }
  local psql=("$bin/psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)
  as_owner "${psql[@]}" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tickwatch') THEN CREATE ROLE tickwatch LOGIN PASSWORD 'tickwatch' CREATEDB; END IF; END \$\$;" >/dev/null
  if ! as_owner "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'tickwatch'" | grep -q 1; then
    as_owner "${psql[@]}" -c "CREATE DATABASE tickwatch OWNER tickwatch" >/dev/null
  fi
  echo "$port" >"$dir/port"
  echo "postgresql+psycopg://tickwatch:tickwatch@127.0.0.1:$port/tickwatch" | tee "$dir/url"
}

stop() {
  local dir=$1 bin
  bin=$(pg_bin)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --mode=fast --wait stop >/dev/null 2>&1 \
      || as_owner "$bin/pg_ctl" --pgdata="$dir/data" --mode=immediate --wait stop >/dev/null 2>&1 || true
  fi
  [ "${2:-}" = "--keep" ] || rm -rf "$dir"
}

case "${1:-}" in
  start) [ $# -ge 2 ] || die "usage: $0 start DIR [PORT]"; start "$2" "${3:-}" ;;
  stop) [ $# -ge 2 ] || die "usage: $0 stop DIR [--keep]"; stop "$2" "${3:-}" ;;
  url) [ $# -ge 2 ] || die "usage: $0 url DIR"; cat "$2/url" ;;
  *) die "usage: $0 start DIR [PORT] | stop DIR [--keep] | url DIR" ;;
esac
