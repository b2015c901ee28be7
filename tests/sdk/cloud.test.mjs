// Cloud code through the official JS SDK: Parse.Cloud.run, jobs, and triggers seen through
// ordinary saves, finds, deletes and log-ins.
//
// Against Bastion the server runs the Python cloud code of tests/cloud_app (the pytest runner's
// server does; a server this harness starts gets `--cloud tests/cloud_app`). Against Parse Server,
// start it with `cloud: tests/sdk/cloud/main.js`, which does the same in JavaScript.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, expectParseError, startServer, stopServer } from './harness.mjs';

const Score = 'CloudScore';

before(async () => {
  await startServer({ cloud: 'tests/cloud_app' });
  Parse.User.enableUnsafeCurrentUser();
  // The beforeFind trigger filters on `hidden`: the field must exist before the first query
  // (Parse Server on PostgreSQL answers nothing for a query naming a column it does not have).
  const schema = new Parse.Schema(Score);
  schema.addBoolean('hidden');
  await schema.save({ useMasterKey: true }).catch(async () => {
    await schema.update({ useMasterKey: true }).catch(() => {}); // exists already on a shared server
  });
});

after(async () => {
  await Parse.User.logOut().catch(() => {});
  await stopServer();
});

describe('Parse.Cloud.run', () => {
  test('calls a function with parameters and answers its result', async () => {
    assert.equal(await Parse.Cloud.run('hello', { name: 'SDK' }), 'Hello SDK');
    assert.equal(await Parse.Cloud.run('hello'), 'Hello world');
  });

  test('dates and pointers go in decoded, objects and dates come back decoded', async () => {
    const when = new Date('2020-01-01T00:00:00.000Z');
    const pointer = Parse.Object.fromJSON({ __type: 'Pointer', className: 'CloudThing', objectId: 'abc123' });
    const result = await Parse.Cloud.run('echoTypes', { when, pointer: pointer.toPointer() });
    assert.equal(result.whenIsDatetime, true);
    assert.ok(result.when instanceof Date);
    assert.equal(result.when.toISOString(), when.toISOString());
    assert.equal(result.pointerClass, 'CloudThing');
    assert.equal(result.pointerId, 'abc123');
    assert.ok(result.object instanceof Parse.Object);
    assert.equal(result.object.className, 'CloudThing');
    assert.equal(result.object.get('a'), 1);
    assert.equal(result.object.id, 'thing1');
    assert.ok(result.now instanceof Date);
  });

  test('a cloud error arrives as that Parse.Error', async () => {
    const err = await expectParseError(() => Parse.Cloud.run('fail'));
    assert.equal(err.code, 141);
    assert.equal(err.message, 'custom failure');
  });

  test('a function returning nothing resolves to undefined, one returning None to null', async () => {
    assert.equal(await Parse.Cloud.run('noReturn'), undefined);
    assert.equal(await Parse.Cloud.run('nothing'), null);
  });

  test('a plain exception arrives as 141 with its message', async () => {
    const err = await expectParseError(() => Parse.Cloud.run('plainError'));
    assert.equal(err.code, 141);
    assert.equal(err.message, 'plain message');
  });

  test('an unknown function is error 141', async () => {
    const err = await expectParseError(() => Parse.Cloud.run('noSuchFunction'));
    assert.equal(err.code, 141);
    assert.equal(err.message, 'Invalid function: "noSuchFunction"');
  });

  test('validators: login required, then the user is the caller', async () => {
    await Parse.User.logOut().catch(() => {});
    const err = await expectParseError(() => Parse.Cloud.run('needsUser'));
    assert.equal(err.code, 142);
    assert.equal(err.message, 'Validation failed. Please login to continue.');
    const user = new Parse.User();
    user.set('username', `sdkcloud_${randomBytes(4).toString('hex')}`);
    user.set('password', 'pw-1234');
    await user.signUp();
    assert.equal(await Parse.Cloud.run('needsUser'), user.id);
    await Parse.User.logOut();
  });

  test('the master key passes a require_master validator', async () => {
    const err = await expectParseError(() => Parse.Cloud.run('needsMaster'));
    assert.equal(err.code, 142);
    assert.equal(await Parse.Cloud.run('needsMaster', {}, { useMasterKey: true }), 'ok');
  });
});

