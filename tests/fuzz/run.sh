#!/usr/bin/env bash
# Builds the fuzz targets with clang (libFuzzer, ASan, UBSan) in build-fuzz/ and runs each for
# SECONDS (default 60), starting from its committed corpus in tests/fuzz/corpus/<target>/.
# New interesting inputs go to build-fuzz/corpus/<target>/ (copy the small ones into the
# committed corpus); a crash leaves its input in build-fuzz/artifacts/ and fails the script.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${LEADFLOW_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${1:-60}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(json_body urlencoded_body multipart_body charset identity inbound_event ami call_webhook smtp_command mime)
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DLEADFLOW_FUZZ=ON >/dev/null
ninja -C "$build" "${targets[@]/#/fuzz_}"

failed=()
for target in "${targets[@]}"; do
  mkdir -p "$build/corpus/$target" "$build/artifacts"
  echo "== $target: ${seconds}s" >&2
  if ! "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=8192 \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$target-" \
      "$build/corpus/$target" "$root/tests/fuzz/corpus/$target" 2>"$build/$target.log"; then
    failed+=("$target")
  fi
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)" "$build/$target.log" >&2 || true
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED ${failed[*]} (see $build/<target>.log and $build/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${seconds}s each" >&2
