// conformance_hubspot_prism: every HubSpot-dialect endpoint through `prism proxy --errors` with our
// OpenAPI fragment (hubspot-crm-fragment.yaml); every response must validate.
// Usage: node hubspot_prism.js <crmmigrate>
'use strict';

const path = require('path');
const { check, seed, startSandbox, startPrism, call, validated, main } = require('./harness');

const [cli] = process.argv.slice(2);
const TOKEN = 'conformance-hubspot-token';
const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
const OBJECTS = ['companies', 'contacts', 'deals', 'notes', 'calls', 'meetings', 'tasks', 'emails'];

main(async () => {
  const dir = seed(cli);
  const server = await startSandbox(cli, 'hubspot', path.join(dir, 'ref', 'destination'), TOKEN);
  const hs = await startPrism(path.join(__dirname, 'hubspot-crm-fragment.yaml'), server);

  await validated(hs, 'GET', '/crm/v3/owners?limit=100', auth, 200);
  await validated(hs, 'GET', '/crm/v3/pipelines/deals', auth, 200);
  for (const o of OBJECTS) {
    await validated(hs, 'GET', `/crm/v3/properties/${o}`, auth, 200);
    await validated(hs, 'GET', `/crm/v3/objects/${o}?limit=100&archived=false`, auth, 200);
    await validated(hs, 'POST', `/crm/v3/objects/${o}/search`, { ...auth, body: { limit: 1 } }, 200);
  }
  await validated(hs, 'GET', '/crm/v3/properties/contacts/email', auth, 200);

  const company = await validated(hs, 'POST', '/crm/v3/objects/companies', { ...auth, body: { properties: { name: 'Conf Co', crm_source_id: 'conf-co-1' } } }, 201);
  const contact = await validated(hs, 'POST', '/crm/v3/objects/contacts', { ...auth, body: { properties: { email: 'conf1@example.com', firstname: 'Conf', crm_source_id: 'conf-1' } } }, 201);
  const cid = contact.body.id;
  await validated(hs, 'GET', `/crm/v3/objects/contacts/${cid}?properties=email,firstname`, auth, 200);
  await validated(hs, 'GET', '/crm/v3/objects/contacts/conf-1?idProperty=crm_source_id', auth, 200);
  await validated(hs, 'GET', '/crm/v3/objects/contacts/999999999', auth, 404);
  await validated(hs, 'PATCH', `/crm/v3/objects/contacts/${cid}`, { ...auth, body: { properties: { lastname: 'Formance' } } }, 200);
  await validated(hs, 'POST', '/crm/v3/objects/contacts', { ...auth, body: { properties: { email: 'conf1@example.com' } } }, 409);
  await validated(hs, 'POST', '/crm/v3/objects/contacts', { ...auth, body: { properties: { lifecyclestage: 'nope' } } }, 400);

  const inputs = [];
  for (let i = 0; i < 100; i += 1) inputs.push({ idProperty: 'crm_source_id', id: `conf-b-${i}`, properties: { email: `confb${i}@example.com` } });
  await validated(hs, 'POST', '/crm/v3/objects/contacts/batch/upsert', { ...auth, body: { inputs } }, 200);
  await validated(hs, 'POST', '/crm/v3/objects/contacts/batch/upsert', {
    ...auth,
    body: { inputs: [{ idProperty: 'crm_source_id', id: 'conf-b-x', properties: { lifecyclestage: 'bad' } }, inputs[0]] },
  }, 207);
  await validated(hs, 'POST', '/crm/v3/objects/contacts/batch/read', {
    ...auth, body: { properties: ['email'], idProperty: 'crm_source_id', inputs: [{ id: 'conf-b-1' }, { id: 'missing' }] },
  }, 207);
  await validated(hs, 'POST', '/crm/v3/objects/contacts/batch/read', { ...auth, body: { properties: ['email'], inputs: [{ id: cid }] } }, 200);
  await validated(hs, 'POST', '/crm/v3/objects/contacts/batch/update', { ...auth, body: { inputs: [{ id: cid, properties: { firstname: 'B' } }] } }, 200);
  await validated(hs, 'POST', '/crm/v3/objects/companies/batch/create', { ...auth, body: { inputs: [{ properties: { name: 'Batch Co', crm_source_id: 'conf-co-2' } }] } }, 201);
  await validated(hs, 'POST', '/crm/v3/objects/contacts/search', {
    ...auth,
    body: {
      filterGroups: [{ filters: [{ propertyName: 'lastmodifieddate', operator: 'GTE', value: '0' }] }],
      sorts: [{ propertyName: 'lastmodifieddate', direction: 'ASCENDING' }],
      properties: ['email'], limit: 100,
    },
  }, 200);
  await validated(hs, 'POST', '/crm/v3/objects/deals/search', {
    ...auth, body: { filterGroups: [{ filters: [{ propertyName: 'hs_lastmodifieddate', operator: 'GT', value: '0' }] }], limit: 10, after: '10' },
  }, 200);
  await validated(hs, 'POST', '/crm/v3/objects/contacts/search', { ...auth, body: { limit: 100, after: '9950' } }, 400);

  const co = company.body.id;
  await validated(hs, 'PUT', `/crm/v4/objects/contacts/${cid}/associations/default/companies/${co}`, auth, 200);
  await validated(hs, 'POST', '/crm/v4/associations/contacts/companies/batch/read', { ...auth, body: { inputs: [{ id: cid }] } }, 200);
  await validated(hs, 'POST', '/crm/v4/associations/deals/contacts/batch/associate/default', {
    ...auth, body: { inputs: [{ from: { id: '999999999' }, to: { id: cid } }] },
  }, 207);
  await validated(hs, 'POST', '/crm/v4/associations/contacts/companies/batch/create', {
    ...auth, body: { inputs: [{ from: { id: cid }, to: { id: co }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }] },
  }, 201);
  // Canary: Prism must reject a request outside the fragment (limit > 200), so validation is on.
  const canary = await call(hs, 'POST', '/crm/v3/objects/contacts/search', { ...auth, body: { limit: 500 } });
  check(canary.status === 422, `canary: Prism answered ${canary.status}, expected 422 (validation off?)`);
  const unauth = await validated(hs, 'GET', '/crm/v3/owners', { headers: { authorization: 'Bearer wrong' } }, 401);
  check(unauth.body && unauth.body.category === 'INVALID_AUTHENTICATION', '401 category');
});
