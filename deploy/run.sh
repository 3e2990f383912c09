#!/usr/bin/env bash
# Starts the whole LeadFlow stack on local defaults, in the foreground, until Ctrl-C:
# installs what it needs, builds, then runs PostgreSQL (55432), Redis (56379), the dev Kafka
# broker, crm-core's migrations, crm-core (gRPC 50051, ops HTTP 9091) and webform-ingest (8081).
# State lives in .local/ (delete it for a fresh start). Logs: .local/logs/, and on this terminal.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LEADFLOW_BUILD_DIR:-$root/build}
state=$root/.local
mkdir -p "$state/logs"

"$root/deploy/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" dev-broker crm-core crmctl webform-ingest

export LEADFLOW_API_KEY=${LEADFLOW_API_KEY:-local-dev-admin-key-change-me}
pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "stopping LeadFlow…" >&2
  # Services first (they flush to Kafka and commit), then the broker and the databases.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  "$root/deploy/local/services.sh" redis-stop "$state/redis" || true
  "$root/deploy/local/services.sh" pg-stop "$state/pg" || true
  echo "stopped" >&2
}
trap stop_all INT TERM EXIT

# start NAME COMMAND…: runs it in the background (its own PID in pids, so that it gets the
# signals), its output in .local/logs/NAME.log and on this terminal prefixed with its name.
start() {
  local name=$1
  shift
  "$@" > >(tee -a "$state/logs/$name.log" | sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}

"$root/deploy/local/services.sh" pg-start "$state/pg" 55432
"$root/deploy/local/services.sh" redis-start "$state/redis" 56379

rm -f "$state/kafka.bootstrap"
start dev-broker "$build/deploy/local/dev-broker" --partitions 6 --bootstrap-file "$state/kafka.bootstrap"
for _ in $(seq 200); do [[ -s $state/kafka.bootstrap ]] && break; sleep 0.05; done
brokers=$(cat "$state/kafka.bootstrap")

export CRM_DATABASE_URL=postgresql://leadflow@127.0.0.1:55432/leadflow
export CRM_KAFKA_BROKERS=$brokers
export CRM_REDIS_PORT=56379
export CRM_API_KEYS="$LEADFLOW_API_KEY:admin"
"$build/services/crm-core/crm-core" migrate

start crm-core "$build/services/crm-core/crm-core" serve
start webform-ingest env WEBFORM_KAFKA_BROKERS="$brokers" WEBFORM_REDIS_PORT=56379 \
  "$build/services/webform-ingest/webform-ingest"

cat <<INFO

LeadFlow is running (Ctrl-C stops everything):
  web forms   POST http://127.0.0.1:8081/v1/forms/{form_id}/submissions
  gRPC API    127.0.0.1:50051   (API key: $LEADFLOW_API_KEY)
  operations  http://127.0.0.1:9091/metrics  (crm-core), http://127.0.0.1:8081/metrics
  Kafka       $brokers (dev broker, in memory)
  try:        deploy/demo.sh

INFO
wait -n "${pids[@]}" || true
echo "a service stopped; see .local/logs/" >&2
