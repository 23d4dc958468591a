// Shared set-up of the browser tests: the reference scenario migrated once with the CLI, then
// `crmmigrate serve` started on it. Only 127.0.0.1 is ever contacted.
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const repo = path.resolve(__dirname, '..', '..', '..');

function cli(bin, args, opts = {}) {
  const r = spawnSync(bin, args, { encoding: 'utf8', ...opts });
  if (r.error) throw r.error;
  return r;
}

/** Seeds the reference sandboxes into a fresh directory, signs the plan off and runs once. */
function prepareReference(bin) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmg-console-'));
  const seed = cli(bin, ['sandbox', 'seed', '--dir', path.join(dir, 'sandbox')]);
  if (seed.status !== 0) throw new Error('sandbox seed failed: ' + seed.stderr);
  const config = path.join(dir, 'migration.json');
  fs.copyFileSync(path.join(repo, 'examples', 'reference', 'migration.json'), config);
  const plan = cli(bin, ['plan', '-c', config, '--approve', '--reviewer', 'Avery']);
  if (plan.status !== 0) throw new Error('plan failed: ' + plan.stderr);
  const run = cli(bin, ['run', '-c', config]);
  if (run.status !== 1) throw new Error('run should end incomplete (exit 1), got ' + run.status + ': ' + run.stderr);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'sandbox', 'source', 'manifest.json'), 'utf8'));
  return { dir, config, manifest };
}

/** Starts `crmmigrate serve` and resolves with { url, proc } once it printed its URL. */
function serve(bin, config) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, ['serve', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error('serve printed no URL in 30 s: ' + out + err)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/open (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/);
      if (m) { clearTimeout(timer); resolve({ url: m[1], proc }); }
    });
    proc.stderr.on('data', (d) => { err += d; });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error('serve exited with ' + code + ': ' + err)); });
  });
}

function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) { resolve(); return; }
    proc.removeAllListeners('exit');
    proc.on('exit', () => resolve());
    proc.kill('SIGTERM');
    setTimeout(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); }, 10000);
  });
}

function launch() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
}

module.exports = { prepareReference, serve, stop, launch, cli };
