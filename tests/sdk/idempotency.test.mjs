// Idempotent requests through the official JS SDK: with `Parse.idempotency = true` the SDK sends an
// X-Parse-Request-Id with every POST and PUT (one per call, the same on its own retries); a server
// started with --idempotency-paths runs each id once and answers a repeat with Parse.Error 159.
//
// Bastion only: the harness starts it with the paths. (Parse Server needs `idempotencyOptions:
// { paths: ['functions/.*', 'classes/.*'] }` for the same answers; then set PARSE_IDEMPOTENCY=1.)
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, expectParseError, startServer, stopServer } from './harness.mjs';

const external = Boolean(process.env.PARSE_SERVER_URL) && !process.env.PARSE_IDEMPOTENCY;

before(async () => {
  if (external) return;
  await startServer({ cloud: 'tests/cloud_app', args: ['--idempotency-paths', 'functions/.*,classes/.*'] });
  Parse.idempotency = true;
});

after(async () => {
  Parse.idempotency = false;
  if (!external) await stopServer();
});

async function calls(marker) {
  return new Parse.Query('CloudCall').equalTo('marker', marker).count({ useMasterKey: true });
}

describe('Parse.idempotency', { skip: external && 'the external server has no idempotencyOptions' }, () => {
  test('each SDK call has an id of its own: saves, functions and queries all run', async () => {
    const marker = randomBytes(6).toString('hex');
    for (let i = 0; i < 3; i += 1) {
      assert.equal(await Parse.Cloud.run('recordCall', { marker }), 'recorded');
      const thing = new Parse.Object('CloudIdemSdk');
      thing.set('marker', marker);
      await thing.save(null, { useMasterKey: true });
      thing.increment('n');
      await thing.save(null, { useMasterKey: true });
    }
    assert.equal(await calls(marker), 3);
    // Queries go as POST with _method GET, carrying an id each: reads never take part.
    const query = new Parse.Query('CloudIdemSdk').equalTo('marker', marker);
    assert.equal((await query.find({ useMasterKey: true })).length, 3);
    assert.equal((await query.find({ useMasterKey: true })).length, 3);
  });

  test('a request sent again with its id is Parse.Error 159 and does not run', async () => {
    const marker = randomBytes(6).toString('hex');
    // As a retry of the SDK would: the same X-Parse-Request-Id twice.
    Parse.CoreManager.set('REQUEST_HEADERS', { 'X-Parse-Request-Id': `sdk-${marker}` });
    try {
      assert.equal(await Parse.Cloud.run('recordCall', { marker }), 'recorded');
      const err = await expectParseError(() => Parse.Cloud.run('recordCall', { marker }));
      assert.equal(err.code, 159);
      assert.equal(err.message, 'Duplicate request');
    } finally {
      Parse.CoreManager.set('REQUEST_HEADERS', {});
    }
    assert.equal(await calls(marker), 1);
  });
});
