// Relations through the official JS SDK: relation.add/remove, relation.query() (with and without
// the relation's class known, the latter through redirectClassNameForKey), equalTo/containedIn/
// notEqualTo/matchesQuery on a relation field, counting, $relatedTo beside other constraints and in Parse.Query.or,
// and access (a client reads only the related objects, and owners, it may read).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Parse, createClasses, dropClasses, startServer, stopServer, uniqueName } from './harness.mjs';

const Owner = uniqueName('SdkOwner');
const Item = uniqueName('SdkItem');
const MASTER = { useMasterKey: true };

const items = {}; // name -> Parse.Object of Item
const owners = {}; // name -> Parse.Object of Owner
const names = (objects) => objects.map((o) => o.get('name')).sort();

before(async () => {
  await startServer();
  await createClasses(Owner, Item);
  const made = ['a', 'b', 'c', 'd'].map((name, n) => new Parse.Object(Item).set({ name, n }));
  const secret = new Parse.Object(Item).set({ name: 'secret', n: 10 });
  secret.setACL(new Parse.ACL()); // the master key only
  await Parse.Object.saveAll([...made, secret]);
  for (const item of [...made, secret]) items[item.get('name')] = item;

  const first = new Parse.Object(Owner).set({ name: 'first' });
  first.relation('rel').add([items.a, items.b, items.secret]);
  const second = new Parse.Object(Owner).set({ name: 'second' });
  second.relation('rel').add([items.b, items.c]);
  const hidden = new Parse.Object(Owner).set({ name: 'hidden' });
  hidden.relation('rel').add(items.d);
  hidden.setACL(new Parse.ACL());
  const empty = new Parse.Object(Owner).set({ name: 'empty' });
  await Parse.Object.saveAll([first, second, hidden, empty], MASTER);
  for (const owner of [first, second, hidden, empty]) owners[owner.get('name')] = owner;
});

after(async () => {
  await dropClasses(Owner, Item);
  await stopServer();
});

describe('relation.query()', () => {
  test('finds the related objects a client may read', async () => {
    assert.deepEqual(names(await owners.first.relation('rel').query().find()), ['a', 'b']);
    assert.deepEqual(names(await owners.first.relation('rel').query().find(MASTER)), ['a', 'b', 'secret']);
    assert.deepEqual(names(await owners.second.relation('rel').query().find()), ['b', 'c']);
    assert.deepEqual(await owners.empty.relation('rel').query().find(), []);
  });

  test('counts and combines with other constraints', async () => {
    assert.equal(await owners.first.relation('rel').query().count(MASTER), 3);
    const query = owners.first.relation('rel').query().greaterThan('n', 0);
    assert.deepEqual(names(await query.find()), ['b']);
    const ordered = await owners.first.relation('rel').query().descending('n').find(MASTER);
    assert.deepEqual(ordered.map((o) => o.get('name')), ['secret', 'b', 'a']);
  });

  test('inside Parse.Query.or and Parse.Query.and', async () => {
    const third = new Parse.Query(Item).equalTo('name', 'd');
    const either = Parse.Query.or(owners.second.relation('rel').query(), third);
    assert.deepEqual(names(await either.find()), ['b', 'c', 'd']);
    const both = Parse.Query.and(owners.first.relation('rel').query(), owners.second.relation('rel').query());
    assert.deepEqual(names(await both.find()), ['b']);
  });

  test('an owner the client may not read shows no relation', async () => {
    assert.deepEqual(await owners.hidden.relation('rel').query().find(), []);
    assert.deepEqual(names(await owners.hidden.relation('rel').query().find(MASTER)), ['d']);
  });

  test('without the relation class known, the server redirects the query (redirectClassNameForKey)', async () => {
    const bare = Parse.Object.extend(Owner).createWithoutData(owners.second.id);
    const relation = bare.relation('rel');
    assert.equal(relation.targetClassName, null);
    const found = await relation.query().find();
    assert.deepEqual(names(found), ['b', 'c']);
    for (const item of found) assert.equal(item.className, Item);
  });
});

describe('constraints on a relation field', () => {
  test('equalTo, containedIn and notEqualTo an object', async () => {
    const q = () => new Parse.Query(Owner);
    assert.deepEqual(names(await q().equalTo('rel', items.b).find()), ['first', 'second']);
    assert.deepEqual(names(await q().equalTo('rel', items.d).find()), []); // its owner is hidden
    assert.deepEqual(names(await q().equalTo('rel', items.d).find(MASTER)), ['hidden']);
    assert.deepEqual(names(await q().containedIn('rel', [items.a, items.c]).find()), ['first', 'second']);
    assert.deepEqual(names(await q().notEqualTo('rel', items.b).find()), ['empty']);
    assert.deepEqual(names(await q().notContainedIn('rel', [items.a]).find()), ['empty', 'second']);
    assert.equal(await q().equalTo('rel', items.b).count(), 2);
  });

  test('matchesQuery and doesNotMatchQuery', async () => {
    const q = () => new Parse.Query(Owner);
    const big = () => new Parse.Query(Item).greaterThan('n', 1);
    assert.deepEqual(names(await q().matchesQuery('rel', big()).find()), ['second']);
    assert.deepEqual(names(await q().matchesQuery('rel', big()).find(MASTER)), ['first', 'hidden', 'second']);
    assert.deepEqual(names(await q().doesNotMatchQuery('rel', big()).find()), ['empty', 'first']);
  });
});

describe('relation.add and relation.remove', () => {
  test('change what relation.query() finds', async () => {
    const owner = new Parse.Object(Owner).set({ name: 'changing' });
    owner.relation('rel').add([items.a, items.b]);
    await owner.save();
    owner.relation('rel').remove(items.a);
    owner.relation('rel').add(items.c);
    await owner.save();
    assert.deepEqual(names(await owner.relation('rel').query().find()), ['b', 'c']);
    const fetched = await new Parse.Query(Owner).get(owner.id);
    assert.deepEqual(names(await fetched.relation('rel').query().find()), ['b', 'c']);
    assert.equal(fetched.relation('rel').targetClassName, Item);
    await owner.destroy();
  });

  test('a relation to another class is refused', async () => {
    const owner = owners.empty;
    owner.relation('rel').add(owners.first);
    await assert.rejects(owner.save(), (err) => err.code === Parse.Error.INCORRECT_TYPE);
    owner.revert();
  });
});
