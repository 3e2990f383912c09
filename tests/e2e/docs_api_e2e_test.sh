#!/usr/bin/env bash
# Protects: every crmctl example of docs/api.md runs as written. The built crm-core (API role)
# serves a fresh, migrated database; the examples run with the built crmctl in the order the page
# gives them, as a reader trying them one after the other would. Each must succeed, unless the
# comment line right above it names the gRPC code it answers ("# FAILED_PRECONDITION while …"):
# then it must fail with exactly that code. A renamed field, a wrong id or enum value, a method
# that no longer exists or an error the page does not announce fails the test, naming the line.
#   tests/e2e/docs_api_e2e_test.sh BUILD_DIR DOC   (needs LEADFLOW_TEST_PG_URL, as deploy/test.sh sets)
set -euo pipefail
doc=$2
source "$(dirname "$0")/crm_api_stack.sh"
crm_stack_init "$1" docs_api_e2e

key=$crm_stack_key
# crmctl as the page writes it, against this test's server.
crmctl() { "$crmctl_binary" --address "127.0.0.1:$port" --key "$key" --timeout 10 "$@"; }
ready() { crmctl UserService/ListUsers '{}'; }
crm_stack_start ready

codes="CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS"
codes+=" PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE"
codes+=" UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED"
code_number() {  # the number of a canonical code name
  local n=1
  for name in $codes; do
    [[ $name == "$1" ]] && echo "$n" && return
    n=$((n + 1))
  done
}

examples=0
failures=0
expected=""  # the code the comment above announces, if any
line_number=0
while IFS= read -r line; do
  line_number=$((line_number + 1))
  text="${line#"${line%%[![:space:]]*}"}"  # without leading blanks
  if [[ $text =~ ^#\ ([A-Z_]+)([^A-Za-z_]|$) ]]; then
    if [[ -n $(code_number "${BASH_REMATCH[1]}") ]]; then
      expected=${BASH_REMATCH[1]}
    fi
    continue
  fi
  if [[ $text != crmctl\ * ]]; then
    [[ $text == \#* ]] || expected=""
    continue
  fi
  examples=$((examples + 1))
  status=0
  eval "$text" >"$work/out" 2>"$work/err" || status=$?
  if [[ -z $expected ]]; then
    if [[ $status -ne 0 ]]; then
      echo "FAILED: $doc:$line_number: $text"
      echo "  exit $status: $(cat "$work/err")"
      failures=$((failures + 1))
    fi
  else
    number=$(code_number "$expected")
    # crmctl names the code as the page does: "crmctl: FAILED_PRECONDITION (9): …".
    if [[ $status -ne 1 ]] || ! grep -q "\"code\": $number}" "$work/out" ||
      ! grep -q "^crmctl: $expected ($number): " "$work/err"; then
      echo "FAILED: $doc:$line_number: $text"
      echo "  expected $expected, got exit $status: $(cat "$work/out" "$work/err")"
      failures=$((failures + 1))
    fi
  fi
  expected=""
done <"$doc"

echo "$examples examples of $doc run, $failures failed"
if ((examples == 0)); then
  echo "FAILED: no crmctl example found in $doc"
  exit 1
fi
((failures == 0))
