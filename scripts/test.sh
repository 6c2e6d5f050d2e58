#!/usr/bin/env bash
# Runs every test: installs missing packages, then four builds, each in its own directory, and
# their tests through CTest (integration tests start their own PostgreSQL clusters on free
# loopback ports):
#
#   plain  build/       gcc, RelWithDebInfo: unit tests, fuzz corpus replays, integration
#                       (with the wire fuzzer and the workers: 2 tests) and driver tests
#   fuzz   build-fuzz/  clang + libFuzzer, ASan+UBSan: every fuzz target for
#                       SLUICE_FUZZ_SECONDS (default 60) each
#   asan   build-asan/  gcc, ASan+UBSan: every test of the plain build
#   tsan   build-tsan/  gcc, TSan: the daemon only, and the multi-worker tests
#   package build/      the Debian package (ctest -L '^packaging$'): packaging/build-deb.sh
#                       builds it from a copy of the tree (nothing in build/ is reused),
#                       then it is inspected and linted, installed, run and purged (the
#                       install only as root: skipped otherwise); 2.5 min on 2 cores.
#                       Alone, since it changes the machine.
#
# A sanitizer report fails its test (see tests/integration/harness.py). Every stage runs even
# when an earlier one failed; the script then exits 1 and names the stages that failed.
#
#   scripts/test.sh
#   SLUICE_TEST_STAGES="plain fuzz" SLUICE_FUZZ_SECONDS=10 scripts/test.sh   # a quicker subset
#   ctest --test-dir build -L integration --output-on-failure   # afterwards: one label only
#   ctest --test-dir build -R pgbench --output-on-failure       # or one test
set -euo pipefail
cd "$(dirname "$0")/.."

stages="${SLUICE_TEST_STAGES:-plain fuzz asan tsan package}"
fuzz_seconds="${SLUICE_FUZZ_SECONDS:-60}"

scripts/deps.sh

# ccache when this machine has it; the builds do not need it.
launcher=""
if command -v ccache >/dev/null 2>&1; then
  launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
fi

run_stage() {
  local stage="$1"
  case "$stage" in
    plain)
      CMAKE_ARGS="$launcher" scripts/build.sh &&
        ctest --test-dir build -j2 -LE '^packaging$' --output-on-failure
      ;;
    fuzz)
      local fuzz_args="-DCMAKE_CXX_COMPILER=clang++ -DSLUICE_FUZZ=ON"
      fuzz_args+=" -DSLUICE_SANITIZE=address,undefined -DSLUICE_FUZZ_SECONDS=$fuzz_seconds"
      BUILD_DIR=build-fuzz CMAKE_ARGS="$launcher $fuzz_args" scripts/build.sh &&
        ctest --test-dir build-fuzz -L fuzz -j2 --output-on-failure
      ;;
    asan)
      BUILD_DIR=build-asan CMAKE_ARGS="$launcher -DSLUICE_SANITIZE=address,undefined" \
        scripts/build.sh &&
        ctest --test-dir build-asan -j2 --output-on-failure
      ;;
    tsan)
      BUILD_DIR=build-tsan CMAKE_ARGS="$launcher -DSLUICE_SANITIZE=thread" TARGETS=sluice \
        scripts/build.sh &&
        ctest --test-dir build-tsan -L multi_worker -j2 --output-on-failure
      ;;
    package)
      # Only CTest's registration is needed from build/: configure it if the plain stage did not.
      if [[ ! -f build/CMakeCache.txt ]]; then
        cmake -S . -B build -G Ninja -DBUILD_TESTING=ON >/dev/null
      fi
      ctest --test-dir build -L '^packaging$' --output-on-failure
      ;;
    *)
      echo "test.sh: unknown stage '$stage' (plain, fuzz, asan, tsan, package)" >&2
      return 1
      ;;
  esac
}

failed=()
for stage in $stages; do
  echo "test.sh: stage $stage" >&2
  started=$SECONDS
  if run_stage "$stage"; then
    echo "test.sh: stage $stage passed in $((SECONDS - started)) s" >&2
  else
    echo "test.sh: stage $stage FAILED after $((SECONDS - started)) s" >&2
    failed+=("$stage")
  fi
done

if [[ ${#failed[@]} -ne 0 ]]; then
  echo "test.sh: failed stages: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all stages passed ($stages) in $SECONDS s" >&2
