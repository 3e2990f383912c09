#!/usr/bin/env bash
# Protects: the local stack as the README starts it. deploy/run.sh on a port offset serves every
# service on its shifted port (gRPC answers crmctl, each ingestion service's /readyz is 200), and
# stopping it as Ctrl-C does (SIGTERM) leaves none of its ports listening: a stack that left a
# service behind could not be started again. An offset that moves one of the stack's ports onto
# another (1000: forms 8081 onto 9081) is refused before anything starts.
#   tests/e2e/run_stack_e2e_test.sh BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" && pwd)
defaults=(55432 56379 50051 9091 8081 9081 8083 9083 2525 8082 9082)
collides() {  # collides OFFSET: true when OFFSET moves one default port onto another
  local from to
  for from in "${defaults[@]}"; do
    for to in "${defaults[@]}"; do (( from + $1 == to )) && return 0; done
  done
  return 1
}
had_1000=$([[ -e $root/.local-1000 ]] && echo yes || true)
refused=$(LEADFLOW_PORT_OFFSET=1000 timeout 60 "$root/deploy/run.sh" 2>&1 >/dev/null) && status=0 || status=$?
if [[ $status != 2 || $refused != *"moves port 8081 onto 9081"* ]]; then
  echo "FAIL: LEADFLOW_PORT_OFFSET=1000 was not refused (exit $status): $refused" >&2
  [[ -n $had_1000 ]] || rm -rf "$root/.local-1000"  # the state directory the run made
  exit 1
fi
# in_use OFFSET: true when a socket (listening, or a connection's local end: the shifted ports lie
# in the kernel's ephemeral range) holds one of the shifted ports now.
in_use() {
  local default
  for default in "${defaults[@]}"; do
    [[ -n $(ss -Htan "sport = :$((default + $1))") ]] && return 0
  done
  return 1
}
offset=$((1000 + RANDOM % 3000))
while collides "$offset" || in_use "$offset"; do offset=$((1000 + RANDOM % 3000)); done
work=$(mktemp -d /tmp/leadflow-run-test.XXXXXX)
chmod 755 "$work"
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work" "$root/.local-$offset"
  # A run.sh that failed to refuse offset 1000 made its state directory: remove it if it was not
  # there before this test.
  [[ -n $had_1000 ]] || rm -rf "$root/.local-1000"
}
trap cleanup EXIT
port() { echo $(($1 + offset)); }
ports=()
for default in "${defaults[@]}"; do
  ports+=("$(port "$default")")
done

LEADFLOW_PORT_OFFSET=$offset LEADFLOW_BUILD_DIR=$build LEADFLOW_PGDATA=$work/pg \
  LEADFLOW_DRAIN_SECONDS=5 setsid "$root/deploy/run.sh" >"$work/run.log" 2>&1 &
pid=$!

ready() {
  grep -q "LeadFlow is running" "$work/run.log" || return 1
  for ops in 9091 9081 9083 9082; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$(port $ops)/readyz") == 200 ]] ||
      return 1
  done
  LEADFLOW_API_KEY=local-dev-admin-key-change-me "$build/services/crmctl/crmctl" \
    --address "127.0.0.1:$(port 50051)" --timeout 2 UserService/ListUsers '{}' >/dev/null 2>&1
}
for _ in $(seq 1 600); do  # setup.sh and a no-op build first: 5 minutes at most
  ready && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
if ! ready; then
  echo "FAILED: the stack did not come up on offset $offset:"
  tail -40 "$work/run.log"
  for log in "$root/.local-$offset/redis/redis.log" "$work/pg/server.log"; do
    [[ -f $log ]] && { echo "--- $log"; tail -20 "$log"; }
  done
  exit 1
fi
echo "ok: every service up on offset $offset"

kill -TERM "$pid"
for _ in $(seq 1 240); do  # the drain is bounded by LEADFLOW_DRAIN_SECONDS: 2 minutes at most
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.5
done
if kill -0 "$pid" 2>/dev/null; then
  echo "FAILED: deploy/run.sh did not stop within 2 minutes"
  exit 1
fi
wait "$pid" 2>/dev/null || true
pid=""
# The services stop asynchronously after their stop signal; give them the same bound.
listening=""
for _ in $(seq 1 60); do
  listening=""
  for p in "${ports[@]}"; do
    if [[ -n $(ss -Hltn "sport = :$p") ]]; then listening+=" $p"; fi
  done
  [[ -z $listening ]] && break
  sleep 0.5
done
if [[ -n $listening ]]; then
  echo "FAILED: still listening after the stack stopped:$listening"
  ss -Hltnp | grep -E "$(echo "$listening" | sed 's/^ //; s/ /|/g')" || true
  exit 1
fi
echo "ok: nothing of the stack listens after it stopped"
