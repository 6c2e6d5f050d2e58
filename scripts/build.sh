#!/usr/bin/env bash
# Configures and builds sluice into build/ (Ninja, RelWithDebInfo).
#
#   scripts/build.sh                 # configure if needed, then build everything
#   JOBS=1 scripts/build.sh          # fewer parallel compile jobs (default 2)
#   BUILD_DIR=build-asan CMAKE_ARGS="-DSLUICE_SANITIZE=address,undefined" scripts/build.sh
#   TARGETS=sluice scripts/build.sh  # only these targets (space-separated), not everything
#
# Does not install packages: run scripts/deps.sh first (run-local.sh and test.sh do).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir="${BUILD_DIR:-build}"
jobs="${JOBS:-2}"
build_type="${BUILD_TYPE:-RelWithDebInfo}"
# Extra configure arguments, split on whitespace on purpose.
read -r -a extra_args <<<"${CMAKE_ARGS:-}"

# Configure on the first run, and again whenever the generator or build type
# would change; otherwise let Ninja's own re-run of CMake handle edits to
# CMakeLists.txt.
cache="$build_dir/CMakeCache.txt"
if [[ ! -f "$cache" ]] ||
  ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$cache" ||
  ! grep -qx "CMAKE_BUILD_TYPE:STRING=$build_type" "$cache" ||
  [[ ${#extra_args[@]} -gt 0 ]]; then
  if [[ -f "$cache" ]] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$cache"; then
    echo "build.sh: $build_dir was configured with another generator; reconfiguring from scratch" >&2
    rm -rf "$build_dir/CMakeCache.txt" "$build_dir/CMakeFiles"
  fi
  cmake -S . -B "$build_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE="$build_type" \
    -DBUILD_TESTING=ON \
    "${extra_args[@]}"
fi

read -r -a targets <<<"${TARGETS:-}"
cmake --build "$build_dir" -j "$jobs" ${targets[@]+--target "${targets[@]}"}

# A libFuzzer build (tests/fuzz) has no daemon by design.
if grep -qx 'SLUICE_FUZZ:BOOL=ON' "$cache"; then
  echo "build.sh: built the fuzz targets in $build_dir/tests/fuzz" >&2
  exit 0
fi

if [[ -x "$build_dir/sluice" ]]; then
  echo "build.sh: built $build_dir/sluice" >&2
else
  # Until proxy/ defines the daemon target there is nothing to run; the
  # integration tests are then not registered either (see tests/integration/).
  echo "build.sh: note: $build_dir/sluice was not produced (no 'sluice' target yet?)" >&2
fi
