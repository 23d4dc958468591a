// conformance_hubspot_client: the official @hubspot/api-client against the HubSpot dialect: create,
// read, update, search and batch-upsert contacts, asserting the results.
// Usage: node hubspot_client.js <crmmigrate>
'use strict';

const path = require('path');
const hubspot = require('@hubspot/api-client');
const { check, seed, startSandbox, main } = require('./harness');

const [cli] = process.argv.slice(2);
const TOKEN = 'conformance-hubspot-client-token';

main(async () => {
  const dir = seed(cli);
  const server = await startSandbox(cli, 'hubspot', path.join(dir, 'ref', 'destination'), TOKEN);
  const client = new hubspot.Client({ accessToken: TOKEN, basePath: server, numberOfApiCallRetries: 0 });

  const created = await client.crm.contacts.basicApi.create({
    properties: { email: 'client1@example.com', firstname: 'Client', crm_source_id: 'client-1' },
    associations: [],
  });
  check(/^\d+$/.test(created.id), `create: id ${created.id}`);
  check(created.properties.email === 'client1@example.com', 'create: email echoed');
  check(created.createdAt instanceof Date && !Number.isNaN(created.createdAt.getTime()), 'create: createdAt is a date');

  const read = await client.crm.contacts.basicApi.getById(created.id, ['email', 'firstname', 'crm_source_id']);
  check(read.properties.firstname === 'Client', 'read: firstname');
  check(read.properties.crm_source_id === 'client-1', 'read: crm_source_id');
  const byKey = await client.crm.contacts.basicApi.getById('client-1', ['email'], undefined, undefined, false, 'crm_source_id');
  check(byKey.id === created.id, 'read by idProperty');

  const updated = await client.crm.contacts.basicApi.update(created.id, { properties: { lastname: 'Updated' } });
  check(updated.properties.lastname === 'Updated', 'update: lastname');

  let conflict;
  try {
    await client.crm.contacts.basicApi.create({ properties: { email: 'CLIENT1@example.com' }, associations: [] });
  } catch (e) {
    conflict = e;
  }
  check(conflict && conflict.code === 409, `duplicate email: 409 (got ${conflict && conflict.code})`);
  check(conflict && JSON.stringify(conflict.body || {}).includes(`Existing ID: ${created.id}`), 'duplicate: existing id in the message');

  const inputs = [];
  for (let i = 0; i < 100; i += 1) {
    inputs.push({ idProperty: 'crm_source_id', id: `client-b-${i}`, properties: { email: `clientb${i}@example.com`, firstname: `B${i}` } });
  }
  const up1 = await client.crm.contacts.batchApi.upsert({ inputs });
  check(up1.status === 'COMPLETE', 'upsert: COMPLETE');
  check(up1.results.length === 100, `upsert: 100 results (got ${up1.results.length})`);
  check(up1.results.every((r) => r._new === true || r['new'] === true), 'upsert: all new');
  inputs[0].properties.firstname = 'Changed';
  const up2 = await client.crm.contacts.batchApi.upsert({ inputs });
  check(up2.results.every((r) => r._new === false || r['new'] === false), 'upsert again: none new');
  const changed = up2.results.find((r) => r.properties.crm_source_id === 'client-b-0');
  check(changed && changed.properties.firstname === 'Changed', 'upsert again: property updated');

  const batchRead = await client.crm.contacts.batchApi.read({
    properties: ['email'], idProperty: 'crm_source_id', inputs: [{ id: 'client-b-5' }, { id: 'client-b-6' }], propertiesWithHistory: [],
  });
  check(batchRead.results.length === 2, 'batch read: 2 results');

  const search = await client.crm.contacts.searchApi.doSearch({
    filterGroups: [{ filters: [{ propertyName: 'email', operator: 'EQ', value: 'clientb7@example.com' }] }],
    properties: ['email', 'firstname'], limit: 10, after: '0', sorts: [],
  });
  check(search.total === 1, `search: total 1 (got ${search.total})`);
  check(search.results[0] && search.results[0].properties.firstname === 'B7', 'search: firstname');

  const page = await client.crm.contacts.basicApi.getPage(100, undefined, ['email']);
  check(page.results.length === 100, `list: 100 results (got ${page.results.length})`);
  check(page.paging && page.paging.next && page.paging.next.after, 'list: paging.next.after');

  const owners = await client.crm.owners.ownersApi.getPage(undefined, undefined, 100);
  check(owners.results.length > 0, 'owners listed');
  const pipelines = await client.crm.pipelines.pipelinesApi.getAll('deals');
  check(pipelines.results.some((p) => p.id === 'default'), 'deal pipelines');
});
