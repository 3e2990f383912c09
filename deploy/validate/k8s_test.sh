#!/usr/bin/env bash
# Protects: an overlay that does not render, an object its schema refuses, a pod that is not
# restricted or stops before its grace, a variable a service does not accept or a required one
# missing. Renders k8s/overlays/OVERLAY with kubectl kustomize and checks it (check.mjs).
#   deploy/validate/k8s_test.sh OVERLAY BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
overlay=$1
build=$2
if ! command -v kubectl >/dev/null; then
  echo "SKIPPED: kubectl is not installed, k8s/overlays/$overlay was not rendered nor checked"
  exit 77
fi
if [[ ! -d $here/node_modules/kubernetes-models ]]; then
  echo "deploy/validate/node_modules is missing: run deploy/setup.sh" >&2
  exit 1
fi
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$root/k8s/overlays/$overlay" >"$rendered"
# The rules of an overlay apply to the kustomizations under it (prod/migrate is prod).
node "$here/check.mjs" k8s "$rendered" "$build" "${overlay%%/*}"
