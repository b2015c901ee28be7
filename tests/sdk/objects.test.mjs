// Parse.Object behaviour through the official JS SDK.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  Parse,
  createClasses,
  dropClasses,
  expectParseError,
  rest,
  startServer,
  stopServer,
  uniqueName,
} from './harness.mjs';

const Thing = uniqueName('SdkThing');
const Owner = uniqueName('SdkOwner');
const Typed = uniqueName('SdkTyped');

const OBJECT_ID = /^[A-Za-z0-9]{10}$/;

/** A fresh copy of an object, fetched from the server (no shared SDK state). */
async function refetch(obj, options) {
  const q = new Parse.Query(obj.className);
  return q.get(obj.id, options);
}

before(async () => {
  await startServer();
  // Clients may not create classes (Parse Server 9 default), so the master key does it.
  await createClasses(Thing, Owner, Typed);
});

after(async () => {
  await dropClasses(Thing, Owner, Typed);
  await stopServer();
});

describe('create / fetch / update / destroy', () => {
  test('save assigns a 10-char id and createdAt == updatedAt', async () => {
    const before = Date.now();
    const obj = new Parse.Object(Thing);
    obj.set('name', 'first');
    obj.set('n', 1);
    await obj.save();
    assert.match(obj.id, OBJECT_ID);
    assert.ok(obj.createdAt instanceof Date);
    assert.ok(obj.updatedAt instanceof Date);
    assert.equal(obj.updatedAt.getTime(), obj.createdAt.getTime());
    // Server clock vs ours: allow a generous skew, but the value must be "now".
    assert.ok(Math.abs(obj.createdAt.getTime() - before) < 60_000);

    const copy = await refetch(obj);
    assert.equal(copy.id, obj.id);
    assert.equal(copy.get('name'), 'first');
    assert.equal(copy.get('n'), 1);
    assert.equal(copy.createdAt.getTime(), obj.createdAt.getTime());
    assert.equal(copy.updatedAt.getTime(), obj.updatedAt.getTime());
  });

  test('update moves updatedAt forward and keeps createdAt', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'upd', n: 1 });
    const createdAt = obj.createdAt.getTime();
    await new Promise((r) => setTimeout(r, 20));
    obj.set('name', 'updated');
    await obj.save();
    assert.equal(obj.createdAt.getTime(), createdAt);
    assert.ok(obj.updatedAt.getTime() > createdAt);

    const copy = await refetch(obj);
    assert.equal(copy.get('name'), 'updated');
    assert.equal(copy.get('n'), 1);
    assert.equal(copy.createdAt.getTime(), createdAt);
    assert.equal(copy.updatedAt.getTime(), obj.updatedAt.getTime());
  });

  test('fetch() refreshes an object created without data', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'fetchme', n: 7 });
    const shell = Parse.Object.extend(Thing).createWithoutData(obj.id);
    assert.equal(shell.className, Thing);
    assert.equal(shell.get('name'), undefined);
    await shell.fetch();
    assert.equal(shell.get('name'), 'fetchme');
    assert.equal(shell.get('n'), 7);
    assert.equal(shell.createdAt.getTime(), obj.createdAt.getTime());
  });

  test('destroy removes the object; fetching it gives 101', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'doomed' });
    const id = obj.id;
    await obj.destroy();
    const err = await expectParseError(() => new Parse.Query(Thing).get(id));
    assert.equal(err.code, Parse.Error.OBJECT_NOT_FOUND);
    assert.equal(err.code, 101);
  });

  test('fetching a never-existing id gives 101', async () => {
    const shell = new Parse.Object(Thing);
    shell.id = 'AbCdE12345';
    const err = await expectParseError(() => shell.fetch());
    assert.equal(err.code, 101);
  });

  test('destroying a never-existing id gives 101', async () => {
    const shell = new Parse.Object(Thing);
    shell.id = 'ZzZzZ98765';
    const err = await expectParseError(() => shell.destroy());
    assert.equal(err.code, 101);
  });

  // SURPRISE: Parse Server on PostgreSQL answers 200 {} in a class that does not exist (its
  // adapter ignores the missing table); on MongoDB, its default, and in Bastion it is 101.
  const postgresParseServer = { todo: process.env.PARSE_SERVER_URL ? 'Parse Server on PostgreSQL: 200 {}' : false };
  test('destroying in a class that does not exist gives 101, with the master key too', postgresParseServer, async () => {
    const shell = new Parse.Object(uniqueName('SdkNever'));
    shell.id = 'ZzZzZ98765';
    for (const options of [{}, { useMasterKey: true }]) {
      const err = await expectParseError(() => shell.destroy(options));
      assert.equal(err.code, Parse.Error.OBJECT_NOT_FOUND);
      assert.equal(err.message, 'Object not found.');
    }
  });
});

