#!/usr/bin/env bash
# Protects: bearer API keys never cross a network in clear. The built crm-core serves gRPC over
# TLS with a certificate this test makes with openssl; the built crmctl calls it with the test's
# CA; a plaintext client, a client that does not trust the CA and, under mutual TLS, a client
# without a certificate are all refused by the handshake (UNAVAILABLE, the server still up and
# serving good clients). crm-core refuses to listen beyond loopback without TLS unless told
# CRM_GRPC_PLAINTEXT=true, and any one TLS option of crmctl turns TLS on.
#   tests/e2e/tls_e2e_test.sh BUILD_DIR      (needs LEADFLOW_TEST_PG_URL, as deploy/test.sh sets)
set -euo pipefail
source "$(dirname "$0")/crm_api_stack.sh"
crm_stack_init "$1" tls_e2e
crmctl=$crmctl_binary
failures=0
passed=0
check() { # check NAME EXPECTED_EXIT COMMAND...
  local name=$1 expected=$2
  shift 2
  local status=0
  "$@" >"$work/out" 2>"$work/err" || status=$?
  if [[ $status -eq $expected ]]; then
    echo "ok: $name"
    passed=$((passed + 1))
  else
    echo "FAILED: $name: exit $status, expected $expected: $(cat "$work/out" "$work/err")"
    failures=$((failures + 1))
  fi
}

# A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all from it.
cd "$work"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=LeadFlow test CA" \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=crm-core" -keyout server.key -out server.csr \
  2>/dev/null
printf 'subjectAltName=DNS:localhost,DNS:crm-core-api,IP:127.0.0.1\n' >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
  -extfile server.ext -out server.crt 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=crmctl" -keyout client.key -out client.csr \
  2>/dev/null
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
  -out client.crt 2>/dev/null
# A CA crm-core does not know, and a client certificate it signed.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=Other CA" \
  -keyout other.key -out other.crt 2>/dev/null

key=$crm_stack_key
# The call a good client makes: TLS with the test CA and its client certificate.
good_call() {
  "$crmctl" --address "127.0.0.1:$port" --ca-file "$work/ca.crt" --cert-file "$work/client.crt" \
    --key-file "$work/client.key" --key "$key" --timeout 3 UserService/ListUsers '{}'
}
# Starts crm-core's API on a free loopback port with TLS; extra variables as arguments
# (NAME=VALUE). start_plaintext: without TLS.
start() { start_with good_call CRM_TLS_CERT_FILE="$work/server.crt" \
  CRM_TLS_KEY_FILE="$work/server.key" "$@"; }
start_plaintext() { start_with plaintext_call "$@"; }
plaintext_call() { call UserService/ListUsers '{}'; }
start_with() {
  local ready=$1
  shift
  crm_stack_start "$ready" "$@"
}
stop() { crm_stack_stop; }
call() { "$crmctl" --address "127.0.0.1:$port" --key "$key" --timeout 3 "$@"; }
# refused NAME COMMAND...: the handshake fails. crmctl exits 1 for any failed call, a crashed
# server included, so: UNAVAILABLE (14) in its output, the server alive, a good client served.
refused() {
  local name=$1
  shift
  check "$name: exit 1" 1 "$@"
  if grep -q '"code": 14' "$work/out"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $name: expected UNAVAILABLE (14): $(cat "$work/out" "$work/err")"
    failures=$((failures + 1))
  fi
  if kill -0 "$server_pid" 2>/dev/null && good_call >/dev/null 2>&1; then
    passed=$((passed + 1))
  else
    echo "FAILED: $name: crm-core no longer serves a good TLS client: $(tail -5 "$work/server.log")"
    failures=$((failures + 1))
  fi
}

start
grep -q "(TLS)" "$work/server.log" || { echo "FAILED: server did not say TLS" && exit 1; }
check "TLS with the test CA" 0 call --ca-file "$work/ca.crt" UserService/ListUsers '{}'
check "TLS, CA from LEADFLOW_TLS_CA_FILE" 0 env LEADFLOW_TLS_CA_FILE="$work/ca.crt" \
  "$crmctl" --address "127.0.0.1:$port" --key "$key" UserService/ListUsers '{}'
check "name checked against --server-name" 0 "$crmctl" --address "127.0.0.1:$port" \
  --key "$key" --ca-file "$work/ca.crt" --server-name crm-core-api UserService/ListUsers '{}'
