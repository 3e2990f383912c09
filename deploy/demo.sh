#!/usr/bin/env bash
# Posts a few web forms to the running local stack (deploy/run.sh) with curl — JSON, urlencoded
# and multipart, a repeat, a double submit — then prints the resulting leads and their
# activities through the gRPC API with crmctl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LEADFLOW_BUILD_DIR:-$root/build}
offset=${LEADFLOW_PORT_OFFSET:-0}  # as given to deploy/run.sh
url=${WEBFORM_URL:-http://127.0.0.1:$((8081 + offset))}
ops_url=${WEBFORM_OPS_URL:-http://127.0.0.1:$((9081 + offset))}
export LEADFLOW_GRPC_ADDRESS=${LEADFLOW_GRPC_ADDRESS:-127.0.0.1:$((50051 + offset))}
export LEADFLOW_API_KEY=${LEADFLOW_API_KEY:-local-dev-admin-key-change-me}
crmctl=$build/services/crmctl/crmctl
run=$RANDOM  # fresh senders on every demo run
phone=$(printf '06 12 %02d %02d 78' $((run % 100)) $((run / 100 % 100)))
uk_phone=$(printf '+44 20 7946 %04d' $((run % 10000)))

post() {
  echo "+ $*" | cut -c1-160
  curl -sS -w '  -> HTTP %{http_code}\n' "$@"
}

if ! curl -fsS "$ops_url/readyz" >/dev/null; then
  echo "webform-ingest is not ready at $ops_url: start the stack with deploy/run.sh first" >&2
  exit 1
fi
if [[ $("$crmctl" UserService/ListUsers '{}' | grep -c '"id"' || true) -eq 0 ]]; then
  "$crmctl" UserService/CreateUser '{"user": {"name": "Ann Seller", "email": "ann@example.com"}}' >/dev/null
  "$crmctl" UserService/CreateUser '{"user": {"name": "Bob Closer", "email": "bob@example.com"}}' >/dev/null
  echo "created two sales users (round-robin assignment)"
fi

post "$url/v1/forms/contact/submissions" -H 'Content-Type: application/json' \
  -d "{\"name\":\"Jean\",\"last_name\":\"Dupont\",\"phone\":\"$phone\",\"email\":\"jean.$run@example.com\",\"city\":\"Lyon\",\"message\":\"A quote for three rooms, please\",\"utm_source\":\"google\"}"
post "$url/v1/forms/contact/submissions" \
  --data-urlencode "name=Marie Curie" --data-urlencode "email=marie.$run@example.com" \
  --data-urlencode "city=Paris" --data-urlencode "message=Call me back about the offer"
post "$url/v1/forms/callback/submissions" -F "name=Paul" -F "phone=$uk_phone" \
  -F "message=Need a demo" -F "company=ACME Ltd"
echo "the same person again (by email, now with a phone): a repeat on the same lead"
post "$url/v1/forms/contact/submissions" -H 'Content-Type: application/json' \
  -d "{\"name\":\"Jean\",\"email\":\"JEAN.$run@example.com\",\"message\":\"Any news on my quote?\"}"
echo "a double click: the same submission twice, one effect"
for _ in 1 2; do
  post "$url/v1/forms/contact/submissions" -H 'Content-Type: application/json' \
    -d "{\"name\":\"Lea\",\"email\":\"lea.$run@example.com\",\"message\":\"Hello\"}"
done
echo "bad input: no way to reach the sender"
post "$url/v1/forms/contact/submissions" -H 'Content-Type: application/json' -d '{"name":"Nobody"}'

sleep 1
echo
echo "== newest leads =="
"$crmctl" LeadService/ListLeads '{"page_size": 5}'
echo
echo "== open activities, newest first (Jean's lead has two: the request and the repeat) =="
"$crmctl" ActivityService/ListActivities '{"completion": "COMPLETION_OPEN", "page_size": 10}'