describe('field operations', () => {
  test('increment and decrement', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'counter', count: 10 });
    obj.increment('count', 5);
    await obj.save();
    assert.equal(obj.get('count'), 15);
    obj.decrement('count', 3);
    await obj.save();
    assert.equal(obj.get('count'), 12);
    obj.increment('count'); // default amount 1
    obj.increment('fresh', 2.5); // increment of a missing field starts from 0
    await obj.save();
    const copy = await refetch(obj);
    assert.equal(copy.get('count'), 13);
    assert.equal(copy.get('fresh'), 2.5);
  });

  test('increment on an object the client has not fetched returns the server value', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'blind', count: 100 });
    const shell = new Parse.Object(Thing);
    shell.id = obj.id;
    shell.increment('count', 1);
    await shell.save();
    // The server answers an Increment with the resulting value.
    assert.equal(shell.get('count'), 101);
  });

  test('20 concurrent increments end with the exact sum', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'concurrent', count: 0 });
    const amounts = Array.from({ length: 20 }, (_, i) => i + 1); // 1..20, sum 210
    await Promise.all(
      amounts.map((amount) => {
        const shell = new Parse.Object(Thing);
        shell.id = obj.id;
        shell.increment('count', amount);
        return shell.save();
      }),
    );
    const copy = await refetch(obj);
    assert.equal(copy.get('count'), 210);
  });

  test('add, addUnique, remove on arrays', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'arrays', list: ['a'] });
    obj.add('list', 'b');
    await obj.save();
    obj.addAll('list', ['c', 'a']); // Add appends, duplicates included, order kept
    await obj.save();
    let copy = await refetch(obj);
    assert.deepEqual(copy.get('list'), ['a', 'b', 'c', 'a']);

    obj.remove('list', 'a'); // removes every occurrence
    await obj.save();
    copy = await refetch(obj);
    assert.deepEqual(copy.get('list'), ['b', 'c']);

    obj.addUnique('list', 'b'); // already there: no change
    obj.addUnique('list', 'd');
    await obj.save();
    copy = await refetch(obj);
    // SURPRISE (Parse Server 9 + PostgreSQL): AddUnique does not keep the array's
    // order (it rebuilds the array with SELECT DISTINCT), and it also collapses
    // duplicates that were already in the array. Only the set of values is asserted.
    assert.deepEqual([...copy.get('list')].sort(), ['b', 'c', 'd']);

    obj.removeAll('list', ['b', 'not-there']);
    await obj.save();
    copy = await refetch(obj);
    assert.deepEqual([...copy.get('list')].sort(), ['c', 'd']);
  });

  test('add / addUnique on a missing field create the array', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'arrays2' });
    obj.add('fresh1', 1);
    obj.addUnique('fresh2', 'x');
    await obj.save();
    const copy = await refetch(obj);
    assert.deepEqual(copy.get('fresh1'), [1]);
    assert.deepEqual(copy.get('fresh2'), ['x']);
  });

  test('addUnique / remove compare objects and pointers by value', async () => {
    const owner = await new Parse.Object(Owner).save({ name: 'o' });
    const obj = await new Parse.Object(Thing).save({
      name: 'uniq',
      objs: [{ k: 1 }],
      ptrs: [owner],
    });
    obj.addUnique('objs', { k: 1 });
    obj.addUnique('objs', { k: 2 });
    const ownerShell = new Parse.Object(Owner);
    ownerShell.id = owner.id;
    obj.addUnique('ptrs', ownerShell);
    await obj.save();
    let copy = await refetch(obj);
    // Order after AddUnique is not guaranteed on PostgreSQL (see above).
    const byK = (a, b) => a.k - b.k;
    assert.deepEqual([...copy.get('objs')].sort(byK), [{ k: 1 }, { k: 2 }]);
    assert.equal(copy.get('ptrs').length, 1);
    assert.equal(copy.get('ptrs')[0].id, owner.id);

    obj.remove('objs', { k: 1 });
    obj.remove('ptrs', ownerShell);
    await obj.save();
    copy = await refetch(obj);
    assert.deepEqual(copy.get('objs'), [{ k: 2 }]);
    assert.deepEqual(copy.get('ptrs'), []);
  });

  test('unset deletes a field', async () => {
    const obj = await new Parse.Object(Thing).save({ name: 'unset', gone: 'soon', kept: 1 });
    obj.unset('gone');
    await obj.save();
    const copy = await refetch(obj);
    assert.equal(copy.has('gone'), false);
    assert.equal(copy.get('gone'), undefined);
    assert.equal(copy.get('kept'), 1);
  });

  test('unset before the first save leaves the field out', async () => {
    const obj = new Parse.Object(Thing);
    obj.set('name', 'unset-new');
    obj.unset('neverSet');
    await obj.save();
    const copy = await refetch(obj);
    assert.equal(copy.get('name'), 'unset-new');
    assert.equal(copy.has('neverSet'), false);
    const schema = await new Parse.Schema(Thing).get({ useMasterKey: true });
    assert.equal(schema.fields.neverSet, undefined);
  });

  test('set a nested object, then update one key with dot notation', async () => {
    const obj = await new Parse.Object(Thing).save({
      name: 'nested',
      conf: { a: 1, inner: { b: 'x', c: [1, 2] } },
    });
    let copy = await refetch(obj);
    assert.deepEqual(copy.get('conf'), { a: 1, inner: { b: 'x', c: [1, 2] } });

    // `set('conf.a', v)` sends {"conf.a": v}: only that key changes.
    // SURPRISE (Parse Server 9 + PostgreSQL): a *two-level* path such as
    // 'conf.inner.b' replaces the whole `inner` object with {b: ...} (the PostgreSQL
    // adapter merges only at the first level), unlike MongoDB. So only one-level
    // paths are asserted here.
    obj.set('conf.a', 2);
    obj.set('conf.added', true);
    await obj.save();
    copy = await refetch(obj);
    assert.deepEqual(copy.get('conf'), { a: 2, added: true, inner: { b: 'x', c: [1, 2] } });

    obj.increment('conf.a', 4);
    await obj.save();
    copy = await refetch(obj);
    assert.equal(copy.get('conf').a, 6);
    assert.deepEqual(copy.get('conf').inner, { b: 'x', c: [1, 2] });

    obj.unset('conf.added');
    await obj.save();
    copy = await refetch(obj);
    assert.deepEqual(copy.get('conf'), { a: 6, inner: { b: 'x', c: [1, 2] } });

    // Replacing the whole object drops keys that are not in the new value.
    obj.set('conf', { z: 0 });
    await obj.save();
    copy = await refetch(obj);
    assert.deepEqual(copy.get('conf'), { z: 0 });
  });
});

