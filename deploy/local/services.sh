#!/usr/bin/env bash
# Launchers for the local stack's and the tests' servers, each with its own data directory and
# port, so nothing collides with a system-wide PostgreSQL or Redis.
#   services.sh pg-start DIR PORT      initdb on first use, start, create role+db "leadflow"
#   services.sh pg-stop DIR [MODE]     MODE: fast (default) or immediate (a crash, for fault tests)
#   services.sh redis-start DIR PORT
#   services.sh redis-stop DIR
set -euo pipefail

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$dir"; fi
  if [[ ! -f "$dir/PG_VERSION" ]]; then
    as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir.initdb.log"
    cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
# crm-core takes one advisory lock per identity of a batch (up to ~2 per event)
max_locks_per_transaction = 256
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    # Running already: keep it if it listens on the port asked for, else restart it there.
    if [[ $(sed -n 4p "$dir/postmaster.pid") == "$port" ]]; then
      echo "postgresql already running in $dir" >&2
    else
      as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
      as_pg "$PG_BIN/pg_ctl" -D "$dir" -o "-p $port" -l "$dir/server.log" -w -t 60 start >/dev/null
    fi
  else
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -o "-p $port" -l "$dir/server.log" -w -t 60 start >/dev/null
  fi
  local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt)
  if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='leadflow'") ]]; then
    "${psql[@]}" -c "CREATE ROLE leadflow LOGIN CREATEDB"
  fi
  if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='leadflow'") ]]; then
    "${psql[@]}" -c "CREATE DATABASE leadflow OWNER leadflow"
  fi
}

pg_stop() {
  local dir=$1 mode=${2:-fast}
  if [[ -f "$dir/postmaster.pid" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -m "$mode" -w stop >/dev/null || true
  fi
}

redis_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ -f "$dir/redis.pid" ]] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    if timeout 2 redis-cli -p "$port" ping >/dev/null 2>&1; then
      echo "redis already running in $dir" >&2
      return
    fi
    kill "$(cat "$dir/redis.pid")"  # running on another port: restart it on this one
    for _ in $(seq 100); do kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null || break; sleep 0.05; done
  fi
  rm -f "$dir/redis.pid"  # a stale one would name a process that is gone
  # In the background rather than daemonized, so that a Redis that exits at once (its port
  # taken) is seen by its pid; in a session of its own, so that Ctrl-C on the caller does not
  # reach it (the caller stops it with redis-stop).
  setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --daemonize no --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" </dev/null >/dev/null 2>&1 &
  local pid=$! deadline=$((SECONDS + 30))  # a loaded machine can be slow to start it
  # Running means neither gone nor a zombie: it is this script's child until the script exits.
  while ((SECONDS < deadline)) && [[ $(ps -o stat= -p "$pid" 2>/dev/null) == [^Z]* ]]; do
    # Bounded: whatever else holds the port may accept and never answer.
    if timeout 2 redis-cli -p "$port" ping >/dev/null 2>&1; then return; fi
    sleep 0.05
  done
  echo "redis did not start on port $port; the end of $dir/redis.log:" >&2
  tail -5 "$dir/redis.log" >&2 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  exit 1
}

redis_stop() {
  local dir=$1
  if [[ -f "$dir/redis.pid" ]]; then
    local pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    # Gone before returning (5 s at most): a caller that removes the directory or starts a
    # Redis on the same port next must not race the old one still writing its log.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    rm -f "$dir/redis.pid"
  fi
}

case "${1:-}" in
  pg-start) pg_start "$2" "$3" ;;
  pg-stop) pg_stop "$2" "${3:-fast}" ;;
  redis-start) redis_start "$2" "$3" ;;
  redis-stop) redis_stop "$2" ;;
  *) echo "usage: $0 pg-start DIR PORT | pg-stop DIR [fast|immediate] | redis-start DIR PORT | redis-stop DIR" >&2; exit 2 ;;
esac
