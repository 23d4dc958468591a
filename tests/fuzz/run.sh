#!/usr/bin/env bash
# Runs one libFuzzer target of a CMG_FUZZ build (README "Fuzzing") for SECONDS (default 600).
#   tests/fuzz/run.sh csv_reader 600 [extra libFuzzer flags...]
# New inputs go to build/fuzz/corpus/<target>/ (the committed seeds in tests/fuzz/corpus/<target>/
# are read, never written); a crash is written to build/fuzz/artifacts/ and ends the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?usage: tests/fuzz/run.sh csv_reader|jsonl_reader|config|schema|http_response [SECONDS] [libFuzzer flags...]}
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
build=${CMG_FUZZ_BUILD:-build/fuzz}
dict=tests/fuzz/json.dict
[ "$target" = csv_reader ] && dict=tests/fuzz/csv.dict
mkdir -p "$build/corpus/$target" "$build/artifacts"
exec "$build/tests/fuzz/${target}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -max_len=16384 -dict="$dict" -print_final_stats=1 -artifact_prefix="$build/artifacts/$target-" \
  "$@" "$build/corpus/$target" "tests/fuzz/corpus/$target"
