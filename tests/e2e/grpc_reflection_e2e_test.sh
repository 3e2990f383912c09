#!/usr/bin/env bash
# Protects: every crm-core service works with any reflection client, not only the bundled
# crmctl. The built crm-core (API role) serves a fresh, migrated database; a Python client
# (Debian's python3-grpcio and python3-protobuf) that has none of the project's .proto files
# learns the API from gRPC server reflection alone and calls every service
# (grpc_reflection_client.py says what it checks). The reflection protocol's own messages come
# from Debian's grpc-proto package, compiled here with protoc.
#   tests/e2e/grpc_reflection_e2e_test.sh BUILD_DIR   (needs LEADFLOW_TEST_PG_URL, as deploy/test.sh sets)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/crm_api_stack.sh"
crm_stack_init "$1" grpc_reflection_e2e

reflection_proto=/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto
[[ -r $reflection_proto ]] || { echo "FAILED: $reflection_proto missing (deploy/setup.sh installs grpc-proto)"; exit 1; }
# Compiled on its own, as reflection.proto at the root: a generated grpc/ package would shadow
# grpcio's own grpc module.
mkdir -p "$work/proto" "$work/generated"
cp "$reflection_proto" "$work/proto/reflection.proto"
protoc -I "$work/proto" --python_out="$work/generated" "$work/proto/reflection.proto"

ready() {
  "$crmctl_binary" --address "127.0.0.1:$port" --key "$crm_stack_key" --timeout 2 \
    UserService/ListUsers '{}'
}
crm_stack_start ready

# Debian's interpreter, the one python3-grpcio and python3-protobuf install into (a python3
# earlier on PATH, e.g. a pyenv shim, does not see them).
status=0
/usr/bin/python3 "$here/grpc_reflection_client.py" "127.0.0.1:$port" "$crm_stack_key" "$work/generated" ||
  status=$?
if ((status != 0)); then
  echo "crm-core's log:" && tail -20 "$work/server.log"
fi
exit "$status"
