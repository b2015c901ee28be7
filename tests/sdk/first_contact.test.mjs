// The first calls a Parse client makes, through the official JS SDK: /serverInfo and
// Parse.Schema.all() (which asks for `schemas/`, with a trailing slash).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Parse, createClasses, dropClasses, startServer, stopServer, uniqueName } from './harness.mjs';

const Thing = uniqueName('SdkFirst');

before(async () => {
  await startServer();
  await createClasses(Thing);
});

after(async () => {
  await dropClasses(Thing);
  await stopServer();
});

test('serverInfo answers the features with the master key', async () => {
  const controller = Parse.CoreManager.getRESTController();
  const info = await controller.request('GET', 'serverInfo', {}, { useMasterKey: true });
  assert.match(info.parseServerVersion, /^9\./);
  assert.equal(info.features.schemas.addClass, true);
  assert.equal(info.features.logs.level, true);
  await assert.rejects(controller.request('GET', 'serverInfo', {}, {}), (error) => {
    // 403 {"error": "Permission denied"}, as Parse Server answers (no code in the body).
    assert.equal(error.message, 'Permission denied');
    return true;
  });
});

test('Parse.Schema.all() lists the classes', async () => {
  const schemas = await Parse.Schema.all({ useMasterKey: true });
  const names = schemas.map((schema) => schema.className);
  assert.ok(names.includes(Thing), names.join(','));
  assert.ok(names.includes('_User'));
});

test('Parse.Analytics.track is accepted and reaches cloud code', async () => {
  const tag = uniqueName('tag');
  await Parse.Analytics.track('SdkOpened', { tag });
  if (!process.env.BASTION_CLOUD_APP) return; // the CloudEvent handler is Bastion's tests/cloud_app
  const query = new Parse.Query('CloudEvent');
  query.equalTo('dimensions.tag', tag);
  let found = [];
  for (let i = 0; i < 50 && found.length === 0; i += 1) {
    found = await query.find({ useMasterKey: true });
    if (found.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(found.length, 1);
  assert.equal(found[0].get('name'), 'SdkOpened');
});
