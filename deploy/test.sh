#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds, starts a private PostgreSQL and Redis,
# runs every test (unit, fuzz-corpus replays, integration, end-to-end, the fault suite, which
# starts and stops its own PostgreSQL and Redis) through CTest, and stops the servers.
# See docs/testing.md.
#   deploy/test.sh [ctest arguments…]      e.g. deploy/test.sh -L unit
#   LEADFLOW_BUILD_JOBS=N                   build with at most N jobs (default: ninja's, cores + 2);
#                                           on a machine others share, N=1 or 2 keeps it usable
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${LEADFLOW_BUILD_DIR:-$root/build}

# A full build takes about 7 GiB (debug information in ~100 test binaries); a disk that fills
# mid-build fails at some link step with "No space left on device". Said plainly first.
mkdir -p "$build"
free_kib=$(df -Pk "$build" | awk 'NR == 2 {print $4}')
built_kib=$(du -sk "$build" | awk '{print $1}')
need_kib=$((7 * 1024 * 1024))
if ((free_kib + built_kib < need_kib)) && [[ ${LEADFLOW_SKIP_DISK_CHECK:-0} != 1 ]]; then
  echo "test.sh: a full build needs about 7 GiB; the disk of $build has $((free_kib / 1024))" \
    "MiB free and the build there $((built_kib / 1024)) MiB: $(((need_kib - free_kib - built_kib) / 1024))" \
    "MiB short (LEADFLOW_SKIP_DISK_CHECK=1 to try anyway)" >&2
  exit 1
fi
"$root/deploy/setup.sh"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" ${LEADFLOW_BUILD_JOBS:+-j "$LEADFLOW_BUILD_JOBS"}

# The servers' data lives outside the clone: PostgreSQL runs as the postgres user, which cannot
# enter a clone under /root (mode 0700).
state=$(mktemp -d /tmp/leadflow-test.XXXXXX)
chmod 755 "$state"
pg_port=${LEADFLOW_TEST_PG_PORT:-55439}
redis_port=${LEADFLOW_TEST_REDIS_PORT:-56389}
cleanup() {
  "$root/deploy/local/services.sh" pg-stop "$state/pg" || true
  "$root/deploy/local/services.sh" redis-stop "$state/redis" || true
  rm -rf "$state"
}
trap cleanup EXIT
"$root/deploy/local/services.sh" pg-start "$state/pg" "$pg_port"
"$root/deploy/local/services.sh" redis-start "$state/redis" "$redis_port"

export LEADFLOW_TEST_PG_URL="postgresql://postgres@127.0.0.1:$pg_port/postgres"
export LEADFLOW_TEST_REDIS_HOST=127.0.0.1
export LEADFLOW_TEST_REDIS_PORT=$redis_port
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
