#!/usr/bin/env bash
# Protects: a compose file whose services, dependencies or ports do not fit, or that gives a
# LeadFlow binary a variable it does not accept or leaves out a required one.
#   deploy/validate/compose_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ ! -d $here/node_modules/yaml ]]; then
  echo "deploy/validate/node_modules is missing: run deploy/setup.sh" >&2
  exit 1
fi
node "$here/check.mjs" compose "$here/../compose.yaml" "$1"
