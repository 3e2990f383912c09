#!/usr/bin/env bash
# Instructions per accepted request of webform-ingest (or of the trivial handler), counted by
# callgrind over every thread of the process: a figure that, unlike requests/s, does not move
# with what else the machine runs. Use it to decide between two versions of the request path;
# confirm with bench/run.sh (c).
# Same load as bench (c): wrk, bench/post_form.lua (a new sender on every request), rate limit
# on at a limit the load does not reach, Redis and the Kafka protocol (the dev broker) real.
# Usage: bench/callgrind.sh [webform|trivial] [CONNECTIONS] [SECONDS]   (webform 64 20)
#        CALLGRIND_BINARY=/path/to/webform-ingest bench/callgrind.sh   another build, to compare
# Prints "Ir/request …" and leaves callgrind's profile in bench/out/callgrind.<target>.out
# (callgrind_annotate --inclusive=yes it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LEADFLOW_BUILD_DIR:-$root/build}
target=${1:-webform}
connections=${2:-64}
seconds=${3:-20}
out=$root/bench/out
mkdir -p "$out"
ninja -C "$build" dev-broker webform-ingest http-baseline >/dev/null

port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
data=$(mktemp -d /tmp/leadflow-callgrind.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$root/deploy/local/services.sh" redis-stop "$data/redis" >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap cleanup EXIT

port=$(port_of)
profile=$out/callgrind.$target.out
rm -f "$profile"
vg=(valgrind --tool=callgrind --callgrind-out-file="$profile" --dump-instr=no
  --instr-atstart=no)
if [[ $target == trivial ]]; then
  "${vg[@]}" "$build/bench/http-baseline" "$port" >"$out/callgrind.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 600); do curl -s "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
else
  redis_port=$(port_of)
  "$root/deploy/local/services.sh" redis-start "$data/redis" "$redis_port" >/dev/null
  "$build/deploy/local/dev-broker" --partitions 6 --bootstrap-file "$data/bootstrap" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do [[ -s $data/bootstrap ]] && break; sleep 0.05; done
  ops_port=$(port_of)
  WEBFORM_HTTP_PORT=$port WEBFORM_OPS_PORT=$ops_port WEBFORM_KAFKA_BROKERS=$(cat "$data/bootstrap") \
    WEBFORM_REDIS_PORT=$redis_port WEBFORM_REDIS_PREFIX="cg-$RANDOM:" \
    WEBFORM_RATE_LIMIT_PER_MINUTE=1000000 WEBFORM_MAX_CONNECTIONS_PER_CLIENT=0 LOG_LEVEL=warn \
    "${vg[@]}" "${CALLGRIND_BINARY:-$build/services/webform-ingest/webform-ingest}" >"$out/callgrind.log" 2>&1 &
  server=$!
  pids+=("$server")
  for _ in $(seq 600); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ops_port/readyz") == 200 ]] && break
    sleep 0.1
  done
fi
if ! kill -0 "$server" 2>/dev/null; then
  echo "the server did not start; see $out/callgrind.log" >&2
  exit 1
fi
url="http://127.0.0.1:$port/v1/forms/contact/submissions"
# Warm up (first connections, first batches, caches), then count only the measured window.
wrk -t1 -c"$connections" -d3s -s "$root/bench/post_form.lua" "$url" >/dev/null 2>&1
callgrind_control -i on "$server" >/dev/null
wrk -t2 -c"$connections" -d"${seconds}s" -s "$root/bench/post_form.lua" "$url" >"$out/callgrind.wrk.txt" 2>&1
callgrind_control -i off "$server" >/dev/null
callgrind_control -d "$server" >/dev/null
kill -INT "$server"
wait "$server" 2>/dev/null || true
total=$(awk '/requests in/ {print $1}' "$out/callgrind.wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $5}' "$out/callgrind.wrk.txt")
errors=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$out/callgrind.wrk.txt")
accepted=$((total - ${non2xx:-0}))
file=$(ls -S "$profile"* | head -1)
ir=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(/,/, "", $1); print $1}' | head -1)
echo "$target: $accepted 2xx of $total requests (socket errors ${errors:-0}); $ir Ir; Ir/request $(awk -v i="$ir" -v n="$accepted" 'BEGIN {printf "%.0f", i / n}')"
