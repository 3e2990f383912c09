#!/usr/bin/env bash
# Starts the whole LeadFlow stack on local defaults, in the foreground, until Ctrl-C:
# installs what it needs, builds, then runs PostgreSQL (55432), Redis (56379), the dev Kafka
# broker, crm-core's migrations, crm-core (gRPC 50051, ops HTTP 9091), webform-ingest (forms
# 8081, ops HTTP 9081), telephony-ingest (call events 8083, ops HTTP 9083; its webhook secret
# is LEADFLOW_TELEPHONY_SECRET, default below) and email-ingest (SMTP 2525, LMTP 2424, webhooks
# 8082, ops HTTP 9082; mail accepted for LEADFLOW_EMAIL_RECIPIENTS, default the domain
# leads.localhost; the Mailgun, Postmark and SendGrid routes with the local-only dev secrets
# LEADFLOW_MAILGUN_SIGNING_KEY, LEADFLOW_POSTMARK_BASIC_AUTH, LEADFLOW_SENDGRID_BASIC_AUTH,
# defaults below, printed at start). Every port listens on 127.0.0.1 only.
# State lives in .local/ and /var/tmp/leadflow-local/ (delete both for a fresh start). Logs:
# .local/logs/, and on this terminal.
#
# The dev broker keeps events IN MEMORY: stopping it loses whatever crm-core has not consumed.
# Ctrl-C therefore stops the ingestion services first, lets crm-core drain its lag (at most
# LEADFLOW_DRAIN_SECONDS, default 30, reported), then stops crm-core and the broker.
#   LEADFLOW_KAFKA_BROKERS=host:port deploy/run.sh   uses that Kafka instead of the dev broker
#   (it must have the topic leadflow.inbound.v1; nothing is stopped or lost there on Ctrl-C).
#   LEADFLOW_PORT_OFFSET=100 deploy/run.sh   adds 100 to every port above (a second stack on
#   the same machine: PostgreSQL 55532, gRPC 50151, forms 8181…), with its PostgreSQL data in
#   /var/tmp/leadflow-local/pg-100 and its state in .local-100; deploy/demo.sh takes the same
#   offset. An offset that would move one port onto another of the stack's is refused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LEADFLOW_BUILD_DIR:-$root/build}
offset=${LEADFLOW_PORT_OFFSET:-0}
if ! [[ $offset =~ ^[0-9]{1,4}$ ]] || (( 10#$offset > 5000 )); then
  echo "LEADFLOW_PORT_OFFSET must be a number from 0 to 5000, got '$offset'" >&2
  exit 2
fi
port() { echo $(($1 + 10#$offset)); }  # port DEFAULT: the default port, shifted by the offset
# An offset that moves one of the stack's ports onto another (1000 moves forms 8081 onto
# webform-ingest's operations port 9081) would make a second stack collide with the first.
default_ports=(55432 56379 50051 9091 8081 9081 8083 9083 2525 8082 9082)
if (( 10#$offset != 0 )); then
  for from in "${default_ports[@]}"; do
    for to in "${default_ports[@]}"; do
      if (( from + 10#$offset == to )); then
        echo "LEADFLOW_PORT_OFFSET=$offset moves port $from onto $to, which the default stack" \
          "uses: pick another offset (100, 200, 300… are free)" >&2
        exit 2
      fi
    done
  done
fi
suffix=""
[[ $offset == 0 ]] || suffix="-$offset"
# PostgreSQL runs as the postgres user, which cannot enter a clone under /root (mode 0700): its
# data directory lives under /var/tmp (LEADFLOW_PGDATA overrides).
pgdata=${LEADFLOW_PGDATA:-/var/tmp/leadflow-local/pg$suffix}
state=$root/.local$suffix
mkdir -p "$state/logs"
mkdir -p "$(dirname "$pgdata")"
chmod 755 "$(dirname "$pgdata")" 2>/dev/null || true

"$root/deploy/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" ${LEADFLOW_BUILD_JOBS:+-j "$LEADFLOW_BUILD_JOBS"} dev-broker kafka-lag crm-core crmctl webform-ingest telephony-ingest email-ingest
drain_seconds=${LEADFLOW_DRAIN_SECONDS:-30}

export LEADFLOW_API_KEY=${LEADFLOW_API_KEY:-local-dev-admin-key-change-me}
export LEADFLOW_TELEPHONY_SECRET=${LEADFLOW_TELEPHONY_SECRET:-local-dev-telephony-secret}
# email-ingest's webhook secrets: for trying the routes on this machine only.
export LEADFLOW_MAILGUN_SIGNING_KEY=${LEADFLOW_MAILGUN_SIGNING_KEY:-local-dev-mailgun-key}
export LEADFLOW_POSTMARK_BASIC_AUTH=${LEADFLOW_POSTMARK_BASIC_AUTH:-postmark:local-dev-postmark}
export LEADFLOW_SENDGRID_BASIC_AUTH=${LEADFLOW_SENDGRID_BASIC_AUTH:-sendgrid:local-dev-sendgrid}
ingest_pids=()  # the ingestion services, stopped first
core_pid=""     # crm-core, stopped once it has drained
broker_pid=""   # the dev broker, stopped last
brokers=""
stop_all() {
  local status=$?
  trap - INT TERM EXIT
  echo "stopping LeadFlow…" >&2
  # 1. Ingestion services: no new events; each answers what is in flight and flushes.
  for pid in "${ingest_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${ingest_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # 2. crm-core drains what is in Kafka (bounded), so the in-memory broker loses nothing.
  if [[ -n $core_pid && -n $brokers ]] && kill -0 "$core_pid" 2>/dev/null; then
    local lag="unknown" waited=0
    while (( waited < drain_seconds * 10 )); do
      lag=$("$build/deploy/local/kafka-lag" "$brokers" leadflow-crm-core leadflow.inbound.v1 2>/dev/null || echo unknown)
      [[ $lag == 0 ]] && break
      sleep 0.1
      waited=$((waited + 1))
    done
    if [[ $lag == 0 ]]; then
      echo "crm-core drained: every event is applied" >&2
    else
      echo "crm-core did not drain within ${drain_seconds}s: $lag events not applied" \
        "$([[ -n $broker_pid ]] && echo '(lost with the dev broker)')" >&2
    fi
  fi
  # 3. crm-core commits and leaves its group while the broker is still there.
  if [[ -n $core_pid ]]; then
    kill -TERM "$core_pid" 2>/dev/null || true
    wait "$core_pid" 2>/dev/null || true
  fi
  # 4. The broker, then the databases.
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

"$root/deploy/local/services.sh" pg-start "$pgdata" "$(port 55432)"
"$root/deploy/local/services.sh" redis-start "$state/redis" "$(port 56379)"

if [[ -n ${LEADFLOW_KAFKA_BROKERS:-} ]]; then
  brokers=$LEADFLOW_KAFKA_BROKERS
  broker_kind="your Kafka (LEADFLOW_KAFKA_BROKERS)"
else
  rm -f "$state/kafka.bootstrap"
  start dev-broker "$build/deploy/local/dev-broker" --partitions 6 --bootstrap-file "$state/kafka.bootstrap"
  broker_pid=$started_pid
  for _ in $(seq 200); do [[ -s $state/kafka.bootstrap ]] && break; sleep 0.05; done
  brokers=$(cat "$state/kafka.bootstrap")
  broker_kind="dev broker, IN MEMORY: events not yet consumed are lost when it stops"
fi

export CRM_DATABASE_URL=postgresql://leadflow@127.0.0.1:$(port 55432)/leadflow
export CRM_KAFKA_BROKERS=$brokers
export CRM_REDIS_PORT=$(port 56379)
export CRM_GRPC_ADDRESS=127.0.0.1:$(port 50051)
export CRM_HTTP_PORT=$(port 9091)
export CRM_API_KEYS="$LEADFLOW_API_KEY:admin"
# Page tokens are signed with the key `migrate` generated in the database (0022): they stay valid
# across restarts of this stack. CRM_PAGE_TOKEN_KEY, when exported, takes its place.
"$build/services/crm-core/crm-core" migrate

start crm-core "$build/services/crm-core/crm-core" serve
core_pid=$started_pid
start webform-ingest env WEBFORM_KAFKA_BROKERS="$brokers" WEBFORM_REDIS_PORT="$(port 56379)" \
  WEBFORM_HTTP_PORT="$(port 8081)" WEBFORM_OPS_PORT="$(port 9081)" \
  "$build/services/webform-ingest/webform-ingest"
ingest_pids+=("$started_pid")
start telephony-ingest env TELEPHONY_KAFKA_BROKERS="$brokers" \
  TELEPHONY_WEBHOOK_SECRET="$LEADFLOW_TELEPHONY_SECRET" \
  TELEPHONY_HTTP_PORT="$(port 8083)" TELEPHONY_OPS_PORT="$(port 9083)" \
  "$build/services/telephony-ingest/telephony-ingest"
ingest_pids+=("$started_pid")
email_recipients=${LEADFLOW_EMAIL_RECIPIENTS:-leads.localhost}
start email-ingest env EMAIL_KAFKA_BROKERS="$brokers" EMAIL_RECIPIENTS="$email_recipients" \
  EMAIL_SMTP_PORT="$(port 2525)" EMAIL_HTTP_PORT="$(port 8082)" EMAIL_OPS_PORT="$(port 9082)" \
  EMAIL_LMTP_ENABLED=true EMAIL_LMTP_PORT="$(port 2424)" \
  EMAIL_MAILGUN_SIGNING_KEY="$LEADFLOW_MAILGUN_SIGNING_KEY" \
  EMAIL_POSTMARK_BASIC_AUTH="$LEADFLOW_POSTMARK_BASIC_AUTH" \
  EMAIL_SENDGRID_BASIC_AUTH="$LEADFLOW_SENDGRID_BASIC_AUTH" \
  "$build/services/email-ingest/email-ingest"
ingest_pids+=("$started_pid")

cat <<INFO

LeadFlow is running (Ctrl-C stops everything):
  web forms   POST http://127.0.0.1:$(port 8081)/v1/forms/{form_id}/submissions
  calls       POST http://127.0.0.1:$(port 8083)/v1/calls/events   (secret: $LEADFLOW_TELEPHONY_SECRET)
  email       SMTP 127.0.0.1:$(port 2525), LMTP 127.0.0.1:$(port 2424), for $email_recipients
              webhooks http://127.0.0.1:$(port 8082)/v1/email/{mailgun,mailgun/mime,postmark,sendgrid}
              (local dev secrets: Mailgun signing key $LEADFLOW_MAILGUN_SIGNING_KEY,
              Postmark $LEADFLOW_POSTMARK_BASIC_AUTH, SendGrid $LEADFLOW_SENDGRID_BASIC_AUTH)
  gRPC API    127.0.0.1:$(port 50051)   (API key: $LEADFLOW_API_KEY)
  operations  http://127.0.0.1:$(port 9091)/metrics  (crm-core), http://127.0.0.1:$(port 9081)/metrics (webform-ingest),
              http://127.0.0.1:$(port 9083)/metrics (telephony-ingest), http://127.0.0.1:$(port 9082)/metrics (email-ingest)
  Kafka       $brokers ($broker_kind)
  try:        ${suffix:+LEADFLOW_PORT_OFFSET=$offset }deploy/demo.sh

INFO
wait -n "${ingest_pids[@]}" "$core_pid" ${broker_pid:+"$broker_pid"} || true
echo "a process of the stack ended by itself; see .local/logs/" >&2
exit 1