describe('field types round-trip', () => {
  test('every field type is fetched back equal', async () => {
    const owner = await new Parse.Object(Owner).save({ name: 'pointee' });
    const date = new Date('2021-03-04T05:06:07.089Z');
    const nestedDate = new Date('1999-12-31T23:59:59.999Z');
    const geo = new Parse.GeoPoint(48.8566, 2.3522);
    const polygon = new Parse.Polygon([
      [0, 0],
      [0, 1],
      [1, 1],
      [1, 0],
    ]);
    // A file reference only (no upload): the Files API is tested elsewhere.
    const file = Parse.File.fromJSON({
      __type: 'File',
      name: 'ref-only.txt',
      url: 'http://127.0.0.1/unused/ref-only.txt',
    });
    const acl = new Parse.ACL();
    acl.setPublicReadAccess(true);
    acl.setPublicWriteAccess(true);
    acl.setReadAccess('someUserId', true);
    acl.setRoleWriteAccess('Admins', true);

    const obj = new Parse.Object(Typed);
    obj.set({
      str: 'héllo wörld ✓',
      emptyStr: '',
      int: 42,
      neg: -7,
      float: 3.25,
      big: 2 ** 40,
      yes: true,
      no: false,
      when: date,
      obj: { a: 1, b: { c: ['x', null, true] }, d: null, when: { __type: 'Date', iso: nestedDate.toISOString() } },
      arr: [1, 'two', { three: 3 }, [4], false, nestedDate],
      emptyArr: [],
      ptr: owner,
      file,
      geo,
      poly: polygon,
      bytes: { __type: 'Bytes', base64: 'AAECAwQF/w==' },
    });
    obj.setACL(acl);
    await obj.save();

    const copy = await refetch(obj);
    assert.equal(copy.get('str'), 'héllo wörld ✓');
    assert.equal(copy.get('emptyStr'), '');
    assert.equal(copy.get('int'), 42);
    assert.equal(copy.get('neg'), -7);
    assert.equal(copy.get('float'), 3.25);
    assert.equal(copy.get('big'), 2 ** 40);
    assert.equal(copy.get('yes'), true);
    assert.equal(copy.get('no'), false);

    assert.ok(copy.get('when') instanceof Date);
    assert.equal(copy.get('when').toISOString(), date.toISOString());

    const o = copy.get('obj');
    assert.deepEqual(o.b, { c: ['x', null, true] });
    assert.equal(o.a, 1);
    assert.equal(o.d, null);
    // A Date inside an object comes back decoded by the SDK.
    assert.ok(o.when instanceof Date);
    assert.equal(o.when.toISOString(), nestedDate.toISOString());

    const arr = copy.get('arr');
    assert.equal(arr.length, 6);
    assert.deepEqual(arr.slice(0, 5), [1, 'two', { three: 3 }, [4], false]);
    assert.ok(arr[5] instanceof Date);
    assert.equal(arr[5].toISOString(), nestedDate.toISOString());
    assert.deepEqual(copy.get('emptyArr'), []);

    const ptr = copy.get('ptr');
    assert.ok(ptr instanceof Parse.Object);
    assert.equal(ptr.className, Owner);
    assert.equal(ptr.id, owner.id);
    assert.equal(ptr.get('name'), undefined); // not included: pointer only

    const f = copy.get('file');
    assert.ok(f instanceof Parse.File);
    assert.equal(f.name(), 'ref-only.txt');
    // The server builds the URL itself; it must at least end with the file name.
    assert.equal(typeof f.url(), 'string');
    assert.ok(f.url().endsWith('/ref-only.txt'), f.url());

    const g = copy.get('geo');
    assert.ok(g instanceof Parse.GeoPoint);
    assert.equal(g.latitude, 48.8566);
    assert.equal(g.longitude, 2.3522);

    const p = copy.get('poly');
    assert.ok(p instanceof Parse.Polygon);
    // SURPRISE (Parse Server 9 + PostgreSQL): the polygon comes back *closed*, i.e. the
    // first point is repeated at the end, even though 4 points were sent.
    const coords = p.coordinates;
    assert.deepEqual(coords.slice(0, 4), [
      [0, 0],
      [0, 1],
      [1, 1],
      [1, 0],
    ]);
    assert.ok(
      coords.length === 4 || (coords.length === 5 && coords[4][0] === 0 && coords[4][1] === 0),
      JSON.stringify(coords),
    );

    assert.deepEqual(copy.get('bytes'), { __type: 'Bytes', base64: 'AAECAwQF/w==' });

    const a = copy.getACL();
    assert.ok(a instanceof Parse.ACL);
    assert.equal(a.getPublicReadAccess(), true);
    assert.equal(a.getPublicWriteAccess(), true);
    assert.equal(a.getReadAccess('someUserId'), true);
    assert.equal(a.getWriteAccess('someUserId'), false);
    assert.equal(a.getRoleWriteAccess('Admins'), true);
    assert.equal(a.getRoleReadAccess('Admins'), false);
  });

  test('the schema records the type of every field added by the client', async () => {
    const res = await rest('GET', `/schemas/${Typed}`, undefined, { master: true });
    assert.equal(res.status, 200, res.text);
    const f = res.body.fields;
    assert.deepEqual(f.str, { type: 'String' });
    assert.deepEqual(f.int, { type: 'Number' });
    assert.deepEqual(f.float, { type: 'Number' });
    assert.deepEqual(f.yes, { type: 'Boolean' });
    assert.deepEqual(f.when, { type: 'Date' });
    assert.deepEqual(f.obj, { type: 'Object' });
    assert.deepEqual(f.arr, { type: 'Array' });
    assert.deepEqual(f.ptr, { type: 'Pointer', targetClass: Owner });
    assert.deepEqual(f.file, { type: 'File' });
    assert.deepEqual(f.geo, { type: 'GeoPoint' });
    assert.deepEqual(f.poly, { type: 'Polygon' });
    assert.deepEqual(f.bytes, { type: 'Bytes' });
    assert.deepEqual(f.ACL, { type: 'ACL' });
    assert.deepEqual(f.objectId, { type: 'String' });
    assert.deepEqual(f.createdAt, { type: 'Date' });
    assert.deepEqual(f.updatedAt, { type: 'Date' });
  });

  test('an ACL without public write blocks client updates and deletes (101)', async () => {
    const acl = new Parse.ACL();
    acl.setPublicReadAccess(true);
    acl.setPublicWriteAccess(false);
    const obj = new Parse.Object(Thing);
    obj.set('name', 'readonly');
    obj.setACL(acl);
    await obj.save();

    const shell = new Parse.Object(Thing);
    shell.id = obj.id;
    await shell.fetch(); // readable
    assert.equal(shell.get('name'), 'readonly');
    shell.set('name', 'hacked');
    let err = await expectParseError(() => shell.save());
    assert.equal(err.code, 101);
    err = await expectParseError(() => shell.destroy());
    assert.equal(err.code, 101);

    // The master key bypasses ACLs.
    const copy = await refetch(obj);
    assert.equal(copy.get('name'), 'readonly');
    copy.set('name', 'changed-by-master');
    await copy.save(null, { useMasterKey: true });
    assert.equal((await refetch(obj)).get('name'), 'changed-by-master');
  });

  test('an ACL without public read hides the object from clients (101)', async () => {
    const acl = new Parse.ACL(); // no access for anyone
    const obj = new Parse.Object(Thing);
    obj.set('name', 'secret');
    obj.setACL(acl);
    await obj.save();
    const err = await expectParseError(() => new Parse.Query(Thing).get(obj.id));
    assert.equal(err.code, 101);
    const viaMaster = await new Parse.Query(Thing).get(obj.id, { useMasterKey: true });
    assert.equal(viaMaster.get('name'), 'secret');
  });
});

