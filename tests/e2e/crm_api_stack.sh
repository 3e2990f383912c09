# Sourced by the end-to-end scripts that drive the built crm-core's gRPC API from outside
# (docs_api_e2e_test.sh, tls_e2e_test.sh, grpc_reflection_e2e_test.sh): a fresh, migrated
# database of their own and crm-core's API role on a free loopback port, stopped and dropped on
# exit. Not a test by itself.
#
#   source crm_api_stack.sh
#   crm_stack_init BUILD_DIR NAME     # $work (temporary directory), $database_url, $crm_core,
#                                     # $crmctl_binary; the EXIT trap cleans up
#   crm_stack_start READY [NAME=VALUE…]  # crm-core serve (API role, key $crm_stack_key as
#                                     # admin) on $port with the extra variables; READY is a
#                                     # command that succeeds once a call is answered
#   crm_stack_stop
#
# Needs LEADFLOW_TEST_PG_URL (deploy/test.sh sets it). The port is picked at random and only
# seen free when crm-core binds it: a start that loses the port to someone else is tried again,
# five times at most, each waiting at most 10 s for READY.

crm_stack_key=e2e-admin-key-0123456789
server_pid=""
port=""

crm_stack_cleanup() {
  crm_stack_stop
  if [[ -n ${crm_stack_database:-} ]]; then
    psql -q "$LEADFLOW_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $crm_stack_database" \
      >/dev/null 2>&1 || true
  fi
  if [[ -n ${work:-} ]]; then rm -rf "$work"; fi
}

crm_stack_init() {
  local build
  build=$(cd "$1" && pwd)
  : "${LEADFLOW_TEST_PG_URL:?set by deploy/test.sh}"
  crm_core=$build/services/crm-core/crm-core
  crmctl_binary=$build/services/crmctl/crmctl
  work=$(mktemp -d)
  crm_stack_database="${2}_$$_$RANDOM"
  trap crm_stack_cleanup EXIT
  psql -q "$LEADFLOW_TEST_PG_URL" -c "CREATE DATABASE $crm_stack_database" >/dev/null
  database_url="${LEADFLOW_TEST_PG_URL%/*}/$crm_stack_database"
  CRM_DATABASE_URL=$database_url "$crm_core" migrate >"$work/migrate.log" 2>&1 || {
    cat "$work/migrate.log"
    exit 1
  }
}

crm_stack_start() {
  local ready=$1
  shift
  crm_stack_stop
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 30000))
    env -i CRM_ROLES=api CRM_DATABASE_URL="$database_url" CRM_API_KEYS="$crm_stack_key:admin" \
      CRM_GRPC_ADDRESS="127.0.0.1:$port" CRM_HTTP_PORT=0 CRM_REDIS_PORT=0 "$@" \
      "$crm_core" serve >"$work/server.log" 2>&1 &
    server_pid=$!
    # Ready when a call answers (or the process died, e.g. the port was taken).
    for _ in $(seq 1 100); do
      if "$ready" >/dev/null 2>&1; then
        return 0
      fi
      if ! kill -0 "$server_pid" 2>/dev/null; then
        break
      fi
      sleep 0.1
    done
    crm_stack_stop
  done
  echo "crm-core did not start:" && cat "$work/server.log"
  exit 1
}

crm_stack_stop() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
