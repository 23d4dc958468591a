// Browser test of the review console: Debian's chromium (headless) driven by playwright-core.
//   node console.test.js CLI OUT_DIR
// Opens the console with its token, checks the reference scenario's counts, fixes a queued deal's
// stage, reprocesses, watches its badge turn to written, finds it in the audit log, checks that a
// name holding <script> is shown as text, and saves a screenshot of every page in both themes
// under OUT_DIR/screenshots.
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { prepareReference, serve, stop, launch } = require('./scenario');

const [bin, out] = process.argv.slice(2);
const shots = path.join(out, 'screenshots');
fs.mkdirSync(shots, { recursive: true });

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log('ok   ' + name);
  } catch (e) {
    failed++;
    console.log('FAIL ' + name + '\n     ' + (e && e.stack ? e.stack.split('\n').slice(0, 3).join('\n     ') : e));
  }
}

// WCAG 2.x contrast of every visible piece of text on the page against the background it is drawn
// on (ancestors' backgrounds composited, alpha included): 4.5:1 for normal text, 3:1 for large text
// (24 px, or 18.66 px bold). Disabled controls are exempt, as WCAG says. Returns the lowest ratio
// found and the texts below their threshold.
async function contrast(page) {
  return page.evaluate(() => {
    const parse = (c) => {
      const m = /rgba?\(([^)]+)\)/.exec(c || '');
      if (!m) return null;
      const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const over = (top, bottom) => ({
      r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
      b: top.b * top.a + bottom.b * (1 - top.a), a: 1,
    });
    const lum = (c) => {
      const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
      return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
    };
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
      }
      let bg = { r: 255, g: 255, b: 255, a: 1 };
      for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
      return bg;
    };
    let lowest = Infinity;
    const failures = [];
    for (const el of document.querySelectorAll('body *')) {
      if (['SCRIPT', 'STYLE', 'OPTION', 'svg'].includes(el.tagName)) continue;
      const own = el.matches('input, select, textarea') ? (el.value || '') :
        Array.from(el.childNodes).filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join('').trim();
      if (!own) continue;
      if (el.closest(':disabled, [aria-disabled="true"]')) continue;
      const r = el.getBoundingClientRect();
      const st = getComputedStyle(el);
      if (!r.width || !r.height || st.visibility !== 'visible' || st.opacity === '0') continue;
      if (r.bottom < 0 || r.top > innerHeight) continue;  // what the screen shows
      const bg = background(el);
      const fg = over(parse(st.color), bg);
      const [a, b] = [lum(fg) + 0.05, lum(bg) + 0.05];
      const ratio = Math.max(a, b) / Math.min(a, b);
      const size = parseFloat(st.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
      lowest = Math.min(lowest, ratio);
      if (ratio < (large ? 3 : 4.5)) failures.push(`${ratio.toFixed(2)} "${own.slice(0, 40)}" <${el.tagName.toLowerCase()} class="${el.className}">`);
    }
    return { lowest, failures };
  });
}

const contrastLowest = {};
async function checkContrast(page, name) {
  const c = await contrast(page);
  contrastLowest[name] = Number(c.lowest.toFixed(2));
  assert.deepStrictEqual(c.failures, [], `${name}: text below WCAG AA contrast`);
}

async function cellText(page, object, col) {
  return (await page.locator(`#counts tr[data-object="${object}"] td[data-col="${col}"]`).textContent()).trim();
}

