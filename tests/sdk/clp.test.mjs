// Class-level permissions and protected fields through the official JS SDK: CLPs set with the
// master key (Parse.Schema#setCLP), then queries and saves as different users.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, dropClasses, expectParseError, startServer, stopServer, uniqueName } from './harness.mjs';

const Owned = uniqueName('SdkClpOwned');
const Closed = uniqueName('SdkClpClosed');
const Secret = uniqueName('SdkClpSecret');
const Holder = uniqueName('SdkClpHolder');
const name = () => `clp_${randomBytes(4).toString('hex')}`;
const ALL = ['find', 'count', 'get', 'create', 'update', 'delete', 'addField'];

let alice;
let bob;
const as = (user) => ({ sessionToken: user.getSessionToken() });

async function newUser() {
  const user = new Parse.User();
  user.set('username', name());
  user.set('password', 'pw-1234');
  user.set('email', `${name()}@example.com`);
  user.setACL(new Parse.ACL({ '*': { read: true } }));
  await user.signUp();
  return user;
}

async function makeClass(className, fields, clp) {
  const schema = new Parse.Schema(className);
  for (const [field, type, target] of fields) {
    if (type === 'Pointer') schema.addPointer(field, target);
    else schema.addField(field, type);
  }
  const perms = {};
  for (const op of ALL) perms[op] = {};
  schema.setCLP({ ...perms, ...clp });
  await schema.save();
}

before(async () => {
  await startServer();
  alice = await newUser();
  bob = await newUser();
  await Parse.User.logOut().catch(() => {});
  await makeClass(Owned, [['owner', 'Pointer', '_User'], ['n', 'Number']],
    { create: { '*': true }, readUserFields: ['owner'], writeUserFields: ['owner'] });
  await makeClass(Closed, [['n', 'Number']], { find: { [alice.id]: true }, get: { requiresAuthentication: true } });
  await makeClass(Secret, [['code', 'String'], ['n', 'Number']], {
    find: { '*': true }, get: { '*': true }, count: { '*': true }, create: { '*': true },
    protectedFields: { '*': ['code'], [alice.id]: [] },
  });
  await makeClass(Holder, [['item', 'Pointer', Owned]], {
    find: { '*': true }, get: { '*': true }, create: { '*': true },
  });
});

after(async () => {
  await dropClasses(Owned, Closed, Secret, Holder);
  await stopServer();
});

describe('pointer permissions', () => {
  test('each user finds, counts, updates and deletes only the objects naming them', async () => {
    const mine = new Parse.Object(Owned);
    mine.set({ owner: alice, n: 1 });
    await mine.save(null, as(alice));
    const theirs = new Parse.Object(Owned);
    theirs.set({ owner: bob, n: 2 });
    await theirs.save(null, as(bob));

    const seen = await new Parse.Query(Owned).find(as(alice));
    assert.deepEqual(seen.map((o) => o.id), [mine.id]);
    assert.equal(await new Parse.Query(Owned).count(as(bob)), 1);
    assert.deepEqual(await new Parse.Query(Owned).find(), []);

    const err = await expectParseError(() => new Parse.Query(Owned).get(theirs.id, as(alice)));
    assert.equal(err.code, Parse.Error.OBJECT_NOT_FOUND);
    theirs.set('n', 9);
    const refused = await expectParseError(() => theirs.save(null, as(alice)));
    assert.equal(refused.code, Parse.Error.OBJECT_NOT_FOUND);
    const gone = await expectParseError(() => theirs.destroy(as(alice)));
    assert.equal(gone.code, Parse.Error.OBJECT_NOT_FOUND);

    mine.set('n', 5);
    await mine.save(null, as(alice));
    await theirs.destroy(as(bob));
  });

  test('include keeps only the pointers the caller may get', async () => {
    const item = new Parse.Object(Owned);
    item.set({ owner: alice, n: 7 });
    await item.save(null, as(alice));
    const holder = new Parse.Object(Holder);
    holder.set('item', item);
    await holder.save(null, as(alice));
    const forAlice = await new Parse.Query(Holder).equalTo('objectId', holder.id).include('item').first(as(alice));
    assert.equal(forAlice.get('item').get('n'), 7);
    const forBob = await new Parse.Query(Holder).equalTo('objectId', holder.id).include('item').first(as(bob));
    assert.equal(forBob.get('item'), undefined);
    const err = await expectParseError(() => new Parse.Query(Holder).include('item').find());
    assert.equal(err.code, Parse.Error.OBJECT_NOT_FOUND);
  });
});

