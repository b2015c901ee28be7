// LiveQuery through the Parse JS SDK's client: `query.subscribe()` on the SDK's default
// LiveQuery client (it sends the master key the harness sets, which Parse Server's LiveQuery
// ignores unless its keyPairs name one; these tests only subscribe it to public objects), and
// `new Parse.LiveQueryClient(...)` without the master key where access control matters.
//
// Negative checks ("this subscriber gets nothing") never rely on a sleep alone: the test
// then makes a write the subscriber may see, and the next event it receives must be that
// one (events on one socket arrive in the order of the writes).
//
// Against an external server (PARSE_SERVER_URL) the server must run LiveQuery for these
// classes: the names are `LiveItem_<hex>` etc. and `_User` (Parse Server: liveQuery.classNames
// [".*"]); see README.md. The restart test only runs when the harness started the server.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  canRestartServer,
  createClasses,
  dropClasses,
  liveQueryURL,
  rest,
  restartServer,
  startServer,
  stopServer,
  uniqueName,
} from './harness.mjs';

const EVENT_TIMEOUT_MS = 10_000;
const QUIET_MS = 700;
const EVENTS = ['create', 'enter', 'update', 'leave', 'delete'];

let Parse;
let appId;
let jsKey;
const ITEMS = uniqueName('LiveItem');
const FIELDS = uniqueName('LiveFields');
const WATCHED = uniqueName('LiveWatch');
const UNSUB = uniqueName('LiveUnsub');
const SECRET = uniqueName('LiveSecret');
const RESTART = uniqueName('LiveRestart');
const clients = []; // LiveQueryClients opened by the tests, closed in after()

/**
 * Records a subscription's events in arrival order.
 * `next()` resolves with the next one: { op, object, original } (original: a Parse.Object
 * for update/enter/leave when the server sent one, else undefined).
 */
function record(subscription) {
  const queue = [];
  const waiters = [];
  for (const op of EVENTS) {
    subscription.on(op, (object, second) => {
      const original = second instanceof Parse.Object ? second : undefined;
      const event = { op, object, original };
      const waiter = waiters.shift();
      if (waiter) waiter.resolve(event);
      else queue.push(event);
    });
  }
  return {
    queue,
    next(timeoutMs = EVENT_TIMEOUT_MS) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const waiter = { resolve: (e) => { clearTimeout(timer); resolve(e); } };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no LiveQuery event within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    /** Fails if an event arrives within `ms`. */
    async none(ms = QUIET_MS) {
      await new Promise((r) => setTimeout(r, ms));
      assert.deepEqual(queue.map((e) => `${e.op} ${e.object.id}`), [], 'unexpected LiveQuery events');
    },
  };
}

async function expectEvent(rec, op, id) {
  const event = await rec.next();
  assert.equal(event.op, op, `expected ${op} of ${id}, got ${event.op} of ${event.object.id}`);
  assert.equal(event.object.id, id);
  return event;
}

/** A LiveQuery client of its own, without the master key (so ACLs apply), opened. */
async function openClient(sessionToken) {
  const client = new Parse.LiveQueryClient({
    applicationId: appId,
    serverURL: liveQueryURL(),
    javascriptKey: jsKey,
    sessionToken,
  });
  clients.push(client);
  client.on('error', () => {});
  client.open();
  return client;
}

async function subscribeWith(client, query, sessionToken) {
  const subscription = client.subscribe(query, sessionToken);
  await subscription.subscribePromise;
  return subscription;
}

async function signUp(name) {
  const res = await rest('POST', '/users', { username: name, password: `pw-${name}` });
  assert.equal(res.status, 201, res.text);
  return { id: res.body.objectId, sessionToken: res.body.sessionToken };
}

before(async () => {
  ({ Parse, appId, jsKey } = await startServer());
  await createClasses(ITEMS, FIELDS, WATCHED, UNSUB, SECRET, RESTART);
});

after(async () => {
  // Every client is closed and its pending reconnect timer cleared (close() leaves a timer set by
  // a drop just before it; a live timer keeps this test file's process from ending).
  const all = [...clients];
  try {
    all.push(await Parse.CoreManager.getLiveQueryController().getDefaultLiveQueryClient());
  } catch {
    /* no default client was made */
  }
  for (const client of all) {
    await client.close().catch(() => {});
    if (client.reconnectHandle) clearTimeout(client.reconnectHandle);
  }
  await Parse.LiveQuery.close().catch(() => {});
  await dropClasses(ITEMS, FIELDS, WATCHED, UNSUB, SECRET, RESTART);
  await stopServer();
});

