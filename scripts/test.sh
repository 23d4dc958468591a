#!/usr/bin/env bash
# Builds crmmigrate and runs every test (the command CI runs: .ci/run calls this script).
#   scripts/test.sh            release build, all tests except the long variants
#   CMG_LONG_TESTS=ON scripts/test.sh    also the long variants
#   PRESET=asan scripts/test.sh          the same suite under AddressSanitizer + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
preset=${PRESET:-release}
cmake --preset "$preset" -DCMG_LONG_TESTS="${CMG_LONG_TESTS:-OFF}" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset"
