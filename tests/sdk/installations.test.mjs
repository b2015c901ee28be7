// Installations through the official JS SDK (Parse.Installation), as Parse Server 9 answers them.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, expectParseError, rest, startServer, stopServer } from './harness.mjs';

const hex = (n = 6) => randomBytes(n).toString('hex');

before(async () => {
  await startServer();
  Parse.User.enableUnsafeCurrentUser();
});

after(async () => {
  await Parse.User.logOut().catch(() => {});
  await stopServer();
});

describe('Parse.Installation', () => {
  test('the current installation saves once and updates afterwards', async () => {
    const current = await Parse.Installation.currentInstallation();
    assert.equal(current.deviceType, 'web');
    const installationId = await Parse.CoreManager.getInstallationController().currentInstallationId();
    assert.equal(current.installationId, installationId);
    current.set('channels', ['news']);
    await current.save();
    assert.ok(current.id);
    const firstId = current.id;
    current.addUnique('channels', 'sports');
    current.set('badge', 3);
    await current.save();
    assert.equal(current.id, firstId);
    // A client may get an installation by id (fetch), though not query for it (below).
    const fetched = await new Parse.Installation({ objectId: firstId }).fetch();
    // Sorted: Parse Server on PostgreSQL does not keep AddUnique's order.
    assert.deepEqual([...fetched.get('channels')].sort(), ['news', 'sports']);
    assert.equal(fetched.get('badge'), 3);
  });

  test('an installationId is stored lower-cased and a second create updates the first', async () => {
    const given = `SDK-${hex()}`.toUpperCase();
    const first = new Parse.Installation({ deviceType: 'android', installationId: given, appName: 'one' });
    await first.save();
    const again = new Parse.Installation({ deviceType: 'android', installationId: given.toLowerCase(), appName: 'two' });
    await again.save();
    const found = await new Parse.Query(Parse.Installation)
      .equalTo('installationId', given.toLowerCase())
      .find({ useMasterKey: true });
    assert.equal(found.length, 1);
    assert.equal(found[0].id, first.id);
    assert.equal(found[0].get('appName'), 'two');
  });

  test('deviceType may not change; ids are required', async () => {
    const inst = new Parse.Installation({ deviceType: 'ios', installationId: `sdk-${hex()}` });
    await inst.save();
    inst.set('deviceType', 'android');
    const changed = await expectParseError(() => inst.save());
    assert.equal(changed.code, 136);
    assert.equal(changed.message, 'deviceType may not be changed in this operation');
    const answer = await rest('POST', '/installations', { deviceType: 'ios' });
    // The SDK sends no installation header on raw requests: no id at all.
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, 135);
  });

  test('clients may not query or delete installations; the master key may', async () => {
    // An installationId of its own: else the SDK's installation id (sent with every request)
    // would make this save update the current installation, as Parse Server matches by it.
    const inst = new Parse.Installation({ deviceType: 'web', installationId: `sdk-${hex()}`, deviceToken: `tok-${hex()}` });
    await inst.save();
    assert.ok(inst.id);
    const find = await expectParseError(() => new Parse.Query(Parse.Installation).find());
    assert.equal(find.message, 'Permission denied');
    // The SDK's get is a query too.
    const get = await expectParseError(() => new Parse.Query(Parse.Installation).get(inst.id));
    assert.equal(get.code, Parse.Error.OPERATION_FORBIDDEN);
    assert.equal(find.code, Parse.Error.OPERATION_FORBIDDEN);
    const count = await expectParseError(() => new Parse.Query(Parse.Installation).count());
    assert.equal(count.code, Parse.Error.OPERATION_FORBIDDEN);
    const destroy = await expectParseError(() => inst.destroy());
    assert.equal(destroy.code, Parse.Error.OPERATION_FORBIDDEN);
    const all = await new Parse.Query(Parse.Installation).equalTo('objectId', inst.id).find({ useMasterKey: true });
    assert.equal(all.length, 1);
    await inst.destroy({ useMasterKey: true });
    const gone = await expectParseError(() => new Parse.Query(Parse.Installation).get(inst.id, { useMasterKey: true }));
    assert.equal(gone.code, Parse.Error.OBJECT_NOT_FOUND);
  });

  test('sessions carry the SDK installation id', async () => {
    const installationId = await Parse.CoreManager.getInstallationController().currentInstallationId();
    const user = new Parse.User({ username: `inst_${hex(4)}`, password: 'pw-1234' });
    await user.signUp();
    const session = await Parse.Session.current();
    assert.equal(session.get('installationId'), installationId);
    // Logging in again on the same installation ends the sign-up's session.
    const first = user.getSessionToken();
    await Parse.User.logOut();
    await Parse.User.logIn(user.get('username'), 'pw-1234');
    const sessions = await new Parse.Query(Parse.Session).equalTo('user', user).find({ useMasterKey: true });
    assert.equal(sessions.length, 1);
    assert.notEqual(sessions[0].getSessionToken(), first);
  });
});
