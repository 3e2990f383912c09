#!/usr/bin/env bash
# Compares two builds of webform-ingest under bench (c)'s load, alternated on one Redis and one
# broker, each round after the trivial handler: 2xx/s, and CPU time per accepted request of
# webform-ingest, Redis and the broker (from /proc), and webform-ingest's context switches per
# request. On a shared machine CPU time per request moves far less than requests/s.
# Usage: bench/ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [CONNECTIONS]   (3 256)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LEADFLOW_BUILD_DIR:-$root/build}
A=$1; B=$2; rounds=${3:-3}; conns=${4:-256}
data=$(mktemp -d /tmp/leadflow-ab.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; "$root/deploy/local/services.sh" redis-stop "$data/redis" >/dev/null 2>&1 || true; rm -rf "$data"; }
trap cleanup EXIT
port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(port_of)
"$root/deploy/local/services.sh" redis-start "$data/redis" "$redis_port" >/dev/null
redis_pid=$(pgrep -f "redis-server.*:$redis_port" | head -1)
"$build/deploy/local/dev-broker" --partitions 6 --bootstrap-file "$data/bootstrap" >/dev/null 2>&1 &
broker=$!; pids+=("$broker")
for _ in $(seq 200); do [[ -s $data/bootstrap ]] && break; sleep 0.05; done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/$1/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}'; }
for r in $(seq "$rounds"); do
  tport=$(port_of)
  "$build/bench/http-baseline" "$tport" >/dev/null 2>&1 &
  t=$!
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$tport/healthz" >/dev/null && break; sleep 0.05; done
  turl="http://127.0.0.1:$tport/v1/forms/contact/submissions"
  wrk -t2 -c"$conns" -d10s -s "$root/bench/post_form.lua" "$turl" >"$data/wrkt.txt" 2>&1
  kill $t; wait $t 2>/dev/null || true
  awk '/Requests\/sec/ {printf "T: %8.1f 2xx/s (trivial handler)  (load %s)\n", $2, "'"$(awk '{print $1}' /proc/loadavg)"'"}' "$data/wrkt.txt"
  for name in A B; do
    bin=${!name}
    port=$(port_of); ops=$(port_of)
    WEBFORM_HTTP_PORT=$port WEBFORM_OPS_PORT=$ops WEBFORM_KAFKA_BROKERS=$(cat "$data/bootstrap") \
      WEBFORM_REDIS_PORT=$redis_port WEBFORM_REDIS_PREFIX="ab-$r-$name:" \
      WEBFORM_RATE_LIMIT_PER_MINUTE=1000000 WEBFORM_MAX_CONNECTIONS_PER_CLIENT=0 LOG_LEVEL=warn "$bin" >"$data/w.log" 2>&1 &
    w=$!
    for _ in $(seq 100); do [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops/readyz") == 200 ]] && break; sleep 0.1; done
    url="http://127.0.0.1:$port/v1/forms/contact/submissions"
    wrk -t2 -c"$conns" -d2s -s "$root/bench/post_form.lua" "$url" >/dev/null 2>&1
    c0=$(switches $w); w0=$(ticks $w); r0=$(ticks $redis_pid); b0=$(ticks $broker); l0=$(awk '{print $1}' /proc/loadavg)
    wrk -t2 -c"$conns" -d10s -s "$root/bench/post_form.lua" "$url" >"$data/wrk.txt" 2>&1
    c1=$(switches $w); w1=$(ticks $w); r1=$(ticks $redis_pid); b1=$(ticks $broker)
    total=$(awk '/requests in/ {print $1}' "$data/wrk.txt"); non=$(awk '/Non-2xx/ {print $5}' "$data/wrk.txt")
    secs=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' "$data/wrk.txt")
    ok=$((total - ${non:-0}))
    awk -v n=$name -v ok=$ok -v s=$secs -v w=$((w1-w0)) -v rr=$((r1-r0)) -v b=$((b1-b0)) -v l=$l0 -v c=$((c1-c0)) 'BEGIN {printf "%s: %8.1f 2xx/s  cpu us/request: webform %.1f redis %.1f broker %.1f; context switches/request %.2f  (load %s)\n", n, ok/s, w*1e4/ok, rr*1e4/ok, b*1e4/ok, c/ok, l}'
    kill -INT $w; wait $w 2>/dev/null || true
  done
done
