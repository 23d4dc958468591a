// Runs one conformance script, or exits 77 (ctest: skipped) when the npm packages are not installed.
// Usage: node run.js <script> <args…>
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const modules = path.join(__dirname, 'node_modules');
if (!fs.existsSync(path.join(modules, '@stoplight', 'prism-cli')) || !fs.existsSync(path.join(modules, '@hubspot', 'api-client'))) {
  console.log('skipped: run `npm ci --prefix tests/conformance` (scripts/setup.sh) to install the conformance packages');
  process.exit(77);
}
const [script, ...args] = process.argv.slice(2);
const r = spawnSync(process.execPath, [path.join(__dirname, script), ...args], { stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
