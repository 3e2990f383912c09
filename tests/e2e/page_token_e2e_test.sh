#!/usr/bin/env bash
# Protects: page tokens are opaque, bound to the query that issued them, and stable. Through the
# built crm-core and crmctl: a ListLeads token gives the next page after crm-core restarts (the
# key is the database's, migration 0022); the same token altered, forged, sent to ListContacts
# or with another status filter is refused with INVALID_ARGUMENT saying why, and nothing is
# listed; with CRM_PAGE_TOKEN_KEY set, tokens signed under the database's key are refused and
# the new key's tokens survive a restart with it.
#   tests/e2e/page_token_e2e_test.sh BUILD_DIR      (needs LEADFLOW_TEST_PG_URL, as deploy/test.sh sets)
set -euo pipefail
source "$(dirname "$0")/crm_api_stack.sh"
crm_stack_init "$1" page_token_e2e
failures=0
call() { "$crmctl_binary" --address "127.0.0.1:$port" --key "$crm_stack_key" --timeout 5 "$@"; }
ready() { call UserService/ListUsers '{}'; }
fail() {
  echo "FAILED: $*"
  failures=$((failures + 1))
}
# expect_refused NAME PATTERN METHOD JSON: INVALID_ARGUMENT whose message matches PATTERN.
expect_refused() {
  local name=$1 pattern=$2 status=0
  call "$3" "$4" >"$work/out" 2>"$work/err" || status=$?
  if [[ $status -ne 1 ]] || ! grep -q '^crmctl: INVALID_ARGUMENT (3): ' "$work/err" ||
    ! grep -qE "$pattern" "$work/err"; then
    fail "$name: exit $status: $(cat "$work/out" "$work/err")"
  else
    echo "ok: $name"
  fi
}
token_of() { python3 -c 'import json,sys; d = json.load(sys.stdin); print(d.get("next_page_token", d.get("nextPageToken", "")))'; }
ids_of() {
  python3 -c 'import json,sys; print(" ".join(l["id"] for l in json.load(sys.stdin).get("leads", [])))'
}

crm_stack_start ready
for name in Anne Bruno Chloé; do
  call LeadService/CreateLead "{\"lead\": {\"first_name\": \"$name\", \"last_name\": \"Test\"}}" \
    >/dev/null
done
first=$(call LeadService/ListLeads '{"status_id": "NEW", "page_size": 2}')
token=$(token_of <<<"$first")
[[ $(ids_of <<<"$first") == "3 2" && -n $token ]] || fail "first page: $first"

# A restart: the same token, the same query, the next page.
crm_stack_start ready
second=$(call LeadService/ListLeads "{\"status_id\": \"NEW\", \"page_size\": 2, \"page_token\": \"$token\"}")
if [[ $(ids_of <<<"$second") == "1" && -z $(token_of <<<"$second") ]]; then
  echo "ok: the token gives the next page after a restart"
else
  fail "second page after a restart: $second"
fi
# page_size may change between pages.
other_size=$(call LeadService/ListLeads "{\"status_id\": \"NEW\", \"page_size\": 5, \"page_token\": \"$token\"}")
[[ $(ids_of <<<"$other_size") == "1" ]] && echo "ok: another page_size" ||
  fail "another page_size: $other_size"

# The same token with one character changed (its 21st, inside the query's digest).
[[ ${token:20:1} == A ]] && swapped=B || swapped=A
altered=${token:0:20}$swapped${token:21}
expect_refused "altered token" 'not one this server issued' LeadService/ListLeads \
  "{\"status_id\": \"NEW\", \"page_token\": \"$altered\"}"
# The former format, made by hand: base64 of "after:2".
expect_refused "forged token" 'not one this server issued' LeadService/ListLeads \
  "{\"status_id\": \"NEW\", \"page_token\": \"$(printf after:2 | base64 | tr -d =)\"}"
expect_refused "another method's token" 'another List method' ContactService/ListContacts \
  "{\"page_token\": \"$token\"}"
expect_refused "other filters" 'other filters' LeadService/ListLeads \
  "{\"status_id\": \"IN_PROCESS\", \"page_token\": \"$token\"}"
expect_refused "filter dropped" 'other filters' LeadService/ListLeads \
  "{\"page_token\": \"$token\"}"

# A key from the environment replaces the database's: earlier tokens are refused, its own work
# across a restart with the same key.
env_key=page-token-key-from-the-environment-0123456789
crm_stack_start ready CRM_PAGE_TOKEN_KEY=$env_key
expect_refused "token of the database's key under CRM_PAGE_TOKEN_KEY" 'not one this server issued' \
  LeadService/ListLeads "{\"status_id\": \"NEW\", \"page_size\": 2, \"page_token\": \"$token\"}"
env_token=$(call LeadService/ListLeads '{"page_size": 1}' | token_of)
crm_stack_start ready CRM_PAGE_TOKEN_KEY=$env_key
next=$(call LeadService/ListLeads "{\"page_size\": 1, \"page_token\": \"$env_token\"}")
[[ $(ids_of <<<"$next") == "2" ]] && echo "ok: CRM_PAGE_TOKEN_KEY's tokens survive a restart" ||
  fail "CRM_PAGE_TOKEN_KEY after a restart: $next"
((failures == 0))
