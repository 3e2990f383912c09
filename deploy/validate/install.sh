#!/usr/bin/env bash
# Installs the pinned npm packages of the deployment checks (package-lock.json) into
# deploy/validate/node_modules. Idempotent: nothing to do when the lockfile has not changed.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.installed-lock.json
if [[ -f $stamp ]] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
echo "validate: npm ci (deploy/validate/package-lock.json)" >&2
npm ci --no-audit --no-fund --loglevel=error >/dev/null
cp package-lock.json "$stamp"
