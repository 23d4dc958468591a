// Shared pieces of the conformance scripts: seed a reference sandbox, start `crmmigrate sandbox
// serve` and Prism on 127.0.0.1, send requests, collect failures, stop every child we started.
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const children = [];
const failures = [];
let checks = 0;

function check(ok, what) {
  checks += 1;
  if (!ok) {
    failures.push(what);
    console.error(`FAIL: ${what}`);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Seeds the reference scenario (pipedrive source, hubspot destination) into a fresh temp dir.
function seed(cli) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmg-conf-'));
  const r = spawnSync(cli, ['sandbox', 'seed', '--dir', path.join(dir, 'ref'), '--seed', '42'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sandbox seed failed: ${r.stderr}`);
  return dir;
}

// Waits until `child` prints a line matching `re`; resolves with the match.
function waitForLine(child, re, what, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: not ready after ${timeoutMs} ms:\n${buf}`)), timeoutMs);
    const onData = (d) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => { buf += d.toString(); });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${buf}`));
    });
  });
}

async function startSandbox(cli, dialect, dir, token) {
  const child = spawn(cli, ['sandbox', 'serve', '--dialect', dialect, '--path', dir, '--token-env', 'CMG_CONF_TOKEN',
                            '--limits', 'off'],
                      { env: { ...process.env, CMG_CONF_TOKEN: token, CMG_SANDBOX_FAULTS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const m = await waitForLine(child, /at (http:\/\/127\.0\.0\.1:\d+)/, `sandbox serve --dialect ${dialect}`);
  return m[1];
}

// Prism in proxy mode with response validation (--errors) in front of `upstream`.
async function startPrism(spec, upstream) {
  const port = await freePort();
  const bin = path.join(__dirname, 'node_modules', '.bin', 'prism');
  const child = spawn(bin, ['proxy', spec, upstream, '-h', '127.0.0.1', '-p', String(port), '--errors'],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  await waitForLine(child, /Prism is listening/, `prism proxy ${path.basename(spec)}`, 120000);
  return `http://127.0.0.1:${port}`;
}

// One request; returns {status, headers, body (parsed JSON or text)}.
async function call(base, method, target, { headers = {}, body } = {}) {
  const res = await fetch(base + target, {
    method,
    headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch (e) { /* keep the text */ }
  return { status: res.status, headers: res.headers, body: parsed };
}

// A call through Prism: the response must carry no validation violations.
async function validated(base, method, target, opts, expectStatus) {
  const r = await call(base, method, target, opts);
  // Errors fail; warnings (an error status the operation does not document, e.g. 404) are reported.
  const header = r.headers.get('sl-violations');
  let violations = [];
  try { violations = header ? JSON.parse(header) : []; } catch (e) { violations = [{ severity: 'Error', message: header }]; }
  const errors = violations.filter((v) => v.severity === 'Error');
  check(errors.length === 0, `${method} ${target}: Prism violations ${JSON.stringify(errors)}`);
  if (violations.length > errors.length) console.log(`note: ${method} ${target}: ${JSON.stringify(violations.filter((v) => v.severity !== 'Error'))}`);
  if (expectStatus !== undefined) {
    const ok = Array.isArray(expectStatus) ? expectStatus.includes(r.status) : r.status === expectStatus;
    check(ok, `${method} ${target}: status ${r.status}, expected ${expectStatus}: ${JSON.stringify(r.body).slice(0, 400)}`);
  }
  return r;
}

function stopAll() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  }
}

async function main(fn) {
  let code = 0;
  try {
    await fn();
  } catch (e) {
    console.error(`FAIL: ${e.stack || e}`);
    failures.push(String(e));
  } finally {
    stopAll();
  }
  if (failures.length) {
    console.error(`${failures.length} of ${checks} checks failed`);
    code = 1;
  } else {
    console.log(`all ${checks} checks passed`);
  }
  process.exit(code);
}

module.exports = { check, seed, startSandbox, startPrism, call, validated, main, sleep };