test('query.subscribe(): create, update, leave, enter and delete, with original', async () => {
  const query = new Parse.Query(ITEMS).greaterThan('score', 10);
  const subscription = await query.subscribe();
  const rec = record(subscription);
  try {
    const ignored = await new Parse.Object(ITEMS).save({ score: 1, name: 'never matches' });
    const obj = await new Parse.Object(ITEMS).save({ score: 20, name: 'a' });

    const created = await expectEvent(rec, 'create', obj.id);
    assert.equal(created.object.className, ITEMS);
    assert.equal(created.object.get('score'), 20);
    assert.equal(created.object.get('name'), 'a');
    assert.ok(created.object.createdAt instanceof Date);

    await obj.save({ score: 30 });
    const updated = await expectEvent(rec, 'update', obj.id);
    assert.equal(updated.object.get('score'), 30);
    assert.equal(updated.original && updated.original.get('score'), 20);

    await obj.save({ score: 5 });
    const left = await expectEvent(rec, 'leave', obj.id);
    assert.equal(left.object.get('score'), 5);
    assert.equal(left.original && left.original.get('score'), 30);

    await ignored.save({ score: 2 }); // outside the query before and after: no event
    await obj.save({ score: 15 });
    const entered = await expectEvent(rec, 'enter', obj.id);
    assert.equal(entered.object.get('score'), 15);
    assert.equal(entered.original && entered.original.get('score'), 5);

    await ignored.destroy(); // never matched: no event
    await obj.destroy();
    const deleted = await expectEvent(rec, 'delete', obj.id);
    assert.equal(deleted.object.get('score'), 15);
    await rec.none();
  } finally {
    await subscription.unsubscribe();
  }
});

test('query.subscribe() with an equality constraint and $in only sees matching objects', async () => {
  const query = new Parse.Query(ITEMS).equalTo('name', 'eq').containedIn('tag', ['x', 'y']);
  const subscription = await query.subscribe();
  const rec = record(subscription);
  try {
    await new Parse.Object(ITEMS).save({ name: 'eq', tag: 'z' });
    await new Parse.Object(ITEMS).save({ name: 'other', tag: 'x' });
    const hit = await new Parse.Object(ITEMS).save({ name: 'eq', tag: 'y' });
    await expectEvent(rec, 'create', hit.id);
    await rec.none();
  } finally {
    await subscription.unsubscribe();
  }
});

test('fields: query.select() limits the fields events carry', async () => {
  const query = new Parse.Query(FIELDS).select('shown');
  const subscription = await query.subscribe();
  const rec = record(subscription);
  try {
    const obj = await new Parse.Object(FIELDS).save({ shown: 1, hidden: 'secret' });
    const created = await expectEvent(rec, 'create', obj.id);
    assert.equal(created.object.get('shown'), 1);
    assert.equal(created.object.get('hidden'), undefined);
    assert.ok(!('hidden' in created.object.attributes), 'an unselected field was sent');

    await obj.save({ shown: 2, hidden: 'still secret' });
    const updated = await expectEvent(rec, 'update', obj.id);
    assert.equal(updated.object.get('shown'), 2);
    assert.ok(!('hidden' in updated.object.attributes), 'an unselected field was sent');
    if (updated.original) {
      assert.equal(updated.original.get('shown'), 1);
      assert.ok(!('hidden' in updated.original.attributes), 'an unselected field was sent in original');
    }
  } finally {
    await subscription.unsubscribe();
  }
});

test('watch: query.watch() only sends updates that change a watched field', async () => {
  const obj = await new Parse.Object(WATCHED).save({ watched: 1, other: 1 });
  const query = new Parse.Query(WATCHED).watch('watched');
  const subscription = await query.subscribe();
  const rec = record(subscription);
  try {
    await obj.save({ other: 2 }); // watched field unchanged: no event
    await obj.save({ other: 3, watched: 2 });
    const updated = await expectEvent(rec, 'update', obj.id);
    assert.equal(updated.object.get('watched'), 2);
    assert.equal(updated.object.get('other'), 3);
    await obj.save({ other: 4 });
    await rec.none();
  } finally {
    await subscription.unsubscribe();
  }
});