describe('operations', () => {
  test('closed operations answer 119, requiresAuthentication 101', async () => {
    const obj = new Parse.Object(Closed);
    obj.set('n', 1);
    await obj.save(null, { useMasterKey: true });
    const created = await expectParseError(() => new Parse.Object(Closed).save({ n: 2 }, as(alice)));
    assert.equal(created.code, Parse.Error.OPERATION_FORBIDDEN);
    assert.equal(created.message, 'Permission denied');
    assert.equal((await new Parse.Query(Closed).find(as(alice))).length, 1);
    const found = await expectParseError(() => new Parse.Query(Closed).find(as(bob)));
    assert.equal(found.code, Parse.Error.OPERATION_FORBIDDEN);
    const counted = await expectParseError(() => new Parse.Query(Closed).count(as(alice)));
    assert.equal(counted.code, Parse.Error.OPERATION_FORBIDDEN);
    assert.equal((await new Parse.Query(Closed).get(obj.id, as(bob))).get('n'), 1);
    const anonymous = await expectParseError(() => new Parse.Query(Closed).get(obj.id));
    assert.equal(anonymous.code, Parse.Error.OBJECT_NOT_FOUND);
    assert.equal(anonymous.message, 'Permission denied');
    assert.equal((await new Parse.Query(Closed).find({ useMasterKey: true })).length, 1);
  });
});

describe('protected fields', () => {
  test('hidden from everyone the CLP names, and not queryable by them', async () => {
    const obj = new Parse.Object(Secret);
    obj.set({ code: 'c-1', n: 1 });
    await obj.save(null, as(bob));
    const forBob = await new Parse.Query(Secret).get(obj.id, as(bob));
    assert.equal(forBob.get('code'), undefined);
    assert.equal(forBob.get('n'), 1);
    const forAlice = await new Parse.Query(Secret).get(obj.id, as(alice));
    assert.equal(forAlice.get('code'), 'c-1');
    const oracle = await expectParseError(() => new Parse.Query(Secret).startsWith('code', 'c-').find(as(bob)));
    assert.equal(oracle.code, Parse.Error.OPERATION_FORBIDDEN);
    const sorted = await expectParseError(() => new Parse.Query(Secret).ascending('code').find());
    assert.equal(sorted.code, Parse.Error.OPERATION_FORBIDDEN);
    const either = Parse.Query.or(new Parse.Query(Secret).equalTo('n', 5), new Parse.Query(Secret).equalTo('code', 'x'));
    assert.equal((await expectParseError(() => either.find())).code, Parse.Error.OPERATION_FORBIDDEN);
    assert.equal((await new Parse.Query(Secret).equalTo('code', 'c-1').find(as(alice))).length, 1);
  });

  test("users' emails are hidden from other users and not queryable by them", async () => {
    const other = await new Parse.Query(Parse.User).get(alice.id, as(bob));
    assert.equal(other.get('email'), undefined);
    assert.equal(other.get('username'), alice.get('username'));
    const own = await new Parse.Query(Parse.User).get(alice.id, as(alice));
    assert.equal(own.get('email'), alice.get('email'));
    const err = await expectParseError(() => new Parse.Query(Parse.User).equalTo('email', alice.get('email')).find(as(bob)));
    assert.equal(err.code, Parse.Error.OPERATION_FORBIDDEN);
  });
});
