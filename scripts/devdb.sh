#!/usr/bin/env bash
# Runs the development PostgreSQL that `make run` uses when ORDERSTREAM_DATABASE_URL is unset.
#
#   scripts/devdb.sh [start]   start it if needed (creating it on first use), create the
#                              orderstream database, print its URL on stdout
#   scripts/devdb.sh stop      stop it (the data stays)
#   scripts/devdb.sh status    say whether it runs (exit 0) or not (exit 3), and where
#
# The data lives in the repository's ignored folder .data/postgres. PostgreSQL refuses to run
# as root, so as root the server runs as the postgres user; when that user cannot reach .data
# (a repository under /root, say) the data goes to /tmp/orderstream-devdb-<uid> instead.
# It listens on 127.0.0.1 only, trusting every local connection, at port $PGPORT_DEV (5433 by
# default). PostgreSQL's programs come from $PG_BIN when set.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${PGPORT_DEV:-5433}
dbname=orderstream

log() { printf 'devdb: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# find_bin prints the directory holding initdb and pg_ctl.
find_bin() {
  if [ -n "${PG_BIN:-}" ]; then
    [ -x "$PG_BIN/pg_ctl" ] || die "PG_BIN=$PG_BIN has no pg_ctl"
    echo "$PG_BIN"
    return
  fi
  local dir candidates=(/usr/lib/postgresql/15/bin)
  candidates+=("$(pg_config --bindir 2>/dev/null || true)")
  candidates+=($(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn))
  candidates+=("$(dirname "$(readlink -f "$(command -v initdb || echo /nonexistent)")")")
  for dir in "${candidates[@]}"; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return
    fi
  done
  die "no PostgreSQL programs found: install PostgreSQL (15 or later) or set PG_BIN"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# as_pg runs a command as the user that owns the cluster, from / so that it never starts in a
# directory that user cannot enter.
as_pg() {
  if ! is_root; then
    (cd / && "$@")
  elif command -v runuser >/dev/null; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && su postgres -s /bin/bash -c "$(printf '%q ' "$@")")
  fi
}

# pg_dir creates, when missing, a directory for the cluster owned by the user that runs it.
pg_dir() {
  mkdir -p "$1"
  if is_root; then
    chown postgres:postgres "$1"
  fi
  chmod 0700 "$1"
}

# data_dir prints the cluster's data directory: .data/postgres when the user that runs the
# server can reach it, else a folder of this user's under /tmp. Both give the same answer on
# every call, so that start and stop agree.
data_dir() {
  local data=$root/.data/postgres
  if ! is_root; then
    mkdir -p "$root/.data"
    echo "$data"
    return
  fi

  id postgres >/dev/null 2>&1 || die "running as root needs a postgres user to run PostgreSQL"
  mkdir -p "$root/.data"
  chmod a+x "$root/.data"
  if as_pg test -x "$root/.data"; then
    echo "$data"
    return
  fi

  local base=/tmp/orderstream-devdb-$(id -u)
  mkdir -p "$base"
  if [ -L "$base" ] || [ "$(stat -c %u "$base")" != "$(id -u)" ]; then
    die "$base is not a directory of this user's: remove it"
  fi
  chmod 0711 "$base"
  echo "$base/postgres"
}

# running reports whether the cluster's server runs.
running() {
  [ -f "$1/postmaster.pid" ] && as_pg "$bin/pg_ctl" status -D "$1" >/dev/null 2>&1
}

# client prints the path of a client program: from $bin, else from PATH.
client() {
  if [ -x "$bin/$1" ]; then echo "$bin/$1"; else echo "$1"; fi
}

psql_admin() {
  "$(client psql)" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}

start() {
  local data out
  data=$(data_dir)
  case $data in
    "$root"/*) ;;
    *) log "the postgres user cannot enter $root/.data: keeping the data in $data" ;;
  esac

  if [ ! -s "$data/PG_VERSION" ]; then
    log "creating a PostgreSQL cluster in $data"
    pg_dir "$data"
    out=$(as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-locale 2>&1) ||
      { printf '%s\n' "$out" >&2; die "initdb failed"; }
  fi

  if running "$data"; then
    port=$(sed -n 4p "$data/postmaster.pid")
  else
    log "starting PostgreSQL on 127.0.0.1:$port (log: $data/server.log)"
    as_pg "$bin/pg_ctl" start -D "$data" -l "$data/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" >&2 ||
      { tail -n 20 "$data/server.log" >&2; die "PostgreSQL did not start"; }
  fi

  local tries=100
  until "$(client pg_isready)" -q -h 127.0.0.1 -p "$port"; do
    tries=$((tries - 1))
    [ "$tries" -gt 0 ] || die "PostgreSQL on port $port is not accepting connections"
    sleep 0.1
  done

  local exists="SELECT 1 FROM pg_database WHERE datname = '$dbname'"
  if [ "$(psql_admin -tAc "$exists")" != 1 ]; then
    # A concurrent start may have created it meanwhile: look again before failing.
    psql_admin -c "CREATE DATABASE $dbname" 2>/dev/null ||
      [ "$(psql_admin -tAc "$exists")" = 1 ] || die "could not create database $dbname"
  fi

  echo "postgres://postgres@127.0.0.1:$port/$dbname?sslmode=disable"
}

stop() {
  local data
  data=$(data_dir)
  if running "$data"; then
    as_pg "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >&2
  else
    log "not running"
  fi
}

status() {
  local data
  data=$(data_dir)
  if running "$data"; then
    log "running on 127.0.0.1:$(sed -n 4p "$data/postmaster.pid"), data in $data"
  else
    log "not running, data in $data"
    return 3
  fi
}

bin=$(find_bin)
case ${1:-start} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