refused "plaintext client refused" call UserService/ListUsers '{}'
refused "client not trusting the CA refused" call --ca-file "$work/other.crt" \
  UserService/ListUsers '{}'
refused "wrong server name refused" call --ca-file "$work/ca.crt" --server-name elsewhere \
  UserService/ListUsers '{}'
# The key is still checked over TLS.
check "TLS without an API key is unauthenticated" 1 "$crmctl" --address "127.0.0.1:$port" \
  --ca-file "$work/ca.crt" --timeout 3 UserService/ListUsers '{}'
grep -q '"code": 16' "$work/out" || {
  echo "FAILED: expected UNAUTHENTICATED (16): $(cat "$work/out")"
  failures=$((failures + 1))
}

# Mutual TLS: a client CA makes a client certificate signed by it mandatory.
start CRM_TLS_CLIENT_CA_FILE="$work/ca.crt"
grep -q "(mutual TLS)" "$work/server.log" || { echo "FAILED: not mutual TLS" && exit 1; }
check "mutual TLS with a client certificate" 0 call --ca-file "$work/ca.crt" \
  --cert-file "$work/client.crt" --key-file "$work/client.key" UserService/ListUsers '{}'
refused "mutual TLS without a client certificate refused" call --ca-file "$work/ca.crt" \
  UserService/ListUsers '{}'
refused "mutual TLS with a certificate of another CA refused" call --ca-file "$work/ca.crt" \
  --cert-file "$work/other.crt" --key-file "$work/other.key" UserService/ListUsers '{}'

# crmctl: any one TLS option turns TLS on. Against a plaintext server (loopback) a TLS client
# fails its handshake, so a call that succeeds here went out in clear.
start_plaintext
check "--server-name alone speaks TLS" 1 call --server-name crm-core-api UserService/ListUsers '{}'
grep -q '"code": 14' "$work/out" || {
  echo "FAILED: --server-name alone: expected UNAVAILABLE (14): $(cat "$work/out")"
  failures=$((failures + 1))
}
check "--key-file alone is a usage error, not plaintext" 2 call --key-file "$work/client.key" \
  UserService/ListUsers '{}'
check "LEADFLOW_TLS_KEY_FILE alone is a usage error, not plaintext" 2 \
  env LEADFLOW_TLS_KEY_FILE="$work/client.key" "$crmctl" --address "127.0.0.1:$port" \
  --key "$key" --timeout 3 UserService/ListUsers '{}'
stop

# crm-core: without TLS, only loopback unless plaintext is asked for by name.
check "plaintext on 0.0.0.0 refused at start" 2 env -i CRM_ROLES=api CRM_DATABASE_URL="$database_url" \
  CRM_API_KEYS="$key:admin" CRM_GRPC_ADDRESS=0.0.0.0:0 CRM_HTTP_PORT=0 CRM_REDIS_PORT=0 \
  "$crm_core" serve
grep -q "CRM_GRPC_ADDRESS" "$work/err" || {
  echo "FAILED: the refusal does not name CRM_GRPC_ADDRESS: $(cat "$work/err")"
  failures=$((failures + 1))
}
check "plaintext on 0.0.0.0 with CRM_GRPC_PLAINTEXT=true accepted" 0 env -i CRM_ROLES=api \
  CRM_API_KEYS="$key:admin" CRM_GRPC_ADDRESS=0.0.0.0:50051 CRM_GRPC_PLAINTEXT=true \
  "$crm_core" serve --check-config

# Half a TLS configuration is a configuration error (exit 2), and an unreadable key a start-up
# failure: never a silent fallback to plaintext.
check "certificate without key refused at start" 2 env -i CRM_ROLES=api \
  CRM_API_KEYS="$key:admin" CRM_TLS_CERT_FILE="$work/server.crt" "$crm_core" serve
check "unreadable key fails start-up" 1 env -i CRM_ROLES=api CRM_DATABASE_URL="$database_url" \
  CRM_API_KEYS="$key:admin" CRM_GRPC_ADDRESS=127.0.0.1:0 CRM_HTTP_PORT=0 CRM_REDIS_PORT=0 \
  CRM_TLS_CERT_FILE="$work/server.crt" CRM_TLS_KEY_FILE="$work/missing.key" "$crm_core" serve

echo "tls_e2e: $passed checks passed, $failures failed"
[[ $failures -eq 0 ]]
