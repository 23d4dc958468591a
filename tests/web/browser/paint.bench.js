// Time to first paint of the review console in Chromium on a large state (a benchmark, not a test).
//   run.sh paint.bench.js CLI OUT_DIR CONFIG [QUERY_TEXT]
// CONFIG is a migration kept by `console_bench Q E N --keep DIR` (DIR/migration.json). Serves it with
// `crmmigrate serve`, then for the overview, the queue page and an audit search measures in a fresh
// page: first-contentful-paint (Paint Timing API) and the time until the page's data is on screen.
// Prints one JSON object.
'use strict';
const path = require('path');
const { serve, stop, launch } = require('./scenario');

const [bin, , config, sid] = process.argv.slice(2);

(async () => {
  const { url, proc } = await serve(bin, config);
  const origin = new URL(url).origin;
  const browser = await launch();
  const out = { config: path.resolve(config), runs: 5 };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'dark' });
    const warm = await context.newPage();
    await warm.goto(url);  // sets the cookie
    await warm.locator('#counts').waitFor({ timeout: 120000 });
    await warm.close();
    const pages = {
      overview: { hash: '#/overview', ready: '#counts' },
      queue: { hash: '#/queue', ready: '#queue-table' },
      audit_search: { hash: '#/audit?q=' + encodeURIComponent(sid || '100001'), ready: '#record-title, #audit-results table' },
    };
    for (const [name, p] of Object.entries(pages)) {
      const fcp = [];
      const ready = [];
      for (let i = 0; i < out.runs; i++) {
        const page = await context.newPage();
        const t0 = Date.now();
        await page.goto(origin + '/' + p.hash);
        await page.locator(p.ready).first().waitFor({ timeout: 60000 });
        ready.push(Date.now() - t0);
        fcp.push(await page.evaluate(() => {
          const e = performance.getEntriesByName('first-contentful-paint')[0];
          return e ? Math.round(e.startTime) : null;
        }));
        await page.close();
      }
      const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
      out[name] = { first_contentful_paint_ms_median: med(fcp), data_on_screen_ms_median: med(ready), first_contentful_paint_ms: fcp, data_on_screen_ms: ready };
    }
  } finally {
    await browser.close();
    await stop(proc);
  }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
