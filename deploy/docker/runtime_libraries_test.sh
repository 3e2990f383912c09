#!/usr/bin/env bash
# Protects: an image that lacks a shared library one of its binaries needs (it would not start),
# or carries packages none of them needs. Maps every library `ldd` resolves for the image's
# binaries to its Debian package (`dpkg -S`) and compares that set with runtime-packages.txt,
# which the Dockerfile's runtime stage installs; the only others allowed are the non-library
# packages declared in runtime-nonlibrary-packages.txt. Also checks that the Dockerfile installs that
# list and copies exactly these binaries. No Docker engine is needed.
#   deploy/docker/runtime_libraries_test.sh BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
if ! command -v dpkg >/dev/null || ! command -v ldd >/dev/null; then
  echo "SKIPPED: dpkg or ldd missing (not Debian): the image's libraries were not checked"
  exit 77
fi
binaries=(crm-core webform-ingest telephony-ingest email-ingest crmctl)
status=0

# Packages of debian:12-slim that the runtime stage relies on without installing them.
mapfile -t base < <(grep -v '^#' "$here/base-packages.txt" | sed '/^$/d' | sort -u)
mapfile -t listed < <(grep -v '^#' "$here/runtime-packages.txt" | sed '/^$/d' | sort -u)
# Packages installed on purpose that hold no library the binaries load (CA certificates).
mapfile -t nonlibrary < <(grep -v '^#' "$here/runtime-nonlibrary-packages.txt" | sed '/^$/d' |
  sort -u)

libraries=()
for binary in "${binaries[@]}"; do
  path=$build/services/$binary/$binary
  if [[ ! -x $path ]]; then
    echo "FAIL: $path is not built"
    exit 1
  fi
  if ldd "$path" | grep -q "not found"; then
    echo "FAIL: $binary has unresolved libraries:" && ldd "$path" | grep "not found"
    status=1
  fi
  while read -r library; do
    libraries+=("$(readlink -f "$library")")
  done < <(ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
mapfile -t libraries < <(printf '%s\n' "${libraries[@]}" | sort -u)

# One dpkg -S for all of them (it is slow per call), under both of the merged /usr names.
candidates=()
for library in "${libraries[@]}"; do
  candidates+=("$library" "/usr${library#/usr}" "${library#/usr}")
done
owners=$(dpkg -S "${candidates[@]}" 2>/dev/null || true)
needed=()
for library in "${libraries[@]}"; do
  owner=$(awk -v a="$library" -v b="/usr${library#/usr}" -v c="${library#/usr}" \
    -F': ' '$2 == a || $2 == b || $2 == c {print $1; exit}' <<<"$owners")
  if [[ -z $owner ]]; then
    echo "FAIL: no Debian package owns $library"
    status=1
    continue
  fi
  owner=${owner%%,*}
  needed+=("${owner%%:*}")
done
mapfile -t needed < <(printf '%s\n' "${needed[@]}" | sort -u)
mapfile -t expected < <(comm -23 <(printf '%s\n' "${needed[@]}") <(printf '%s\n' "${base[@]}"))

missing=$(comm -23 <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "${listed[@]}"))
extra=$(comm -13 <(printf '%s\n' "${expected[@]}" "${nonlibrary[@]}" | sort -u) \
  <(printf '%s\n' "${listed[@]}"))
undeclared=$(comm -23 <(printf '%s\n' "${nonlibrary[@]}") <(printf '%s\n' "${listed[@]}"))
if [[ -n $undeclared ]]; then
  echo "FAIL: in runtime-nonlibrary-packages.txt but not installed (runtime-packages.txt):" \
    $undeclared
  status=1
fi
if [[ -n $missing ]]; then
  echo "FAIL: needed by the binaries but not in runtime-packages.txt:" $missing
  status=1
fi
if [[ -n $extra ]]; then
  echo "FAIL: in runtime-packages.txt but needed by no binary nor declared a non-library" \
    "package (runtime-nonlibrary-packages.txt):" $extra
  status=1
fi

dockerfile=$here/Dockerfile
if ! grep -q 'runtime-packages.txt' "$dockerfile"; then
  echo "FAIL: the Dockerfile does not install runtime-packages.txt"
  status=1
fi
for binary in "${binaries[@]}"; do
  if ! grep -q "services/$binary/$binary" "$dockerfile"; then
    echo "FAIL: the Dockerfile does not copy $binary"
    status=1
  fi
done
if [[ $status -eq 0 ]]; then
  echo "OK: ${#binaries[@]} binaries need exactly the ${#listed[@]} packages of runtime-packages.txt" \
    "(${#nonlibrary[@]} of them declared non-library, + ${#base[@]} of the base image)"
fi
exit $status
