#!/usr/bin/env bash
# Starts the whole LeadFlow stack on local defaults, in the foreground, until Ctrl-C:
# installs what it needs, builds, then runs PostgreSQL (55432), Redis (56379), the dev Kafka
# broker, crm-core's migrations, crm-core (gRPC 50051, ops HTTP 9091) and webform-ingest (8081).
# State lives in .local/ and /var/tmp/leadflow-local/ (delete both for a fresh start). Logs:
# .local/logs/, and on this terminal.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LEADFLOW_BUILD_DIR:-$root/build}
state=$root/.local
mkdir -p "$state/logs"
# PostgreSQL runs as the postgres user, which cannot enter a clone under /root (mode 0700): its
# data directory lives under /var/tmp (LEADFLOW_PGDATA overrides).
pgdata=${LEADFLOW_PGDATA:-/var/tmp/leadflow-local/pg}
mkdir -p "$(dirname "$pgdata")"
chmod 755 "$(dirname "$pgdata")" 2>/dev/null || true

"$root/deploy/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" dev-broker crm-core crmctl webform-ingest

export LEADFLOW_API_KEY=${LEADFLOW_API_KEY:-local-dev-admin-key-change-me}
pids=()        # the services
broker_pid=""  # the dev broker, stopped after them
stop_all() {
  local status=$?
  trap - INT TERM EXIT
  echo "stopping LeadFlow…" >&2
  # Services first (webform-ingest flushes to Kafka, crm-core commits and leaves its group while
  # the broker is still there), then the broker, then the databases.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n $broker_pid ]]; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  "$root/deploy/local/services.sh" redis-stop "$state/redis" || true
  "$root/deploy/local/services.sh" pg-stop "$pgdata" || true
  echo "stopped" >&2
  exit "$status"
}
trap stop_all INT TERM EXIT

# start NAME COMMAND…: runs it in the background in a session of its own, so that Ctrl-C reaches
# only this script, which then stops everything in order; its output goes to
# .local/logs/NAME.log and to this terminal, prefixed with its name. Sets started_pid.
start() {
  local name=$1
  shift
  setsid "$@" > >(tee -a "$state/logs/$name.log" | sed -u "s/^/[$name] /") 2>&1 &
  started_pid=$!
}

"$root/deploy/local/services.sh" pg-start "$pgdata" 55432
"$root/deploy/local/services.sh" redis-start "$state/redis" 56379

rm -f "$state/kafka.bootstrap"
start dev-broker "$build/deploy/local/dev-broker" --partitions 6 --bootstrap-file "$state/kafka.bootstrap"
broker_pid=$started_pid
for _ in $(seq 200); do [[ -s $state/kafka.bootstrap ]] && break; sleep 0.05; done
brokers=$(cat "$state/kafka.bootstrap")

export CRM_DATABASE_URL=postgresql://leadflow@127.0.0.1:55432/leadflow
export CRM_KAFKA_BROKERS=$brokers
export CRM_REDIS_PORT=56379
export CRM_API_KEYS="$LEADFLOW_API_KEY:admin"
"$build/services/crm-core/crm-core" migrate

start crm-core "$build/services/crm-core/crm-core" serve
pids+=("$started_pid")
start webform-ingest env WEBFORM_KAFKA_BROKERS="$brokers" WEBFORM_REDIS_PORT=56379 \
  "$build/services/webform-ingest/webform-ingest"
pids+=("$started_pid")

cat <<INFO

LeadFlow is running (Ctrl-C stops everything):
  web forms   POST http://127.0.0.1:8081/v1/forms/{form_id}/submissions
  gRPC API    127.0.0.1:50051   (API key: $LEADFLOW_API_KEY)
  operations  http://127.0.0.1:9091/metrics  (crm-core), http://127.0.0.1:8081/metrics
  Kafka       $brokers (dev broker, in memory)
  try:        deploy/demo.sh

INFO
wait -n "${pids[@]}" "$broker_pid" || true
echo "a process of the stack ended by itself; see .local/logs/" >&2
exit 1