describe('triggers seen through the SDK', () => {
  test('beforeSave changes reach the saved object and the server', async () => {
    const score = new Parse.Object(Score);
    score.set('score', 3);
    score.set('name', 'shout');
    await score.save();
    assert.equal(score.get('name'), 'SHOUT'); // the answer carried the trigger's change
    assert.equal(score.get('checked'), true);
    const fetched = await new Parse.Query(Score).get(score.id);
    assert.equal(fetched.get('name'), 'SHOUT');
    assert.equal(fetched.get('decorated'), true); // afterFind
  });

  test('beforeSave sees the original on update, and operations merge', async () => {
    const score = new Parse.Object(Score);
    score.set('score', 3);
    score.set('bumps', 1);
    await score.save();
    score.set('score', 5);
    score.set('bump', true);
    score.increment('bumps', 2);
    await score.save();
    assert.equal(score.get('sawOriginal'), 3);
    assert.equal(score.get('bumps'), 13);
  });

  test('a beforeSave refusal rejects the save', async () => {
    const score = new Parse.Object(Score);
    score.set('score', -1);
    const err = await expectParseError(() => score.save());
    assert.equal(err.code, 142);
    assert.equal(err.message, 'score must be >= 0');
    assert.equal(score.id, undefined);
  });

  test('beforeFind narrows queries', async () => {
    const marker = randomBytes(4).toString('hex');
    const shown = new Parse.Object(Score);
    shown.set({ score: 1, marker });
    const hidden = new Parse.Object(Score);
    hidden.set({ score: 1, marker, hidden: true });
    await Parse.Object.saveAll([shown, hidden]);
    const results = await new Parse.Query(Score).equalTo('marker', marker).find();
    assert.deepEqual(results.map((o) => o.id), [shown.id]);
  });

  test('beforeDelete can refuse a destroy', async () => {
    const kept = new Parse.Object(Score);
    kept.set({ score: 1, protected: true });
    await kept.save();
    const err = await expectParseError(() => kept.destroy());
    assert.equal(err.code, 119);
    assert.equal(err.message, 'this score is protected');
    const plain = new Parse.Object(Score);
    plain.set({ score: 1 });
    await plain.save();
    await plain.destroy();
    const gone = await expectParseError(() => new Parse.Query(Score).get(plain.id));
    assert.equal(gone.code, 101);
  });
});

describe('log-in triggers seen through the SDK', () => {
  test('a beforeLogin refusal rejects Parse.User.logIn, others log in', async () => {
    const blocked = `cloudblocked_${randomBytes(4).toString('hex')}`;
    const user = new Parse.User();
    user.set({ username: blocked, password: 'pw-1234' });
    await user.signUp(); // sign-up is no log-in: the trigger does not run
    await Parse.User.logOut();
    const err = await expectParseError(() => Parse.User.logIn(blocked, 'pw-1234'));
    assert.equal(err.code, 119);
    assert.equal(err.message, 'Access denied, you have been banned.');
    assert.equal(Parse.User.current(), null);
    const fine = `cloudlogin_${randomBytes(4).toString('hex')}`;
    await Parse.User.signUp(fine, 'pw-1234');
    await Parse.User.logOut();
    const loggedIn = await Parse.User.logIn(fine, 'pw-1234');
    assert.equal(loggedIn.get('username'), fine);
    await Parse.User.logOut();
  });
});

describe('jobs through the SDK', () => {
  test('Parse.Cloud.startJob and Parse.Cloud.getJobStatus', async () => {
    const jobId = await Parse.Cloud.startJob('jobEcho', { n: 7 });
    assert.equal(typeof jobId, 'string');
    let status;
    for (let i = 0; i < 100; i += 1) {
      status = await Parse.Cloud.getJobStatus(jobId);
      if (status.get('status') !== 'running') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status.get('jobName'), 'jobEcho');
    assert.equal(status.get('status'), 'succeeded');
    assert.equal(status.get('message'), 'done 7');
    assert.ok(status.get('finishedAt') instanceof Date);
  });

  test('an unknown job is error 141', async () => {
    const err = await expectParseError(() => Parse.Cloud.startJob('noSuchJob', {}));
    assert.equal(err.code, 141);
    assert.equal(err.message, 'Invalid job.');
  });
});