test('unsubscribe: no more events for that subscription, others keep theirs', async () => {
  const kept = await new Parse.Query(UNSUB).subscribe();
  const gone = await new Parse.Query(UNSUB).subscribe();
  const keptRec = record(kept);
  const goneRec = record(gone);
  let unsubscribed = false;
  gone.on('close', () => {
    unsubscribed = true;
  });
  try {
    const first = await new Parse.Object(UNSUB).save({ n: 1 });
    await expectEvent(keptRec, 'create', first.id);
    await expectEvent(goneRec, 'create', first.id);

    await gone.unsubscribe();
    assert.ok(unsubscribed, 'unsubscribe() emits close');
    const second = await new Parse.Object(UNSUB).save({ n: 2 });
    await expectEvent(keptRec, 'create', second.id);
    await goneRec.none();
  } finally {
    await kept.unsubscribe();
  }
});

describe('access control', () => {
  let alice;
  let bob;
  before(async () => {
    alice = await signUp(uniqueName('alice'));
    bob = await signUp(uniqueName('bob'));
  });

  const aclFor = (...userIds) => {
    const acl = new Parse.ACL();
    for (const id of userIds) acl.setReadAccess(id, true);
    return acl;
  };

  test('a subscriber gets only objects it may read; enter when access is granted, leave when revoked',
    async () => {
      const client = await openClient(alice.sessionToken);
      const subscription = await subscribeWith(client, new Parse.Query(SECRET), alice.sessionToken);
      const rec = record(subscription);

      const bobs = await new Parse.Object(SECRET).save({ owner: 'bob' }, { useMasterKey: true });
      await bobs.setACL(aclFor(bob.id)).save(null, { useMasterKey: true });
      // bobs was created public (no ACL) and then made private: alice saw create, leave.
      await expectEvent(rec, 'create', bobs.id);
      await expectEvent(rec, 'leave', bobs.id);

      const hidden = new Parse.Object(SECRET);
      hidden.setACL(aclFor(bob.id));
      await hidden.save({ owner: 'bob', n: 1 }, { useMasterKey: true });
      await hidden.save({ n: 2 }, { useMasterKey: true });
      const visible = new Parse.Object(SECRET);
      visible.setACL(aclFor(alice.id, bob.id));
      await visible.save({ owner: 'both' }, { useMasterKey: true });
      // The first thing alice hears of is the object she may read.
      await expectEvent(rec, 'create', visible.id);

      // Access granted: the object enters her view.
      hidden.setACL(aclFor(alice.id, bob.id));
      await hidden.save({ n: 3 }, { useMasterKey: true });
      const entered = await expectEvent(rec, 'enter', hidden.id);
      assert.equal(entered.object.get('n'), 3);
      if (entered.original) {
        // Parse Server sends no original here: alice could not read the object before.
        assert.fail(`original of an object she could not read was sent: ${JSON.stringify(entered.original)}`);
      }

      await hidden.save({ n: 4 }, { useMasterKey: true });
      const updated = await expectEvent(rec, 'update', hidden.id);
      assert.equal(updated.object.get('n'), 4);

      // Access revoked: it leaves, and the state she may no longer read is not sent.
      hidden.setACL(aclFor(bob.id));
      await hidden.save({ n: 5 }, { useMasterKey: true });
      const left = await expectEvent(rec, 'leave', hidden.id);
      assert.notEqual(left.object.get('n'), 5, 'leave carried the state she may not read');
      await hidden.save({ n: 6 }, { useMasterKey: true });
      await hidden.destroy({ useMasterKey: true });
      await visible.save({ owner: 'both', n: 7 }, { useMasterKey: true });
      await expectEvent(rec, 'update', visible.id);
      await rec.none();
    });

  test('read access through a role', async () => {
    const role = new Parse.Role(uniqueName('LiveReaders'), new Parse.ACL());
    role.getUsers().add(Parse.User.createWithoutData(alice.id));
    await role.save(null, { useMasterKey: true });

    const client = await openClient(alice.sessionToken);
    const subscription = await subscribeWith(client, new Parse.Query(SECRET).equalTo('kind', 'role'),
      alice.sessionToken);
    const rec = record(subscription);
    try {
      const other = new Parse.Object(SECRET);
      other.setACL(aclFor(bob.id));
      await other.save({ kind: 'role' }, { useMasterKey: true });
      const forRole = new Parse.Object(SECRET);
      const acl = new Parse.ACL();
      acl.setRoleReadAccess(role, true);
      forRole.setACL(acl);
      await forRole.save({ kind: 'role' }, { useMasterKey: true });
      await expectEvent(rec, 'create', forRole.id);
      await rec.none();
    } finally {
      await role.destroy({ useMasterKey: true }).catch(() => {});
    }
  });

  test('a session token given per subscription', async () => {
    // The socket connects without a user; the subscription carries bob's token.
    const client = await openClient(undefined);
    const subscription = await subscribeWith(client, new Parse.Query(SECRET).equalTo('kind', 'per-sub'),
      bob.sessionToken);
    const rec = record(subscription);
    const alices = new Parse.Object(SECRET);
    alices.setACL(aclFor(alice.id));
    await alices.save({ kind: 'per-sub' }, { useMasterKey: true });
    const bobs = new Parse.Object(SECRET);
    bobs.setACL(aclFor(bob.id));
    await bobs.save({ kind: 'per-sub' }, { useMasterKey: true });
    await expectEvent(rec, 'create', bobs.id);
    await rec.none();
  });

  test('_User events carry no session token or password, and no email for other users', async () => {
    const prefix = uniqueName('lqwatch');
    const res = await rest('POST', '/users', {
      username: `${prefix}_carol`, password: 'carol-pw', email: `${prefix}@example.com`,
    });
    assert.equal(res.status, 201, res.text);
    const carol = { id: res.body.objectId, sessionToken: res.body.sessionToken };
    const carolClient = await openClient(carol.sessionToken);
    const own = record(await subscribeWith(carolClient, new Parse.Query('_User').equalTo('objectId', carol.id),
      carol.sessionToken));
    const aliceClient = await openClient(alice.sessionToken);
    const others = record(await subscribeWith(aliceClient,
      new Parse.Query('_User').startsWith('username', prefix), alice.sessionToken));
    const leaks = (event, keys) => {
      const json = event.object.toJSON();
      const original = event.original ? event.original.toJSON() : {};
      return keys.filter((k) => k in json || k in original);
    };
    try {
      // Carol edits herself: she hears of it; alice may not read carol (Parse Server's sign-up
      // ACL is the user alone), so she does not.
      await Parse.User.createWithoutData(carol.id).save({ nickname: 'c1' }, { sessionToken: carol.sessionToken });
      const ownUpdate = await expectEvent(own, 'update', carol.id);
      assert.equal(ownUpdate.object.get('nickname'), 'c1');
      assert.deepEqual(leaks(ownUpdate, ['sessionToken', 'password', '_hashed_password', 'authData']), []);

      // Made publicly readable: carol enters alice's view, without carol's email.
      const acl = new Parse.ACL();
      acl.setPublicReadAccess(true);
      acl.setReadAccess(carol.id, true);
      acl.setWriteAccess(carol.id, true);
      const user = Parse.User.createWithoutData(carol.id);
      user.setACL(acl);
      await user.save({ nickname: 'c2' }, { useMasterKey: true });
      const entered = await expectEvent(others, 'enter', carol.id);
      assert.equal(entered.object.get('username'), `${prefix}_carol`);
      assert.equal(entered.object.get('nickname'), 'c2');
      assert.deepEqual(leaks(entered, ['sessionToken', 'password', '_hashed_password', 'authData', 'email']), []);
      const ownSecond = await expectEvent(own, 'update', carol.id);
      assert.deepEqual(leaks(ownSecond, ['sessionToken', 'password', '_hashed_password', 'authData']), []);
      await others.none();
    } finally {
      await rest('DELETE', `/users/${carol.id}`, undefined, { master: true });
    }
  });
});

test('the client reconnects and resubscribes after a server restart', { timeout: 90_000 }, async (t) => {
  if (!canRestartServer()) {
    t.skip('the harness did not start the server (PARSE_SERVER_URL set)');
    return;
  }
  const subscription = await new Parse.Query(RESTART).subscribe();
  const rec = record(subscription);
  let opens = 0;
  let reopened;
  const reopenedPromise = new Promise((r) => {
    reopened = r;
  });
  subscription.on('open', () => {
    opens += 1;
    if (opens >= 2) reopened();
  });
  try {
    const before = await new Parse.Object(RESTART).save({ n: 1 });
    await expectEvent(rec, 'create', before.id);
    if (opens === 0) await new Promise((r) => setTimeout(r, 300)); // 'open' comes 200 ms late
    opens = Math.max(opens, 1);

    await restartServer();
    let timer;
    try {
      await Promise.race([
        reopenedPromise,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no resubscription within 60 s')), 60_000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    const afterRestart = await new Parse.Object(RESTART).save({ n: 2 });
    await expectEvent(rec, 'create', afterRestart.id);
  } finally {
    await subscription.unsubscribe().catch(() => {});
  }
});
