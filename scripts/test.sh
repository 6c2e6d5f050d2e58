#!/usr/bin/env bash
# Runs every test: installs missing packages, builds, then runs the unit tests
# and the integration tests (which start their own PostgreSQL clusters on free
# loopback ports) through CTest.
#
#   scripts/test.sh
#   ctest --test-dir build -L integration --output-on-failure   # afterwards: one label only
#   ctest --test-dir build -R pgbench --output-on-failure       # or one test
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh
ctest --test-dir build -j2 --output-on-failure
