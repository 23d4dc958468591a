#!/usr/bin/env bash
# Runs a browser test of the review console (ctest: console_browser, console_paint_bench).
#   run.sh SCRIPT CLI OUT_DIR     SCRIPT = console.test.js | paint.bench.js
# Installs playwright-core (npm, from package-lock.json) into OUT_DIR/node_modules on first use:
# nothing is written into the source tree, nothing but the npm registry is contacted, and the
# browser is Debian's chromium (scripts/setup.sh), not a downloaded one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
script=$1 cli=$2 out=$3
shift 3
command -v node >/dev/null || { echo "console browser test: node is missing (scripts/setup.sh)"; exit 1; }
[ -x /usr/bin/chromium ] || { echo "console browser test: /usr/bin/chromium is missing (scripts/setup.sh)"; exit 1; }
mkdir -p "$out"
if [ ! -f "$out/node_modules/playwright-core/package.json" ] || ! cmp -s "$here/package-lock.json" "$out/package-lock.json"; then
  cp "$here/package.json" "$here/package-lock.json" "$out/"
  (cd "$out" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
export NODE_PATH="$out/node_modules"
exec node "$here/$script" "$cli" "$out" "$@"
