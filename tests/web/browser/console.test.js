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
    });

    await check('the plan page shows the gaps and the sign-off', async () => {
      await page.click('a[data-page="plan"]');
      await page.locator('text=Signed off by').waitFor({ timeout: 60000 });
      assert.ok(await page.locator('text=Untranslated values').first().isVisible());
      await page.screenshot({ path: path.join(shots, 'plan-dark.png') });
    });

    await check('reconciliation runs the read-back and lists the equation', async () => {
      await page.click('a[data-page="reconcile"]');
      await page.click('#reconcile-btn');
      await page.locator('text=Last read-back').waitFor({ timeout: 120000 });
      await page.screenshot({ path: path.join(shots, 'reconcile-dark.png') });
    });

    await check('every page in the dark and the light theme (screenshots)', async () => {
      await page.click('a[data-page="overview"]');
      await page.locator('#counts').waitFor();
      await page.screenshot({ path: path.join(shots, 'overview-dark.png') });
      await page.click('#theme-toggle');
      assert.strictEqual(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
      await page.screenshot({ path: path.join(shots, 'overview-light.png') });
      await page.click('a[data-page="plan"]');
      await page.locator('text=Signed off by').waitFor({ timeout: 60000 });
      await page.screenshot({ path: path.join(shots, 'plan-light.png') });
      await page.click('a[data-page="queue"]');
      await page.locator('#queue-table').waitFor();
      await page.locator(`#queue-table tbody tr button`).first().click();
      await page.locator('#fix-btn').waitFor();
      await page.screenshot({ path: path.join(shots, 'queue-light.png') });
      await page.click('a[data-page="audit"]');
      await page.fill('#audit-q', dealId);
      await page.keyboard.press('Enter');
      await page.locator('#record-outcome').waitFor();
      await page.screenshot({ path: path.join(shots, 'audit-light.png') });
      await page.click('a[data-page="reconcile"]');
      await page.locator('text=Last read-back').waitFor();
      await page.screenshot({ path: path.join(shots, 'reconcile-light.png') });
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
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
