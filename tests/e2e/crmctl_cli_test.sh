#!/usr/bin/env bash
# Protects: crmctl's mistakes and failures read like the API documentation. A misspelt method or
# service is a usage error (exit 2) listing what exists; a failed call (here: nobody listening)
# exits 1 with the code's name on stderr ("crmctl: UNAVAILABLE (14): …") and {"code": 14} on
# stdout for scripts. --timeout and --user take what they document or are usage errors.
#   tests/e2e/crmctl_cli_test.sh BUILD_DIR
set -euo pipefail
crmctl=$1/services/crmctl/crmctl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
expect() {  # expect NAME EXIT PATTERN(on stderr or stdout) -- COMMAND...
  local name=$1 exit_code=$2 pattern=$3
  shift 4
  local status=0
  "$@" >"$work/out" 2>"$work/err" || status=$?
  if [[ $status -ne $exit_code ]] || ! grep -qE "$pattern" "$work/out" "$work/err"; then
    echo "FAILED: $name: exit $status (expected $exit_code), output: $(cat "$work/out" "$work/err")"
    failures=$((failures + 1))
  else
    echo "ok: $name"
  fi
}
# A port nothing listens on: bound, then released.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect "misspelt method lists the service's methods" 2 \
  'has no method ListLead \(methods: GetLead, ListLeads, .*MergeLeads\)' -- \
  "$crmctl" --address "127.0.0.1:$port" --key k LeadService/ListLead '{}'
expect "misspelt service lists the services" 2 \
  'unknown service leadflow\.crm\.v1\.LeedService \(services: .*LeadService.*ContactService' -- \
  "$crmctl" --address "127.0.0.1:$port" --key k LeedService/ListLeads '{}'
expect "failed call names its code on stderr" 1 '^crmctl: UNAVAILABLE \(14\): ' -- \
  "$crmctl" --address "127.0.0.1:$port" --key k --timeout 2 LeadService/ListLeads '{}'
expect "failed call prints its code on stdout" 1 '^\{"code": 14\}$' -- \
  "$crmctl" --address "127.0.0.1:$port" --key k --timeout 2 LeadService/ListLeads '{}'
# Options read as given or refused (exit 2), never as something else: "abc" or "-1" was an instant
# DEADLINE_EXCEEDED, "5s" five seconds by luck.
for bad in abc -1 0 5s 86401 ""; do
  expect "--timeout '$bad' is a usage error" 2 "^crmctl: --timeout takes a number of seconds" -- \
    "$crmctl" --address "127.0.0.1:$port" --key k --timeout "$bad" LeadService/ListLeads '{}'
done
expect "a fraction of a second is a timeout" 1 '^crmctl: UNAVAILABLE \(14\): ' -- \
  "$crmctl" --address "127.0.0.1:$port" --key k --timeout 0.5 LeadService/ListLeads '{}'
for bad in abc 0 -3 1.5 0012; do
  expect "--user '$bad' is a usage error" 2 "^crmctl: --user takes a user id" -- \
    "$crmctl" --address "127.0.0.1:$port" --key k --user "$bad" LeadService/ListLeads '{}'
done
expect "LEADFLOW_USER_ID is checked as --user" 2 "^crmctl: --user takes a user id" -- \
  env LEADFLOW_USER_ID=me "$crmctl" --address "127.0.0.1:$port" --key k LeadService/ListLeads '{}'
((failures == 0))