(async () => {
  const sc = prepareReference(bin);
  const { url, proc } = await serve(bin, sc.config);
  const origin = new URL(url).origin;
  const browser = await launch();
  const dialogs = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
    const page = await context.newPage();
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });

    await check('without the token the console answers 401', async () => {
      const r = await page.goto(origin + '/');
      assert.strictEqual(r.status(), 401);
    });

    await check('opening the URL with the token sets the cookie and shows the overview', async () => {
      await page.goto(url);
      assert.strictEqual(new URL(page.url()).search, '', 'the token is dropped from the address bar');
      await page.locator('#counts').waitFor();
      const cookies = await context.cookies();
      const c = cookies.find((x) => x.name.startsWith('cmg_console_'));
      assert.ok(c, 'console cookie set');
      assert.ok(c.httpOnly, 'HttpOnly');
      assert.strictEqual(c.sameSite, 'Strict');
    });

    await check('the overview shows the reference scenario counts', async () => {
      assert.strictEqual(await cellText(page, 'contacts', 'source'), '4,200');
      assert.strictEqual(await cellText(page, 'contacts', 'written'), '3,716');
      assert.strictEqual(await cellText(page, 'contacts', 'merged'), '450');
      assert.strictEqual(await cellText(page, 'contacts', 'queued'), '34');
      assert.strictEqual(await cellText(page, 'deals', 'written'), '1,640');
      assert.strictEqual(await cellText(page, 'deals', 'queued'), '160');
      assert.strictEqual(await cellText(page, 'notes', 'queued'), '279');
      assert.strictEqual(await cellText(page, 'companies', 'merged'), '40');
      assert.strictEqual((await page.locator('#run-state').textContent()).trim(), 'incomplete');
    });

    await check('pages are keyboard reachable and controls are labelled', async () => {
      await page.keyboard.press('Tab');  // skip link first
      const first = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
      assert.match(first, /Skip to content/);
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map((el) => el.id));
      assert.deepStrictEqual(unlabelled, []);
    });

    let dealId = '';
    await check('the queue filters by reason with server-side paging', async () => {
      await page.click('a[data-page="queue"]');
      await page.locator('#queue-table').waitFor();
      await page.selectOption('#f-reason', 'unmapped_value');
      await page.locator('text=/1–50 of 140/').waitFor();
      dealId = (await page.locator('#queue-table tbody tr').first().getAttribute('data-id'));
      assert.match(dealId, /^deals\//);
    });

    await check('fixing a queued deal\'s stage and reprocessing turns its badge to written', async () => {
      await page.fill('#reviewer', 'Avery Reviewer');
      await page.locator(`#queue-table tr[data-id="${dealId}"] button`).click();
      await page.locator('#fix-btn').waitFor();
      assert.strictEqual((await page.locator('#detail-outcome').textContent()).trim(), 'queued');
      for (const [field, value] of [['pipeline', 'partnerships'], ['dealstage', 'partner_contract']]) {
        await page.fill('#fix-field', field);
        await page.fill('#fix-value', value);
        await page.click('#fix-btn');
        await page.locator('#toast', { hasText: 'Fixed ' + dealId }).waitFor();
      }
      await page.locator('#detail .badge-fixed').first().waitFor();
      await page.click('#reprocess');
      await page.locator('#detail-outcome .badge-written').waitFor({ timeout: 60000 });
      assert.strictEqual((await page.locator('#detail-outcome').textContent()).trim(), 'written');
      await page.screenshot({ path: path.join(shots, 'queue-dark.png') });
      await checkContrast(page, 'queue-dark');
    });

    await check('the fixed deal is in the audit log with the correction and its written event', async () => {
      await page.click('a[data-page="audit"]');
      // A bare source id may match records of several objects: pick the deal from the matches.
      await page.fill('#audit-q', dealId.split('/')[1]);
      await page.keyboard.press('Enter');
      await page.locator('#audit-results table').waitFor();
      const hit = page.locator('#audit-results button', { hasText: dealId });
      if (!(await page.locator('#record-title').count())) await hit.click();
      await page.locator('#record-outcome .badge-written').waitFor();
      const steps = await page.locator('.timeline li').evaluateAll((lis) => lis.map((li) => li.dataset.step));
      for (const s of ['extracted', 'mapped', 'queued', 'fixed', 'written']) assert.ok(steps.includes(s), s + ' in ' + steps);
      assert.ok((await page.locator('.timeline li[data-step="fixed"]').first().textContent()).includes('Avery Reviewer'));
      await page.screenshot({ path: path.join(shots, 'audit-dark.png'), fullPage: false });
      await checkContrast(page, 'audit-dark');
    });

    await check('a record whose name holds <script> is shown as text', async () => {
      const sid = sc.manifest.script_person_id;
      assert.ok(sid, 'manifest names the script person');
      await page.fill('#audit-q', 'contacts/' + sid);
      await page.keyboard.press('Enter');
      await page.locator('#record-title', { hasText: 'Mallory' }).waitFor();
      const title = await page.locator('#record-title').textContent();
      assert.ok(title.includes("<script>alert('x')</script>"), title);
      assert.strictEqual(await page.locator('main script').count(), 0);
      assert.deepStrictEqual(dialogs, []);
      await page.screenshot({ path: path.join(shots, 'audit-script-dark.png') });
      await checkContrast(page, 'audit-script-dark');
    });

    await check('the plan page shows the gaps and the sign-off', async () => {
      await page.click('a[data-page="plan"]');
      await page.locator('text=Signed off by').waitFor({ timeout: 60000 });
      assert.ok(await page.locator('text=Untranslated values').first().isVisible());
      await page.screenshot({ path: path.join(shots, 'plan-dark.png') });
      await checkContrast(page, 'plan-dark');
    });

    await check('reconciliation runs the read-back and lists the equation', async () => {
      await page.click('a[data-page="reconcile"]');
      await page.click('#reconcile-btn');
      await page.locator('text=Last read-back').waitFor({ timeout: 120000 });
      await page.screenshot({ path: path.join(shots, 'reconcile-dark.png') });
      await checkContrast(page, 'reconcile-dark');
    });

    await check('every page in the dark and the light theme (screenshots)', async () => {
      await page.click('a[data-page="overview"]');
      await page.locator('#counts').waitFor();
      await page.screenshot({ path: path.join(shots, 'overview-dark.png') });
      await checkContrast(page, 'overview-dark');
      await page.click('#theme-toggle');
      assert.strictEqual(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
      await page.screenshot({ path: path.join(shots, 'overview-light.png') });
      await checkContrast(page, 'overview-light');
      await page.click('a[data-page="plan"]');
      await page.locator('text=Signed off by').waitFor({ timeout: 60000 });
      await page.screenshot({ path: path.join(shots, 'plan-light.png') });
      await checkContrast(page, 'plan-light');
      await page.click('a[data-page="queue"]');
      await page.locator('#queue-table').waitFor();
      await page.locator(`#queue-table tbody tr button`).first().click();
      await page.locator('#fix-btn').waitFor();
      await page.screenshot({ path: path.join(shots, 'queue-light.png') });
      await checkContrast(page, 'queue-light');
      await page.click('a[data-page="audit"]');
      await page.fill('#audit-q', dealId);
      await page.keyboard.press('Enter');
      await page.locator('#record-outcome').waitFor();
      await page.screenshot({ path: path.join(shots, 'audit-light.png') });
      await checkContrast(page, 'audit-light');
      await page.click('a[data-page="reconcile"]');
      await page.locator('text=Last read-back').waitFor();
      await page.screenshot({ path: path.join(shots, 'reconcile-light.png') });
      await checkContrast(page, 'reconcile-light');
    });

    await check('a cross-site form POST is refused', async () => {
      const r = await page.evaluate(async () => {
        const res = await fetch('/api/queue/skip', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: '{}' });
        return res.status;
      });
      assert.strictEqual(r, 415);
    });

    await check('no script errors in the page', async () => {
      assert.deepStrictEqual(consoleErrors.filter((e) => !/status of 4\d\d/.test(e)), []);
    });
  } finally {
    await browser.close();
    await stop(proc);
    fs.rmSync(sc.dir, { recursive: true, force: true });
  }
  console.log('lowest text contrast per page (WCAG AA: 4.5, large text 3): ' + JSON.stringify(contrastLowest));
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
