#!/usr/bin/env bash
# Installs every build and run-time dependency of LeadFlow from Debian 12's packages.
# Idempotent: a second run installs nothing and takes a second.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config clang-format clang libclang-rt-14-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librdkafka-dev libhiredis-dev libpqxx-dev libpq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  librestinio-dev libasio-dev libhttp-parser-dev libfmt-dev
  nlohmann-json3-dev libsimdjson-dev libphonenumber-dev libicu-dev libspdlog-dev libssl-dev prometheus-cpp-dev
  postgresql redis-server
  curl kcat wrk procps iproute2 ccache openssl
  libjemalloc-dev
  # The tz database: telephony-ingest's TELEPHONY_PBX_TIME_ZONE and its tests (also in the image).
  tzdata
  libgmime-3.0-dev libxml2-dev libcurl4-openssl-dev libical-dev dovecot-imapd swaks python3
  # The reflection client of grpc_reflection_e2e_test (tests only, no deployed binary links them).
  python3-grpcio python3-protobuf grpc-proto
)
# The deployment checks run on Node.js (deploy/validate); any installed node and npm will do.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi
validate="$(dirname "$0")/validate/install.sh"


missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exec "$validate"
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Another apt or dpkg run may hold the lock for a while: wait for it instead of failing.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if $SUDO apt-get update -qq &&
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    break
  fi
  if ((attempt == 10)); then
    exit 1
  fi
  echo "setup: apt busy or failing, retrying in 15 s" >&2
  sleep 15
done
"$validate"