describe('errors', () => {
  test('type mismatch gives 111 INCORRECT_TYPE', async () => {
    await new Parse.Object(Thing).save({ name: 'typed', score: 1 });
    const err = await expectParseError(() => new Parse.Object(Thing).save({ score: 'not a number' }));
    assert.equal(err.code, Parse.Error.INCORRECT_TYPE);
    assert.equal(err.code, 111);

    // Also on update, and for a Pointer to the wrong class.
    const obj = await new Parse.Object(Thing).save({ name: 'typed2', score: 2 });
    obj.set('score', true);
    const err2 = await expectParseError(() => obj.save());
    assert.equal(err2.code, 111);

    const owner = await new Parse.Object(Owner).save({ name: 'x' });
    await new Parse.Object(Thing).save({ link: owner });
    const other = await new Parse.Object(Thing).save({ name: 'not an owner' });
    const err3 = await expectParseError(() => new Parse.Object(Thing).save({ link: other }));
    assert.equal(err3.code, 111);
  });

  test('invalid field names give 105 INVALID_KEY_NAME', async () => {
    // The SDK refuses them client side...
    const obj = new Parse.Object(Thing);
    const sdkErr = await expectParseError(() => obj.save({ $bad: 1 }));
    assert.equal(sdkErr.code, Parse.Error.INVALID_KEY_NAME);
    assert.equal(sdkErr.code, 105);
    // ...and so does the server for raw REST requests.
    for (const key of ['$bad', '1abc', 'has space', 'bad-dash']) {
      const res = await rest('POST', `/classes/${Thing}`, { [key]: 1 });
      assert.equal(res.body && res.body.code, 105, `${key}: ${res.status} ${res.text}`);
      assert.equal(res.status, 400);
    }
  });

  test('clients cannot create classes (119), the master key can', async () => {
    const fresh = uniqueName('SdkNoClass');
    const err = await expectParseError(() => new Parse.Object(fresh).save({ a: 1 }));
    assert.equal(err.code, Parse.Error.OPERATION_FORBIDDEN);
    assert.equal(err.code, 119);
    const obj = await new Parse.Object(fresh).save({ a: 1 }, { useMasterKey: true });
    assert.match(obj.id, OBJECT_ID);
    // Once it exists, a client may save to it and add fields.
    const viaClient = await new Parse.Object(fresh).save({ a: 2, b: 'new field' });
    assert.match(viaClient.id, OBJECT_ID);
    await dropClasses(fresh);
  });
});
