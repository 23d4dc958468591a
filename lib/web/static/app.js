// crmmigrate review console. Plain JavaScript, no framework, no build step.
// Every value from CRM data is put into the page as text (textContent / text nodes), never as HTML:
// the data holds HTML and scripts. The server's CSP forbids inline scripts as a second line.
'use strict';

(function () {
  // ------------------------------------------------------------------------------------------
  // DOM helpers

  /** Builds an element. Children: nodes, strings (text nodes), numbers, arrays, null (skipped). */
  function h(tag, attrs) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value') el.value = v;
        else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach((x) => append(el, x)); return; }
    if (c instanceof Node) { el.appendChild(c); return; }
    el.appendChild(document.createTextNode(String(c)));
  }
  /** Element.append would print null as "null" and arrays as text: children go through append(). */
  function put(el) {
    for (let i = 1; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  const $ = (sel) => document.querySelector(sel);

  const fmt = new Intl.NumberFormat('en-US');
  const num = (n) => (typeof n === 'number' ? fmt.format(n) : (n === undefined || n === null ? '—' : String(n)));
  function text(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'string') return v;
    return JSON.stringify(v);
  }
  function badge(word, extra) {
    const w = String(word || 'pending');
    return h('span', { class: 'badge badge-' + w.replace(/[^a-z_]/g, '') + (extra ? ' ' + extra : '') }, w.replace(/_/g, ' '));
  }
  function kvTable(obj, caption) {
    const rows = Object.entries(obj || {});
    if (!rows.length) return h('p', { class: 'muted' }, 'none');
    return h('table', { class: 'kv' },
      caption ? h('caption', { class: 'muted', style: null }, caption) : null,
      h('tbody', null, rows.map(([k, v]) => h('tr', null, h('td', { class: 'mono' }, k), h('td', null, text(v))))));
  }

  // ------------------------------------------------------------------------------------------
  // API

  let csrf = '';
  async function api(path, body) {
    const opts = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.method = 'POST';
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-CSRF-Token'] = csrf;
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(path, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new Error((data && data.message) || ('HTTP ' + res.status));
      err.status = res.status;
      err.code = data && data.error;
      throw err;
    }
    return data;
  }
  const qs = (o) => Object.entries(o).filter(([, v]) => v !== '' && v !== undefined && v !== null)
    .map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');

  let toastTimer = null;
  function toast(msg, isError) {
    const t = $('#toast');
    t.textContent = msg;
    t.className = 'toast' + (isError ? ' error' : '');
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 9000 : 4500);
  }
  function fail(e) { toast(e.message || String(e), true); }

  // ------------------------------------------------------------------------------------------
  // Reviewer and theme

  const reviewerInput = $('#reviewer');
  reviewerInput.value = localStorage.getItem('cmg.reviewer') || '';
  reviewerInput.addEventListener('input', () => localStorage.setItem('cmg.reviewer', reviewerInput.value.trim()));
  function reviewer() {
    const r = reviewerInput.value.trim();
    if (!r) {
      toast('Enter your name as reviewer (top right): every fix, skip and sign-off records it.', true);
      reviewerInput.focus();
      return null;
    }
    return r;
  }

  const themeBtn = $('#theme-toggle');
  function applyTheme(theme) {
    document.documentElement.setAttribute('data-theme', theme);
    themeBtn.textContent = theme === 'dark' ? 'Light theme' : 'Dark theme';
    themeBtn.setAttribute('aria-pressed', theme === 'light' ? 'true' : 'false');
  }
  const stored = localStorage.getItem('cmg.theme');
  const prefersLight = window.matchMedia && window.matchMedia('(prefers-color-scheme: light)').matches;
  applyTheme(stored || (prefersLight ? 'light' : 'dark'));
  themeBtn.addEventListener('click', () => {
    const next = document.documentElement.getAttribute('data-theme') === 'dark' ? 'light' : 'dark';
    localStorage.setItem('cmg.theme', next);
    applyTheme(next);
  });

  // ------------------------------------------------------------------------------------------
  // Router and live status

  const main = $('#main');
  let meta = { objects: [], reasons: [] };
  let pageTimer = null;
  let lastStatus = null;
  const pages = { overview: renderOverview, plan: renderPlan, queue: renderQueue, audit: renderAudit, reconcile: renderReconcile };

  function route() {
    const hash = location.hash.replace(/^#\/?/, '');
    const [name, query] = hash.split('?');
    const page = pages[name] ? name : 'overview';
    document.querySelectorAll('.sidebar a').forEach((a) => {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    clearInterval(pageTimer);
    pageTimer = null;
    clear(main);
    const params = new URLSearchParams(query || '');
    pages[page](params);
  }

  function setRunState(s) {
    lastStatus = s;
    const el = $('#run-state');
    const state = s.report.state;
    el.className = 'badge badge-' + state;
    el.textContent = state;
    el.title = s.report.message || '';
    const q = $('#nav-queue-count');
    q.textContent = s.report.queue_open ? num(s.report.queue_open) : '';
    q.setAttribute('aria-label', s.report.queue_open + ' open queue items');
  }
  async function pollStatus() {
    try { setRunState(await api('/api/status')); } catch (e) { /* shown by the pages */ }
  }

  // ------------------------------------------------------------------------------------------
  // Overview

  const STATES = ['written', 'merged', 'queued', 'skipped', 'pending'];
  function stackedBar(c) {
    const total = Math.max(1, c.source, STATES.reduce((a, s) => a + (c[s] || 0), 0));
    return h('div', { class: 'bar', role: 'img', 'aria-label': STATES.map((s) => s + ' ' + (c[s] || 0)).join(', ') },
      STATES.map((s) => (c[s] ? h('span', { class: 's-' + s, style: null, 'data-w': (100 * c[s] / total).toFixed(2) }) : null)));
  }
  function sizeBars(root) {
    // Widths are set from script (the CSP allows no inline style attributes in markup we build).
    root.querySelectorAll('.bar span[data-w]').forEach((s) => { s.style.width = s.dataset.w + '%'; });
  }

  function renderOverview() {
    const body = h('div');
    put(main, h('div', { class: 'page-head' },
      h('div', null, h('h1', null, 'Overview'), h('p', { class: 'subtitle' }, 'Every source record ends written, merged, queued for a person, or skipped. Updates live while a run progresses.')),
      h('span', { class: 'muted', id: 'updated', 'aria-live': 'off' }, '')), body);
    async function load() {
      let s;
      try { s = await api('/api/status'); } catch (e) { put(clear(body), h('p', { class: 'error-text' }, e.message)); return; }
      setRunState(s);
      const r = s.report;
      const totals = { source: 0, written: 0, merged: 0, queued: 0, skipped: 0, pending: 0 };
      for (const c of Object.values(r.objects)) for (const k of Object.keys(totals)) totals[k] += c[k] || 0;
      clear(body);
      put(body, 
        h('div', { class: 'cards' },
          h('div', { class: 'card' }, h('div', { class: 'label' }, 'State'), h('div', { class: 'value' }, badge(r.state, 'badge-big'))),
          ['source', 'written', 'merged', 'queued', 'skipped', 'pending'].map((k) =>
            h('div', { class: 'card' }, h('div', { class: 'label' }, k), h('div', { class: 'value', 'data-total': k }, num(totals[k]))))),
        r.message ? h('div', { class: 'panel' }, h('strong', null, 'Why: '), r.message) : null,
        h('div', { class: 'panel' },
          h('h2', null, 'Per object'),
          h('table', { id: 'counts' },
            h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'object'),
              ['source', 'written', 'merged', 'queued', 'skipped', 'pending'].map((k) => h('th', { class: 'num', scope: 'col' }, k)),
              h('th', { scope: 'col' }, 'source = written + merged + queued + skipped'), h('th', { scope: 'col' }, 'progress'))),
            h('tbody', null, Object.entries(r.objects).map(([name, c]) => {
              const eq = s.equation[name];
              return h('tr', { 'data-object': name },
                h('th', { scope: 'row' }, name),
                ['source', 'written', 'merged', 'queued', 'skipped', 'pending'].map((k) => h('td', { class: 'num', 'data-col': k }, num(c[k]))),
                h('td', { class: 'mono' }, num(c.source) + ' = ' + num(c.written) + ' + ' + num(c.merged) + ' + ' + num(c.queued) + ' + ' + num(c.skipped) + ' ',
                  eq.holds ? h('span', { class: 'ok-text', 'aria-label': 'holds' }, '✓') : h('span', { class: 'error-text' }, '✗ ' + num(c.pending) + ' pending')),
                h('td', null, stackedBar(c)));
            }))),
          h('div', { class: 'legend', 'aria-hidden': 'true' }, STATES.map((st) => h('span', null, h('i', { class: 's-' + st }), st)))),
        h('div', { class: 'grid-2' },
          h('div', { class: 'panel' }, h('h2', null, 'Alerts'),
            s.alerts.length ? h('ul', null, s.alerts.map((a) => h('li', null, badge(a.kind || 'alert', 'badge-bad'), ' ', a.time || '', ' ', a.object || '', ' — ', a.message || ''))) :
              h('p', { class: 'muted' }, 'No alerts (pauses, halts and count mismatches show here).')),
          h('div', { class: 'panel' }, h('h2', null, 'Review'),
            h('p', null, 'Plan sign-off: ', s.signoff ? [badge('ok'), ' by ', s.signoff.reviewer, ' at ', s.signoff.at] : badge('open')),
            h('p', null, 'Open queue items: ', h('a', { href: '#/queue' }, num(r.queue_open))),
            s.job ? h('p', null, 'Last job: ', s.job.kind, ' ', badge(s.job.state), ' ', s.job.finished_at || s.job.started_at) : null)));
      sizeBars(body);
      const u = $('#updated');
      if (u) u.textContent = 'updated ' + new Date().toLocaleTimeString();
    }
    load();
    pageTimer = setInterval(load, 2000);
  }

  // ------------------------------------------------------------------------------------------
  // Plan

  function renderPlan() {
    const body = h('div', null, h('p', { class: 'muted' }, 'Reading the source and destination metadata…'));
    const refresh = h('button', { class: 'btn', type: 'button', onclick: () => load(true) }, 'Re-check plan');
    put(main, h('div', { class: 'page-head' },
      h('div', null, h('h1', null, 'Plan'), h('p', { class: 'subtitle' }, 'Coverage gaps found before anything is written, and the sign-off that run requires.')),
      refresh), body);
    async function load(force) {
      let p;
      try { p = await api('/api/plan' + (force ? '?refresh=1' : '')); } catch (e) { put(clear(body), h('p', { class: 'error-text' }, e.message)); return; }
      clear(body);
      const blocking = p.blocking || [];
      const approveBtn = h('button', { class: 'btn btn-primary', type: 'button', disabled: blocking.length > 0 }, 'Approve plan');
      approveBtn.addEventListener('click', async () => {
        const who = reviewer();
        if (!who) return;
        approveBtn.disabled = true;
        try { await api('/api/plan/approve', { reviewer: who }); toast('Plan signed off by ' + who); load(false); } catch (e) { fail(e); approveBtn.disabled = false; }
      });
      put(body, h('div', { class: 'panel' },
        h('h2', null, 'Sign-off'),
        p.approved ? h('p', null, badge('ok'), ' Signed off by ', h('strong', null, p.signoff.reviewer), ' at ', p.signoff.at, '.')
          : h('p', null, badge('open'), p.signoff ? ' The last sign-off (' + p.signoff.reviewer + ') was for another config or schema: sign off again.' : ' Not signed off yet.'),
        blocking.length ? h('div', null, h('p', { class: 'error-text' }, blocking.length + ' blocking gap(s): run refuses until they are fixed in the config.'),
          h('ul', null, blocking.map((b) => h('li', null, b)))) : h('p', { class: 'muted' }, 'No blocking gaps.'),
        h('div', { class: 'form-row' }, h('p', { class: 'muted' }, 'Signing as: ', reviewerInput.value.trim() || '(enter your name at the top)'), approveBtn),
        h('p', { class: 'muted mono' }, 'plan hash ' + p.hash)));
      const pr = p.projected || {};
      put(body, h('div', { class: 'cards' },
        h('div', { class: 'card' }, h('div', { class: 'label' }, 'source records'), h('div', { class: 'value' }, num(pr.records))),
        h('div', { class: 'card' }, h('div', { class: 'label' }, 'write calls'), h('div', { class: 'value' }, num(pr.write_calls))),
        h('div', { class: 'card' }, h('div', { class: 'label' }, 'duration under quota'), h('div', { class: 'value' }, num(pr.duration_seconds) + ' s')),
        h('div', { class: 'card' }, h('div', { class: 'label' }, 'unresolved owners'), h('div', { class: 'value' }, num((p.owners_unresolved || []).length)))));
      for (const [name, o] of Object.entries(p.objects)) {
        const list = (arr, empty) => (arr && arr.length ? h('ul', null, arr.map((x) => h('li', { class: 'mono' }, text(x)))) : h('p', { class: 'muted' }, empty));
        put(body, h('section', { class: 'panel', 'aria-label': 'object ' + name },
          h('h2', null, name, ' ', h('span', { class: 'muted' }, o.source_object + ' → ' + text(o.destination) + ' · ' + num(o.source_count) + ' records')),
          h('div', { class: 'grid-2' },
            h('div', null,
              h('h3', null, 'Untranslated values'),
              o.untranslated_values.length ? h('table', null,
                h('thead', null, h('tr', null, h('th', null, 'table'), h('th', null, 'source value'), h('th', { class: 'num' }, 'records'))),
                h('tbody', null, o.untranslated_values.map((u) => h('tr', null, h('td', null, u.table), h('td', { class: 'mono' }, u.value), h('td', { class: 'num' }, num(u.count))))))
                : h('p', { class: 'muted' }, 'Every value is translated.'),
              h('h3', null, 'Unresolved owners'),
              o.unresolved_owners.length ? h('table', null,
                h('thead', null, h('tr', null, h('th', null, 'owner'), h('th', { class: 'num' }, 'records'))),
                h('tbody', null, o.unresolved_owners.map((u) => h('tr', null, h('td', null, u.owner), h('td', { class: 'num' }, num(u.records))))))
                : h('p', { class: 'muted' }, 'Every owner resolves to a destination user.')),
            h('div', null,
              h('h3', null, 'Unmapped source fields'), list(o.unmapped_fields, 'None: every field is mapped or dropped.'),
              h('h3', null, 'Required destination fields not covered'), list(o.required_uncovered, 'None.'),
              h('h3', null, 'Read-only or unknown targets'), list((o.read_only_targets || []).concat(o.unknown_destination_fields || []), 'None.'),
              h('h3', null, 'Dedup keys'), h('p', { class: 'mono' }, text(o.dedup)),
              h('h3', null, 'Dropped on purpose'), h('p', { class: 'mono' }, (o.dropped_fields || []).join(', ') || '—')))));
      }
    }
    load(false);
  }

  // ------------------------------------------------------------------------------------------
  // Conflict queue

  const queueState = { status: '', reason: '', object: '', field: '', text: '', offset: 0, limit: 50, selected: '' };

  function renderQueue(params) {
    if (params.get('id')) queueState.selected = params.get('id');
    for (const k of ['reason', 'object', 'status']) if (params.has(k)) queueState[k] = params.get(k);
    const total = h('span', { class: 'muted', 'aria-live': 'polite' });
    const listBox = h('div');
    const detailBox = h('div', { class: 'panel detail', id: 'detail', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Select an item to see its field-level problems.'));
    const sel = (id, label, options) => h('div', { class: 'field' }, h('label', { for: id }, label),
      h('select', { id }, options.map(([v, t]) => h('option', { value: v }, t))));
    const statusSel = sel('f-status', 'Status', [['', 'open + fixed'], ['open', 'open'], ['fixed', 'fixed'], ['resolved', 'resolved'], ['skipped', 'skipped'], ['all', 'all']]);
    const reasonSel = sel('f-reason', 'Reason', [['', 'any reason']].concat(meta.reasons.map((r) => [r, r.replace(/_/g, ' ')])));
    const objectSel = sel('f-object', 'Object', [['', 'any object']].concat(meta.objects.map((o) => [o.name, o.name])));
    const fieldIn = h('div', { class: 'field' }, h('label', { for: 'f-field' }, 'Field with a problem'), h('input', { id: 'f-field', type: 'text', placeholder: 'e.g. dealstage' }));
    const textIn = h('div', { class: 'field' }, h('label', { for: 'f-text' }, 'Text'), h('input', { id: 'f-text', type: 'search', placeholder: 'name, value, id…' }));
    const reprocessBtn = h('button', { class: 'btn btn-primary', type: 'button', id: 'reprocess' }, 'Reprocess fixed items');
    const jobLine = h('span', { class: 'muted', id: 'job-line', 'aria-live': 'polite' });
    put(main, h('div', { class: 'page-head' },
      h('div', null, h('h1', null, 'Conflict queue'), h('p', { class: 'subtitle' }, 'Records that need a person: fix a value, skip with a note, then reprocess.')),
      h('div', { class: 'form-row' }, jobLine, reprocessBtn)),
    h('form', { class: 'panel filters', role: 'search', 'aria-label': 'Filter the queue', onsubmit: (e) => { e.preventDefault(); applyFilters(); } },
      statusSel, reasonSel, objectSel, fieldIn, textIn, h('button', { class: 'btn', type: 'submit' }, 'Filter')),
    h('div', { class: 'split' }, h('div', null, h('div', { class: 'panel' }, h('div', { class: 'page-head' }, h('h2', null, 'Items'), total), listBox)), detailBox));
    const els = { status: $('#f-status'), reason: $('#f-reason'), object: $('#f-object'), field: $('#f-field'), text: $('#f-text') };
    for (const [k, el] of Object.entries(els)) el.value = queueState[k];
    for (const k of ['status', 'reason', 'object']) els[k].addEventListener('change', applyFilters);
    let debounce = null;
    for (const k of ['field', 'text']) els[k].addEventListener('input', () => { clearTimeout(debounce); debounce = setTimeout(applyFilters, 300); });
    function applyFilters() {
      for (const [k, el] of Object.entries(els)) queueState[k] = el.value.trim();
      queueState.offset = 0;
      loadList();
    }

    reprocessBtn.addEventListener('click', async () => {
      reprocessBtn.disabled = true;
      try {
        const r = await api('/api/queue/reprocess', {});
        showJob(r.job);
        watchJob();
      } catch (e) {
        fail(e.code === 'locked' ? new Error('Locked: ' + e.message) : e);
        reprocessBtn.disabled = false;
      }
    });
    function showJob(job) {
      if (!job) { jobLine.textContent = ''; return; }
      put(clear(jobLine), job.kind + ' ', badge(job.state), job.report ? ' → ' + job.report.state : '');
      reprocessBtn.disabled = job.state === 'running';
    }
    let jobTimer = null;
    function watchJob() {
      clearInterval(jobTimer);
      jobTimer = setInterval(async () => {
        if (!document.body.contains(jobLine)) { clearInterval(jobTimer); return; }
        try {
          const r = await api('/api/job');
          showJob(r.job);
          if (!r.job || r.job.state !== 'running') {
            clearInterval(jobTimer);
            if (r.job && r.job.state === 'locked') toast('Locked: a run holds the migration lock. ' + (r.job.message || ''), true);
            else if (r.job && r.job.state === 'failed') toast('Reprocess failed: ' + (r.job.message || ''), true);
            else if (r.job) toast('Reprocess ' + r.job.state + ': ' + (r.job.report ? r.job.report.state : ''));
            loadList();
            if (queueState.selected) loadDetail(queueState.selected);
            pollStatus();
          }
        } catch (e) { clearInterval(jobTimer); fail(e); }
      }, 700);
    }
    api('/api/job').then((r) => { showJob(r.job); if (r.job && r.job.state === 'running') watchJob(); }).catch(() => {});

    function fillFacet(select, facet, allLabel) {
      const cur = select.value;
      for (const opt of select.options) {
        if (!opt.value) { opt.textContent = allLabel; continue; }
        const n = facet[opt.value] || 0;
        opt.textContent = opt.value.replace(/_/g, ' ') + ' (' + num(n) + ')';
      }
      select.value = cur;
    }

    async function loadList() {
      let r;
      try { r = await api('/api/queue?' + qs({ status: queueState.status, reason: queueState.reason, object: queueState.object, field: queueState.field, text: queueState.text, offset: queueState.offset, limit: queueState.limit })); } catch (e) { put(clear(listBox), h('p', { class: 'error-text' }, e.message)); return; }
      fillFacet(els.reason, r.facets.reason, 'any reason');
      fillFacet(els.object, r.facets.object, 'any object');
      const from = r.total ? r.offset + 1 : 0;
      const to = Math.min(r.offset + r.items.length, r.total);
      total.textContent = num(from) + '–' + num(to) + ' of ' + num(r.total);
      clear(listBox);
      if (!r.items.length) { put(listBox, h('p', { class: 'empty' }, 'No items match.')); return; }
      const table = h('table', { id: 'queue-table' },
        h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'c-item' }, 'item'), h('th', { scope: 'col' }, 'record'), h('th', { scope: 'col', class: 'c-reason' }, 'reason · problem'), h('th', { scope: 'col', class: 'c-badge' }, 'status'), h('th', { scope: 'col', class: 'c-badge' }, 'outcome'))),
        h('tbody', null, r.items.map((it) => {
          const p = it.problem || {};
          const open = h('button', { class: 'link-btn mono', type: 'button', onclick: () => selectItem(it.id) }, it.id);
          return h('tr', { 'data-id': it.id, class: it.id === queueState.selected ? 'selected' : null },
            h('td', null, open),
            h('td', { class: 'cell-clip', title: it.label }, it.label || '—'),
            h('td', { class: 'cell-clip', title: (p.field || '') + ' = ' + (p.value || '') },
              it.reason.replace(/_/g, ' '), h('br'), p.field ? h('span', { class: 'mono muted' }, p.field + (p.value ? ' = "' + p.value + '"' : '')) : ''),
            h('td', null, badge(it.status)),
            h('td', null, badge(it.outcome)));
        })));
      put(listBox, table);
      const prev = h('button', { class: 'btn btn-small', type: 'button', disabled: r.offset === 0, onclick: () => { queueState.offset = Math.max(0, r.offset - r.limit); loadList(); } }, '← Previous');
      const next = h('button', { class: 'btn btn-small', type: 'button', disabled: r.offset + r.items.length >= r.total, onclick: () => { queueState.offset = r.offset + r.limit; loadList(); } }, 'Next →');
      put(listBox, h('div', { class: 'pager' }, prev, h('span', { class: 'muted' }, 'page ' + num(Math.floor(r.offset / r.limit) + 1) + ' of ' + num(Math.max(1, Math.ceil(r.total / r.limit)))), next));
      put(listBox, bulkPanel(r.total));
    }

    function bulkPanel(count) {
      const hasFilter = queueState.reason || queueState.object || queueState.field || queueState.text;
      const details = h('details', { class: 'actions' }, h('summary', null, 'Act on all ' + num(count) + ' items of this filter'));
      if (!hasFilter) { put(details, h('p', { class: 'muted' }, 'Choose a reason, object, field or text first.')); return details; }
      const f = h('input', { id: 'bulk-field', type: 'text', placeholder: 'destination field' });
      const v = h('input', { id: 'bulk-value', type: 'text', placeholder: 'value' });
      const n = h('input', { id: 'bulk-note', type: 'text', placeholder: 'why (required to skip)' });
      const filter = { reason: queueState.reason, object: queueState.object, field: queueState.field, text: queueState.text, status: queueState.status };
      const fixAll = h('button', { class: 'btn btn-primary', type: 'button' }, 'Fix all');
      const skipAll = h('button', { class: 'btn btn-danger', type: 'button' }, 'Skip all');
      fixAll.addEventListener('click', async () => {
        const who = reviewer(); if (!who) return;
        if (!f.value.trim() && !n.value.trim()) { toast('Give a field and value (or a note explaining a config change).', true); return; }
        const set = {}; if (f.value.trim()) set[f.value.trim()] = v.value;
        try { const r = await api('/api/queue/fix', { filter, set, reviewer: who, note: n.value }); toast('Fixed ' + num(r.fixed) + ' item(s); reprocess to write them.'); loadList(); } catch (e) { fail(e); }
      });
      skipAll.addEventListener('click', async () => {
        const who = reviewer(); if (!who) return;
        if (!n.value.trim()) { toast('Skipping needs a note saying why.', true); n.focus(); return; }
        try { const r = await api('/api/queue/skip', { filter, reviewer: who, note: n.value }); toast('Skipped ' + num(r.skipped) + ' item(s).'); loadList(); } catch (e) { fail(e); }
      });
      put(details, h('div', { class: 'form-row' },
        h('div', { class: 'field' }, h('label', { for: 'bulk-field' }, 'Field'), f),
        h('div', { class: 'field' }, h('label', { for: 'bulk-value' }, 'Value'), v),
        h('div', { class: 'field' }, h('label', { for: 'bulk-note' }, 'Note'), n)),
      h('div', { class: 'form-row' }, fixAll, skipAll));
      return details;
    }

    function selectItem(id) {
      queueState.selected = id;
      listBox.querySelectorAll('tr[data-id]').forEach((tr) => tr.classList.toggle('selected', tr.dataset.id === id));
      loadDetail(id);
    }

    async function loadDetail(id) {
      let d;
      try { d = await api('/api/queue/item?' + qs({ id })); } catch (e) { put(clear(detailBox), h('p', { class: 'error-text' }, e.message)); return; }
      const item = d.queue;
      clear(detailBox);
      put(detailBox, 
        h('div', { class: 'page-head' },
          h('div', null, h('h2', { id: 'detail-title' }, d.label || item.id), h('p', { class: 'muted mono' }, item.id, ' · stage ', item.stage || '—')),
          h('div', null, badge(item.status), ' ', h('span', { id: 'detail-outcome' }, badge(d.outcome)))),
        h('p', null, 'Reason: ', h('strong', null, item.reason.replace(/_/g, ' ')), d.destination_id ? [' · destination id ', h('span', { class: 'mono' }, d.destination_id)] : ''),
        h('h3', null, 'Problems'),
        (item.problems || []).map((p) => h('div', { class: 'problem' },
          h('div', null, h('span', { class: 'mono' }, p.field || '(record)'), p.value ? [' = ', h('span', { class: 'mono' }, '"' + p.value + '"')] : '', p.rule ? h('span', { class: 'muted' }, '  rule ' + p.rule) : ''),
          h('div', { class: 'msg' }, p.message || ''),
          p.suggestion ? h('div', { class: 'muted' }, 'suggestion: ', h('span', { class: 'mono' }, text(p.suggestion))) : null)));
      // Fix form
      const fixFields = d.fix_fields || [];
      const fieldIn = h('input', { id: 'fix-field', type: 'text', list: 'fix-fields', value: fixFields[0] || '', autocomplete: 'off' });
      const valueIn = h('input', { id: 'fix-value', type: 'text', autocomplete: 'off' });
      const noteIn = h('input', { id: 'fix-note', type: 'text', placeholder: 'optional for a fix, required to skip' });
      const fixBtn = h('button', { class: 'btn btn-primary', type: 'button', id: 'fix-btn' }, 'Fix');
      const skipBtn = h('button', { class: 'btn btn-danger', type: 'button', id: 'skip-btn' }, 'Skip with note');
      const sugg = d.suggestions || [];
      put(detailBox, h('div', { class: 'actions' },
        h('h3', null, 'Correct this item'),
        sugg.length ? h('div', null, h('p', { class: 'muted' }, 'Suggestions (click to use):'),
          h('div', { class: 'chips' }, sugg.slice(0, 16).map((s) => h('button', { class: 'chip', type: 'button', title: s.why, onclick: () => { fieldIn.value = s.field; valueIn.value = text(s.value); valueIn.focus(); } }, s.field + ' = ' + text(s.value))))) : null,
        h('datalist', { id: 'fix-fields' }, fixFields.map((f) => h('option', { value: f }))),
        h('div', { class: 'form-row' },
          h('div', { class: 'field' }, h('label', { for: 'fix-field' }, 'Destination field'), fieldIn),
          h('div', { class: 'field' }, h('label', { for: 'fix-value' }, 'New value'), valueIn)),
        h('div', { class: 'form-row' }, h('div', { class: 'field' }, h('label', { for: 'fix-note' }, 'Note'), noteIn)),
        h('div', { class: 'form-row' }, fixBtn, skipBtn)));
      fixBtn.addEventListener('click', async () => {
        const who = reviewer(); if (!who) return;
        const set = {};
        if (fieldIn.value.trim()) set[fieldIn.value.trim()] = valueIn.value;
        try {
          const r = await api('/api/queue/fix', { id: item.id, set, reviewer: who, note: noteIn.value });
          toast(r.fixed ? 'Fixed ' + item.id + ' (reprocess to write it).' : 'Nothing fixed: the item is no longer open.');
          loadList(); loadDetail(item.id);
        } catch (e) { fail(e); }
      });
      skipBtn.addEventListener('click', async () => {
        const who = reviewer(); if (!who) return;
        if (!noteIn.value.trim()) { toast('Skipping needs a note saying why.', true); noteIn.focus(); return; }
        try { const r = await api('/api/queue/skip', { id: item.id, reviewer: who, note: noteIn.value }); toast('Skipped ' + r.skipped + ' item.'); loadList(); loadDetail(item.id); } catch (e) { fail(e); }
      });
      const mapped = d.timeline.find((s) => s.step === 'mapped');
      const dedup = d.timeline.find((s) => s.step === 'dedup');
      put(detailBox, 
        Object.keys(item.corrections || {}).length ? [h('h3', null, 'Corrections recorded'), kvTable(item.corrections)] : null,
        item.destination ? [h('h3', null, 'Destination values (merge)'), kvTable(item.destination)] : null,
        dedup && dedup.destination_before ? [h('h3', null, 'Destination before the merge'), kvTable(dedup.destination_before)] : null,
        h('h3', null, 'Source values'), kvTable(d.source || item.source),
        mapped ? [h('h3', null, 'Mapped (destination) values'), kvTable(mapped.fields)] : null,
        (item.history || []).length ? [h('h3', null, 'History'), h('ul', null, item.history.map((e) => h('li', null, badge(e.action === 'fix' ? 'fixed' : e.action === 'skip' ? 'skipped' : 'info'), ' ', e.at || '', ' ', e.reviewer ? 'by ' + e.reviewer : '', e.note ? ' — ' + e.note : '', e.set && Object.keys(e.set).length ? ' · set ' + JSON.stringify(e.set) : '')))] : null,
        h('p', null, h('a', { href: '#/audit?id=' + encodeURIComponent(item.id) }, 'Open in the audit log →')));
    }

    loadList();
    if (queueState.selected) loadDetail(queueState.selected);
  }

  // ------------------------------------------------------------------------------------------
  // Audit log

  const STEP_TITLES = {
    extracted: 'Extracted from the source', mapped: 'Mapped', dedup: 'Dedup decision', validated: 'Validated',
    queued: 'Queued', fixed: 'Corrected', skipped: 'Skipped', written: 'Written', merged: 'Merged',
  };
  function stepBody(s) {
    const parts = [];
    const line = (label, value) => (value === undefined || value === null || value === '' || (Array.isArray(value) && !value.length)) ? null :
      h('div', null, h('span', { class: 'muted' }, label + ': '), h('span', { class: 'mono' }, Array.isArray(value) ? value.map(text).join(', ') : text(value)));
    switch (s.step) {
      case 'extracted':
        parts.push(h('details', null, h('summary', null, 'source values'), kvTable(s.fields)));
        break;
      case 'mapped':
        parts.push(line('translations', s.translations), line('defaults', s.defaults), line('dropped', s.dropped),
          h('details', null, h('summary', null, 'mapped values'), kvTable(s.fields)));
        break;
      case 'dedup':
        parts.push(line('decision', s.decision), line('key', s.key), line('rule', s.rule), line('merged into', s.merged_into),
          line('group', s.members), line('destination id', s.destination_id));
        break;
      case 'validated':
        parts.push(s.ok ? h('div', { class: 'ok-text' }, 'passed the destination schema') : h('div', { class: 'error-text' }, (s.problems || []).map((p) => p.field + ': ' + p.message).join('; ')));
        break;
      case 'queued':
        parts.push(line('reason', s.reason), line('stage', s.stage), (s.problems || []).map((p) => h('div', { class: 'problem' }, h('span', { class: 'mono' }, p.field || '(record)'), ' ', p.message || '')));
        break;
      case 'fixed':
      case 'skipped':
        parts.push(line('reviewer', s.reviewer), line('note', s.note), s.set ? line('set', s.set) : null);
        break;
      case 'written':
      case 'merged':
        parts.push(line('destination id', s.destination_id), line('key', s.key), line('rule', s.rule), line('merged into', s.merged_into),
          line('translations', s.translations), line('defaults', s.defaults), line('retries', s.retries || null), line('resolved queue item', s.resolved_queue_item),
          s.sent ? h('details', null, h('summary', null, 'values sent'), kvTable(s.sent)) : null);
        break;
      default: {
        const rest = Object.assign({}, s);
        for (const k of ['step', 'action', 'time', 'seq', 'object', 'source_id']) delete rest[k];
        parts.push(h('details', null, h('summary', null, 'details'), kvTable(rest)));
      }
    }
    return parts;
  }
  const STEP_BADGE = { written: 'written', merged: 'merged', queued: 'queued', skipped: 'skipped', fixed: 'fixed' };

  function renderAudit(params) {
    const searchIn = h('input', { id: 'audit-q', type: 'search', placeholder: 'contacts/123, a source id, an email or a destination id', value: params.get('q') || params.get('id') || '' });
    const results = h('div', { id: 'audit-results', 'aria-live': 'polite' });
    const recordBox = h('div', { id: 'audit-record' });
    const eventsBox = h('div');
    put(main, h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Audit log'), h('p', { class: 'subtitle' }, 'What happened to each record: extracted, mapped, dedup decision, validated, written / merged / queued / skipped, corrections.'))),
      h('form', { class: 'panel', role: 'search', onsubmit: (e) => { e.preventDefault(); search(); } },
        h('div', { class: 'form-row' }, h('div', { class: 'field' }, h('label', { for: 'audit-q' }, 'Find a record by source ID, email or destination ID'), searchIn),
          h('button', { class: 'btn btn-primary', type: 'submit' }, 'Search')), results),
      recordBox,
      h('div', { class: 'panel' }, h('div', { class: 'page-head' }, h('h2', null, 'Latest events'),
        h('div', { class: 'form-row' },
          h('a', { class: 'btn btn-small', href: '/api/audit/export?format=jsonl&from=1', download: '' }, 'Export JSONL'),
          h('a', { class: 'btn btn-small', href: '/api/audit/export?format=csv&from=1', download: '' }, 'Export CSV'))), eventsBox));

    async function search() {
      const q = searchIn.value.trim();
      clear(results);
      clear(recordBox);
      if (!q) return;
      let r;
      try { r = await api('/api/search?' + qs({ q })); } catch (e) { put(results, h('p', { class: 'error-text' }, e.message)); return; }
      if (!r.matches.length) { put(results, h('p', { class: 'empty' }, 'No record matches “', q, '”.')); recordBox.replaceChildren(); return; }
      put(results, h('table', null,
        h('thead', null, h('tr', null, h('th', null, 'record'), h('th', null, 'name'), h('th', null, 'outcome'), h('th', null, 'destination id'), h('th', null, 'matched by'))),
        h('tbody', null, r.matches.map((m) => h('tr', null,
          h('td', null, h('button', { class: 'link-btn mono', type: 'button', onclick: () => showRecord(m.object + '/' + m.source_id) }, m.object + '/' + m.source_id)),
          h('td', { class: 'cell-clip' }, m.label || '—'), h('td', null, badge(m.outcome)), h('td', { class: 'mono' }, m.destination_id || '—'), h('td', { class: 'muted' }, m.matched_by.replace(/_/g, ' ')))))));
      if (r.matches.length === 1) showRecord(r.matches[0].object + '/' + r.matches[0].source_id);
    }

    async function showRecord(id) {
      let d;
      try { d = await api('/api/record?' + qs({ id })); } catch (e) { put(clear(recordBox), h('p', { class: 'error-text panel' }, e.message)); return; }
      clear(recordBox);
      put(recordBox, h('section', { class: 'panel', 'aria-label': 'timeline of ' + id },
        h('div', { class: 'page-head' },
          h('div', null, h('h2', { id: 'record-title' }, d.label || id), h('p', { class: 'muted mono' }, d.object + '/' + d.source_id, d.destination_id ? ' → ' + d.destination_id : '')),
          h('div', { class: 'form-row' }, h('span', { id: 'record-outcome' }, badge(d.outcome, 'badge-big')),
            h('a', { class: 'btn btn-small', href: '/api/audit/export?' + qs({ format: 'jsonl', id }), download: '' }, 'JSONL'),
            h('a', { class: 'btn btn-small', href: '/api/audit/export?' + qs({ format: 'csv', id }), download: '' }, 'CSV'))),
        h('ol', { class: 'timeline' }, d.timeline.map((s) => h('li', { 'data-step': s.step },
          h('div', { class: 'step-head' }, h('span', { class: 'step-title' }, STEP_TITLES[s.step] || s.step.replace(/_/g, ' ')),
            STEP_BADGE[s.step] ? badge(STEP_BADGE[s.step]) : null,
            s.derived && !s.time ? h('span', { class: 'step-time' }, 'from the state') : h('span', { class: 'step-time' }, (s.time || '') + (s.seq ? ' · #' + s.seq : ''))),
          h('div', { class: 'step-body' }, stepBody(s)))))));
    }

    let before = 0;
    async function loadEvents(b) {
      let r;
      try { r = await api('/api/audit/events?' + qs({ before: b || '', limit: 50 })); } catch (e) { put(clear(eventsBox), h('p', { class: 'error-text' }, e.message)); return; }
      before = b;
      clear(eventsBox);
      if (!r.events.length) { put(eventsBox, h('p', { class: 'empty' }, 'No events yet.')); return; }
      put(eventsBox, h('table', null,
        h('thead', null, h('tr', null, h('th', { class: 'num' }, '#'), h('th', null, 'time'), h('th', null, 'action'), h('th', null, 'record'), h('th', null, 'destination id'), h('th', null, 'detail'))),
        h('tbody', null, r.events.map((e) => h('tr', null,
          h('td', { class: 'num mono' }, e.seq), h('td', { class: 'mono' }, e.time || ''),
          h('td', null, badge(STEP_BADGE[e.action] || (e.action === 'alert' ? 'bad' : 'info')), ' ', e.action),
          h('td', null, e.object && e.source_id ? h('button', { class: 'link-btn mono', type: 'button', onclick: () => { searchIn.value = e.object + '/' + e.source_id; showRecord(e.object + '/' + e.source_id); } }, e.object + '/' + e.source_id) : '—'),
          h('td', { class: 'mono' }, e.destination_id || ''),
          h('td', { class: 'cell-clip' }, [e.reason, e.reviewer ? 'by ' + e.reviewer : '', e.note, e.key ? 'key ' + e.key : ''].filter(Boolean).join(' · ')))))));
      put(eventsBox, h('div', { class: 'pager' },
        h('button', { class: 'btn btn-small', type: 'button', disabled: !before, onclick: () => loadEvents(0) }, '↑ Latest'),
        h('span', { class: 'muted' }, num(r.total) + ' events'),
        h('button', { class: 'btn btn-small', type: 'button', disabled: !r.next_before, onclick: () => loadEvents(r.next_before) }, 'Older →')));
    }

    loadEvents(0);
    if (params.get('id')) showRecord(params.get('id'));
    else if (searchIn.value) search();
  }

  // ------------------------------------------------------------------------------------------
  // Reconciliation

  function renderReconcile() {
    const body = h('div');
    const runBtn = h('button', { class: 'btn btn-primary', type: 'button', id: 'reconcile-btn' }, 'Run reconcile (read-back)');
    put(main, h('div', { class: 'page-head' },
      h('div', null, h('h1', null, 'Reconciliation'), h('p', { class: 'subtitle' }, 'The accounting equation per object, and what reading every confirmed record back from the destination found.')),
      runBtn), body);
    let timer = null;
    runBtn.addEventListener('click', async () => {
      runBtn.disabled = true;
      try { await api('/api/reconcile', {}); } catch (e) { fail(e); runBtn.disabled = false; return; }
      clearInterval(timer);
      timer = setInterval(async () => {
        if (!document.body.contains(runBtn)) { clearInterval(timer); return; }
        const j = await api('/api/job').catch(() => null);
        if (!j || !j.job || j.job.state !== 'running') { clearInterval(timer); runBtn.disabled = false; load(); }
      }, 700);
      load();
    });
    async function load() {
      let rc, s;
      try { [rc, s] = await Promise.all([api('/api/reconcile'), api('/api/status')]); } catch (e) { put(clear(body), h('p', { class: 'error-text' }, e.message)); return; }
      setRunState(s);
      clear(body);
      const last = rc.report;
      const job = rc.job && rc.job.kind === 'reconcile' ? rc.job : null;
      put(body, h('div', { class: 'panel' }, h('h2', null, 'Accounting equation (now)'),
        h('table', null, h('thead', null, h('tr', null, h('th', null, 'object'), h('th', { class: 'num' }, 'source'), h('th', { class: 'num' }, 'accounted'), h('th', null, 'written + merged + queued + skipped'), h('th', null, 'holds'))),
          h('tbody', null, Object.entries(s.report.objects).map(([name, c]) => h('tr', null, h('th', { scope: 'row' }, name), h('td', { class: 'num' }, num(c.source)), h('td', { class: 'num' }, num(s.equation[name].accounted)),
            h('td', { class: 'mono' }, num(c.written) + ' + ' + num(c.merged) + ' + ' + num(c.queued) + ' + ' + num(c.skipped)),
            h('td', null, s.equation[name].holds ? badge('ok') : badge('pending')))))),
        h('p', { class: 'muted' }, 'Open queue items: ' + num(s.report.queue_open))));
      if (job && job.state === 'running') put(body, h('p', { class: 'panel' }, badge('running'), ' Reading back every confirmed record…'));
      if (!last) { put(body, h('p', { class: 'panel muted' }, 'No read-back from this console yet: run reconcile to compare every confirmed record with the destination.')); return; }
      const r = last.report;
      const disc = r.discrepancies || [];
      put(body, h('div', { class: 'panel' },
        h('div', { class: 'page-head' }, h('h2', null, 'Last read-back'), h('span', { class: 'muted' }, last.at)),
        h('p', null, badge(r.state, 'badge-big'), ' ', r.message || (r.complete ? 'Complete: equation holds, no open items, no read-back differences.' : '')),
        h('p', null, 'Read-back mismatches: ', h('strong', null, num(r.readback_mismatches))),
        disc.length ? h('table', { id: 'discrepancies' },
          h('thead', null, h('tr', null, h('th', null, 'record'), h('th', null, 'destination'), h('th', null, 'kind'), h('th', null, 'detail'))),
          h('tbody', null, disc.map((d) => h('tr', null,
            h('td', null, h('a', { class: 'mono', href: '#/audit?id=' + encodeURIComponent(d.object + '/' + d.source_id) }, d.object + '/' + d.source_id)),
            h('td', { class: 'mono' }, d.destination_id || (d.destination_ids || []).join(', ') || d.destination_object || ''),
            h('td', null, badge('bad'), ' ', d.kind),
            h('td', null, d.fields ? d.fields.map((f) => h('div', { class: 'mono' }, f.field + ': sent ' + text(f.sent) + ', found ' + text(f.found))) : (d.message || '')))))) :
          h('p', { class: 'ok-text' }, 'No discrepancies.')));
    }
    load();
  }

  // ------------------------------------------------------------------------------------------
  // Start

  async function start() {
    try {
      const s = await api('/api/session');
      csrf = s.csrf;
      meta = await api('/api/meta');
      $('#migration-name').textContent = meta.migration;
      $('#version').textContent = 'crmmigrate ' + meta.version;
      document.title = meta.migration + ' · crmmigrate console';
    } catch (e) {
      put(clear(main), h('div', { class: 'panel' }, h('h1', null, 'Cannot reach the console'), h('p', null, e.message)));
      return;
    }
    window.addEventListener('hashchange', route);
    route();
    // The overview loads the status itself; other pages fetch their data first, the badge after.
    const first = location.hash.replace(/^#\/?/, '');
    if (first && !first.startsWith('overview')) setTimeout(pollStatus, 1500);
    setInterval(pollStatus, 3000);
  }
  start();
})();
