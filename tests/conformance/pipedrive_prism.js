// conformance_pipedrive_prism: every Pipedrive-dialect endpoint through `prism proxy --errors` with the
// vendor's v1 and v2 OpenAPI files; every response must validate.
// Usage: node pipedrive_prism.js <crmmigrate> <spec-dir>
'use strict';

const path = require('path');
const { check, seed, startSandbox, startPrism, call, validated, main } = require('./harness');

const [cli, specDir] = process.argv.slice(2);
const TOKEN = 'conformance-pipedrive-token';
const auth = { headers: { 'x-api-token': TOKEN } };

main(async () => {
  const dir = seed(cli);
  const server = await startSandbox(cli, 'pipedrive', path.join(dir, 'ref', 'source'), TOKEN);
  const v2 = await startPrism(path.join(specDir, 'openapi-v2.yaml'), `${server}/api/v2`);
  const v1 = await startPrism(path.join(specDir, 'openapi-v1.yaml'), `${server}/v1`);

  // v2 lists with cursor paging, incremental reads, single records.
  for (const entity of ['persons', 'organizations', 'deals', 'activities']) {
    let cursor = '';
    let pages = 0;
    let first;
    do {
      const r = await validated(v2, 'GET', `/${entity}?limit=100&sort_by=id&sort_direction=asc${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, auth, 200);
      pages += 1;
      if (!first && r.body.data && r.body.data.length) first = r.body.data[0];
      cursor = r.body.additional_data && r.body.additional_data.next_cursor;
    } while (cursor && pages < 50);
    check(first !== undefined, `${entity}: no records served`);
    await validated(v2, 'GET', `/${entity}?updated_since=2020-01-01T00:00:00Z&sort_by=update_time&sort_direction=asc&limit=50`, auth, 200);
    if (first) {
      await validated(v2, 'GET', `/${entity}/${first.id}`, auth, 200);
      await validated(v2, 'GET', `/${entity}?ids=${first.id}`, auth, 200);
    }
    await validated(v2, 'GET', `/${entity}/987654321`, auth, 404);
  }
  await validated(v2, 'GET', '/persons/search?term=example&fields=email', auth, 200);
  await validated(v2, 'GET', '/organizations/search?term=zz-none&exact_match=true', auth, 200);
  await validated(v2, 'GET', '/deals/search?term=de', auth, 200);
  await validated(v2, 'GET', '/pipelines', auth, 200);
  await validated(v2, 'GET', '/stages', auth, 200);
  await validated(v2, 'GET', '/stages?pipeline_id=1', auth, 200);
  for (const f of ['personFields', 'organizationFields', 'dealFields', 'activityFields']) await validated(v2, 'GET', `/${f}`, auth, 200);

  // v2 writes.
  const org = await validated(v2, 'POST', '/organizations', { ...auth, body: { name: 'Conformance Org' } }, 200);
  const orgId = org.body.data && org.body.data.id;
  const person = await validated(v2, 'POST', '/persons', {
    ...auth,
    body: { name: 'Conformance Person', org_id: orgId, emails: [{ value: 'conf@example.com', primary: true, label: 'work' }] },
  }, 200);
  const personId = person.body.data && person.body.data.id;
  await validated(v2, 'PATCH', `/persons/${personId}`, { ...auth, body: { name: 'Conformance Person 2' } }, 200);
  const deal = await validated(v2, 'POST', '/deals', { ...auth, body: { title: 'Conformance deal', person_id: personId, pipeline_id: 1, stage_id: 1 } }, 200);
  await validated(v2, 'PATCH', `/deals/${deal.body.data && deal.body.data.id}`, { ...auth, body: { title: 'Conformance deal 2' } }, 200);
  await validated(v2, 'PATCH', `/organizations/${orgId}`, { ...auth, body: { name: 'Conformance Org 2' } }, 200);
  const act = await validated(v2, 'POST', '/activities', { ...auth, body: { subject: 'Call', type: 'call', person_id: personId } }, 200);
  await validated(v2, 'PATCH', `/activities/${act.body.data && act.body.data.id}`, { ...auth, body: { done: true } }, 200);
  await validated(v2, 'GET', `/persons/search?term=conf%40example.com&fields=email&exact_match=true`, auth, 200);

  // v1 notes, users, note fields.
  let start = 0;
  let more = true;
  let note;
  while (more && start < 5000) {
    const r = await validated(v1, 'GET', `/notes?start=${start}&limit=100&sort=id%20ASC`, auth, 200);
    const pag = r.body.additional_data && r.body.additional_data.pagination;
    if (!note && r.body.data && r.body.data.length) note = r.body.data[0];
    more = Boolean(pag && pag.more_items_in_collection);
    start = pag && pag.next_start ? pag.next_start : start + 100;
  }
  await validated(v1, 'GET', '/notes?start=0&limit=10&sort=update_time%20ASC&updated_since=2020-01-01T00:00:00Z', auth, 200);
  if (note) await validated(v1, 'GET', `/notes/${note.id}`, auth, 200);
  const created = await validated(v1, 'POST', '/notes', { ...auth, body: { content: 'conformance note', person_id: personId } }, [200, 201]);
  await validated(v1, 'PUT', `/notes/${created.body.data && created.body.data.id}`, { ...auth, body: { content: 'edited' } }, 200);
  await validated(v1, 'GET', '/users', auth, 200);
  await validated(v1, 'GET', '/users/me', auth, 200);
  await validated(v1, 'GET', '/noteFields', auth, 200);

  // Canary: Prism must reject a request outside the spec (sort_by enum), so validation is on.
  const canary = await call(v2, 'GET', '/persons?sort_by=nope', auth);
  check(canary.status === 422, `canary: Prism answered ${canary.status}, expected 422 (validation off?)`);
  // Errors in the platform's shape.
  await validated(v2, 'GET', '/persons', { headers: { 'x-api-token': 'wrong' } }, 401);
});
