// Parse.Query behaviour through the official JS SDK.
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

const Item = uniqueName('SdkItem');
const Owner = uniqueName('SdkQOwner');
const Bulk = uniqueName('SdkBulk');

const owners = {};
const items = {};

// Six items. `grp` alternates a/b; `origin` is matched against Owner.city.
const ITEM_DATA = [
  { name: 'apple', n: 1, price: 1.5, grp: 'a', tags: ['red', 'fruit'], meta: { color: 'red', size: { w: 1 } }, owner: 'alice', origin: 'Paris', flag: true },
  { name: 'banana', n: 2, price: 0.25, grp: 'b', tags: ['yellow', 'fruit'], meta: { color: 'yellow' }, owner: 'bob', origin: 'Rome', flag: false },
  { name: 'Cherry', n: 3, price: 4, grp: 'a', tags: ['red', 'fruit', 'small'], meta: { color: 'red' }, owner: 'carol', origin: 'Berlin' },
  { name: 'date', n: 4, price: 3, grp: 'b', tags: ['brown'], owner: 'alice', origin: 'Paris' },
  { name: 'eggplant', n: 5, price: 2, grp: 'a', tags: [], meta: { color: 'purple' }, origin: 'Madrid' },
  { name: 'fig', n: 6, price: 5, grp: 'b', tags: ['purple', 'fruit'], owner: 'bob', origin: 'Oslo', note: 'x.y' },
];
const ALL = ITEM_DATA.map((d) => d.name).sort();

/** Sorted names of the results of `query` (or the given results array). */
async function names(query, options) {
  const results = Array.isArray(query) ? query : await query.find(options);
  return results.map((o) => o.get('name')).sort();
}

/** Names in result order (no sorting). */
async function orderedNames(query, options) {
  return (await query.find(options)).map((o) => o.get('name'));
}

const q = () => new Parse.Query(Item);

/**
 * The JS SDK has no public helper for $relativeTime; it builds
 * {key: {$gt: {$relativeTime: text}}} through the query's condition builder.
 */
function relativeTime(query, key, op, text) {
  query._addCondition(key, op, { $relativeTime: text });
  return query;
}

before(async () => {
  await startServer();
  await createClasses(Item, Owner, Bulk);

  // Data is written by the client (no master key): the client may add fields.
  const alice = await new Parse.Object(Owner).save({ name: 'alice', city: 'Paris', age: 30 });
  const bob = await new Parse.Object(Owner).save({ name: 'bob', city: 'Berlin', age: 40 });
  const carol = await new Parse.Object(Owner).save({ name: 'carol', city: 'Paris', age: 50, friend: alice });
  Object.assign(owners, { alice, bob, carol });

  for (const data of ITEM_DATA) {
    const { owner, ...fields } = data;
    const obj = new Parse.Object(Item);
    obj.set(fields);
    if (owner) obj.set('owner', owners[owner]);
    if (data.name === 'apple') obj.set('friends', [alice]);
    if (data.name === 'banana') obj.set('friends', [carol, alice]);
    if (data.name === 'date') obj.set('friends', []);
    await obj.save();
    items[data.name] = obj;
  }
});

after(async () => {
  await dropClasses(Item, Owner, Bulk);
  await stopServer();
});

describe('comparison constraints', () => {
  test('find without constraints returns everything', async () => {
    assert.deepEqual(await names(q()), ALL);
  });

  test('equalTo / notEqualTo', async () => {
    assert.deepEqual(await names(q().equalTo('n', 3)), ['Cherry']);
    assert.deepEqual(await names(q().equalTo('name', 'fig')), ['fig']);
    assert.deepEqual(await names(q().equalTo('flag', false)), ['banana']);
    assert.deepEqual(await names(q().equalTo('name', 'nope')), []);
    assert.deepEqual(
      await names(q().notEqualTo('n', 3)),
      ALL.filter((x) => x !== 'Cherry'),
    );
    // notEqualTo matches objects where the field is missing, too.
    assert.deepEqual(await names(q().notEqualTo('flag', true)), ['Cherry', 'banana', 'date', 'eggplant', 'fig']);
  });

  test('lessThan / lessThanOrEqualTo / greaterThan / greaterThanOrEqualTo', async () => {
    assert.deepEqual(await names(q().lessThan('n', 3)), ['apple', 'banana']);
    assert.deepEqual(await names(q().lessThanOrEqualTo('n', 3)), ['Cherry', 'apple', 'banana']);
    assert.deepEqual(await names(q().greaterThan('n', 4)), ['eggplant', 'fig']);
    assert.deepEqual(await names(q().greaterThanOrEqualTo('n', 4)), ['date', 'eggplant', 'fig']);
    assert.deepEqual(await names(q().greaterThan('price', 1.5).lessThan('price', 4)), ['date', 'eggplant']);
    // On strings: byte order (upper case sorts before lower case).
    assert.deepEqual(await names(q().lessThan('name', 'b')), ['Cherry', 'apple']);
  });

  test('comparisons on dates (createdAt)', async () => {
    const cut = items.date.createdAt;
    assert.deepEqual(await names(q().lessThan('createdAt', cut)), ['Cherry', 'apple', 'banana']);
    assert.deepEqual(await names(q().greaterThanOrEqualTo('createdAt', cut)), ['date', 'eggplant', 'fig']);
  });

  test('containedIn / notContainedIn', async () => {
    assert.deepEqual(await names(q().containedIn('name', ['apple', 'fig', 'zzz'])), ['apple', 'fig']);
    assert.deepEqual(await names(q().containedIn('n', [2, 3])), ['Cherry', 'banana']);
    assert.deepEqual(await names(q().notContainedIn('n', [1, 2, 3])), ['date', 'eggplant', 'fig']);
    assert.deepEqual(await names(q().containedIn('n', [])), []);
    // On PostgreSQL, notContainedIn never matches objects missing the field
    // (SQL NOT IN with NULL), unlike notEqualTo.
    assert.deepEqual(await names(q().notContainedIn('note', ['zzz'])), ['fig']);
  });

  test('exists / doesNotExist', async () => {
    assert.deepEqual(await names(q().exists('owner')), ALL.filter((x) => x !== 'eggplant'));
    assert.deepEqual(await names(q().doesNotExist('owner')), ['eggplant']);
    assert.deepEqual(await names(q().exists('note')), ['fig']);
    assert.deepEqual(await names(q().doesNotExist('meta')), ['date', 'fig']);
  });
});

describe('array constraints', () => {
  test('equalTo on an array of pointers matches arrays containing the pointer', async () => {
    assert.deepEqual(await names(q().equalTo('friends', owners.alice)), ['apple', 'banana']);
    assert.deepEqual(await names(q().equalTo('friends', owners.carol)), ['banana']);
    assert.deepEqual(await names(q().equalTo('friends', owners.bob)), []);
  });

  // SURPRISE (Parse Server 9 + PostgreSQL): equalTo on an array of strings or numbers
  // ({"tags": "red"}) fails with HTTP 500 "An internal server error occurred" (the
  // adapter builds invalid JSON), so the reference cannot verify it. The documented
  // Parse semantics (and MongoDB's) are asserted here as a TODO: it runs and reports,
  // but does not fail the suite.
  test(
    'equalTo on an array of strings matches arrays containing the value',
    { todo: 'Parse Server 9 + PostgreSQL answers HTTP 500 here' },
    async () => {
      assert.deepEqual(await names(q().equalTo('tags', 'red')), ['Cherry', 'apple']);
      assert.deepEqual(await names(q().equalTo('tags', 'fruit')), ['Cherry', 'apple', 'banana', 'fig']);
      assert.deepEqual(await names(q().equalTo('tags', 'none')), []);
    },
  );

  test('containedIn on an array field matches arrays sharing any value', async () => {
    assert.deepEqual(await names(q().containedIn('tags', ['brown', 'yellow'])), ['banana', 'date']);
  });

  test('containsAll', async () => {
    assert.deepEqual(await names(q().containsAll('tags', ['red', 'fruit'])), ['Cherry', 'apple']);
    assert.deepEqual(await names(q().containsAll('tags', ['red', 'fruit', 'small'])), ['Cherry']);
    assert.deepEqual(await names(q().containsAll('tags', ['red', 'nope'])), []);
  });

  test('containedBy', async () => {
    // Every element of the stored array must be in the given list; an empty array
    // is contained by anything.
    assert.deepEqual(
      await names(q().containedBy('tags', ['red', 'fruit', 'yellow'])),
      ['apple', 'banana', 'eggplant'],
    );
    assert.deepEqual(await names(q().containedBy('tags', ['brown'])), ['date', 'eggplant']);
  });
});

describe('string constraints', () => {
  test('matches (regex) with and without modifiers', async () => {
    assert.deepEqual(await names(q().matches('name', '^c')), []);
    assert.deepEqual(await names(q().matches('name', '^c', 'i')), ['Cherry']);
    assert.deepEqual(await names(q().matches('name', /^C/)), ['Cherry']);
    assert.deepEqual(await names(q().matches('name', /^c/i)), ['Cherry']);
    assert.deepEqual(await names(q().matches('name', 'an')), ['banana', 'eggplant']);
    assert.deepEqual(await names(q().matches('name', 'p{2}')), ['apple']);
    assert.deepEqual(await names(q().matches('name', '^[a-c]')), ['apple', 'banana']);
  });

  test('startsWith / endsWith / contains', async () => {
    assert.deepEqual(await names(q().startsWith('name', 'ba')), ['banana']);
    assert.deepEqual(await names(q().startsWith('name', 'Ba')), []);
    assert.deepEqual(await names(q().endsWith('name', 't')), ['eggplant']);
    assert.deepEqual(await names(q().endsWith('name', 'e')), ['apple', 'date']);
    assert.deepEqual(await names(q().contains('name', 'an')), ['banana', 'eggplant']);
    assert.deepEqual(await names(q().contains('name', 'erR')), []); // case-sensitive
    // The substring is quoted: '.' is literal, not "any character".
    assert.deepEqual(await names(q().contains('note', '.')), ['fig']);
    assert.deepEqual(await names(q().contains('name', '.')), []);
  });

  test('invalid regex modifiers give 102 INVALID_QUERY', async () => {
    const err = await expectParseError(() => q().matches('name', 'a', 'q').find());
    assert.equal(err.code, Parse.Error.INVALID_QUERY);
    assert.equal(err.code, 102);
  });
});

describe('object and pointer constraints', () => {
  test('dot notation into an object field', async () => {
    assert.deepEqual(await names(q().equalTo('meta.color', 'red')), ['Cherry', 'apple']);
    assert.deepEqual(await names(q().equalTo('meta.color', 'purple')), ['eggplant']);
    assert.deepEqual(await names(q().equalTo('meta.size.w', 1)), ['apple']);
    assert.deepEqual(await names(q().notEqualTo('meta.color', 'red')), ['banana', 'date', 'eggplant', 'fig']);
  });

  // SURPRISE (Parse Server 9 + PostgreSQL): $in and $exists on a dotted path
  // ('meta.color') silently return no results, and equalTo on a whole object value
  // fails with 119 "Postgres doesn't support this query type yet". Documented Parse
  // semantics asserted as a TODO (runs, reports, does not fail the suite).
  test(
    'containedIn / exists on a dotted path',
    { todo: 'Parse Server 9 + PostgreSQL returns no results here' },
    async () => {
      assert.deepEqual(
        await names(q().containedIn('meta.color', ['yellow', 'purple'])),
        ['banana', 'eggplant'],
      );
      assert.deepEqual(await names(q().exists('meta.size')), ['apple']);
    },
  );

  test('pointer equality', async () => {
    assert.deepEqual(await names(q().equalTo('owner', owners.alice)), ['apple', 'date']);
    const shell = Parse.Object.extend(Owner).createWithoutData(owners.bob.id);
    assert.deepEqual(await names(q().equalTo('owner', shell)), ['banana', 'fig']);
    assert.deepEqual(await names(q().notEqualTo('owner', owners.alice)), ['Cherry', 'banana', 'eggplant', 'fig']);
    assert.deepEqual(
      await names(q().containedIn('owner', [owners.alice, owners.carol])),
      ['Cherry', 'apple', 'date'],
    );
  });
});

describe('compound queries', () => {
  test('Parse.Query.or', async () => {
    const res = Parse.Query.or(q().lessThan('n', 2), q().greaterThan('n', 5));
    assert.deepEqual(await names(res), ['apple', 'fig']);
    // Combined with an outer constraint.
    const both = Parse.Query.or(q().equalTo('grp', 'a'), q().equalTo('n', 2));
    both.lessThan('n', 4);
    assert.deepEqual(await names(both), ['Cherry', 'apple', 'banana']);
  });

  test('Parse.Query.and', async () => {
    const res = Parse.Query.and(q().greaterThan('n', 1), q().lessThan('n', 4));
    assert.deepEqual(await names(res), ['Cherry', 'banana']);
    const mixed = Parse.Query.and(
      Parse.Query.or(q().equalTo('name', 'apple'), q().equalTo('name', 'fig')),
      q().equalTo('grp', 'b'),
    );
    assert.deepEqual(await names(mixed), ['fig']);
  });

  test('Parse.Query.nor', async () => {
    const res = Parse.Query.nor(q().lessThan('n', 3), q().greaterThan('n', 5));
    assert.deepEqual(await names(res), ['Cherry', 'date', 'eggplant']);
  });

  test('matchesQuery / doesNotMatchQuery', async () => {
    const inParis = new Parse.Query(Owner).equalTo('city', 'Paris');
    assert.deepEqual(await names(q().matchesQuery('owner', inParis)), ['Cherry', 'apple', 'date']);
    // SURPRISE (Parse Server 9 + PostgreSQL): objects *without* the pointer field
    // (eggplant) are not returned: $notInQuery becomes SQL NOT IN, and NULL never
    // matches. The same holds for notContainedIn on a missing field (see below).
    // MongoDB would return them.
    assert.deepEqual(
      await names(q().doesNotMatchQuery('owner', new Parse.Query(Owner).equalTo('city', 'Paris'))),
      ['banana', 'fig'],
    );
    // ...except when the inner query matches nothing: then every object matches.
    assert.deepEqual(
      await names(q().doesNotMatchQuery('owner', new Parse.Query(Owner).equalTo('city', 'Nowhere'))),
      ALL,
    );
    const old = new Parse.Query(Owner).greaterThan('age', 45);
    assert.deepEqual(await names(q().matchesQuery('owner', old)), ['Cherry']);
  });

  test('matchesKeyInQuery / doesNotMatchKeyInQuery', async () => {
    const allOwners = new Parse.Query(Owner);
    assert.deepEqual(
      await names(q().matchesKeyInQuery('origin', 'city', allOwners)),
      ['Cherry', 'apple', 'date'],
    );
    assert.deepEqual(
      await names(q().doesNotMatchKeyInQuery('origin', 'city', new Parse.Query(Owner))),
      ['banana', 'eggplant', 'fig'],
    );
    const berlin = new Parse.Query(Owner).equalTo('name', 'bob');
    assert.deepEqual(await names(q().matchesKeyInQuery('origin', 'city', berlin)), ['Cherry']);
  });

  test('relative time on createdAt', async () => {
    assert.deepEqual(await names(relativeTime(q(), 'createdAt', '$gt', '1 day ago')), ALL);
    assert.deepEqual(await names(relativeTime(q(), 'createdAt', '$lt', '1 day ago')), []);
    assert.deepEqual(await names(relativeTime(q(), 'createdAt', '$lt', 'in 1 day')), ALL);
    assert.deepEqual(await names(relativeTime(q(), 'createdAt', '$gte', 'in 2 hours')), []);
    assert.deepEqual(await names(relativeTime(q(), 'createdAt', '$gt', '3 weeks 2 days ago')), ALL);
    assert.deepEqual(await names(relativeTime(q(), 'createdAt', '$lt', 'now')), ALL);
  });

  test('malformed relative time gives 107 INVALID_JSON', async () => {
    const err = await expectParseError(() => relativeTime(q(), 'createdAt', '$gt', 'yesterday').find());
    assert.equal(err.code, Parse.Error.INVALID_JSON);
  });
});

describe('include', () => {
  test('without include a pointer is not fetched', async () => {
    const apple = await q().equalTo('name', 'apple').first();
    const owner = apple.get('owner');
    assert.equal(owner.id, owners.alice.id);
    assert.equal(owner.get('name'), undefined);
  });

  test('include one level', async () => {
    const apple = await q().equalTo('name', 'apple').include('owner').first();
    const owner = apple.get('owner');
    assert.equal(owner.className, Owner);
    assert.equal(owner.id, owners.alice.id);
    assert.equal(owner.get('name'), 'alice');
    assert.equal(owner.get('city'), 'Paris');
    assert.equal(owner.get('age'), 30);
    assert.ok(owner.createdAt instanceof Date);
    // An object with no pointer is still returned.
    const eggplant = await q().equalTo('name', 'eggplant').include('owner').first();
    assert.equal(eggplant.get('owner'), undefined);
  });

  test('nested include a.b', async () => {
    const cherry = await q().equalTo('name', 'Cherry').include('owner.friend').first();
    const carol = cherry.get('owner');
    assert.equal(carol.get('name'), 'carol');
    const friend = carol.get('friend');
    assert.equal(friend.id, owners.alice.id);
    assert.equal(friend.get('name'), 'alice');
    assert.equal(friend.get('city'), 'Paris');
  });

  test('includeAll() includes every pointer one level deep', async () => {
    const cherry = await q().equalTo('name', 'Cherry').includeAll().first();
    const carol = cherry.get('owner');
    assert.equal(carol.get('name'), 'carol');
    assert.equal(carol.get('friend').id, owners.alice.id);
    assert.equal(carol.get('friend').get('name'), undefined);
  });
});

describe('count, first, each', () => {
  test('count', async () => {
    assert.equal(await q().count(), 6);
    assert.equal(await q().equalTo('grp', 'a').count(), 3);
    assert.equal(await q().equalTo('name', 'nope').count(), 0);
    // limit and skip do not affect count.
    assert.equal(await q().limit(1).skip(1).count(), 6);
  });

  test('withCount', async () => {
    const res = await q().ascending('n').limit(2).withCount().find();
    assert.equal(res.count, 6);
    assert.deepEqual(
      res.results.map((o) => o.get('name')),
      ['apple', 'banana'],
    );
    const none = await q().equalTo('grp', 'b').limit(0).withCount().find();
    assert.equal(none.count, 3);
    assert.deepEqual(none.results, []);
  });

  test('first', async () => {
    const first = await q().ascending('n').first();
    assert.ok(first instanceof Parse.Object);
    assert.equal(first.get('name'), 'apple');
    assert.equal(first.id, items.apple.id);
    const last = await q().descending('n').first();
    assert.equal(last.get('name'), 'fig');
    assert.equal(await q().equalTo('name', 'nope').first(), undefined);
  });

  test('get', async () => {
    const fig = await q().get(items.fig.id);
    assert.equal(fig.get('name'), 'fig');
    assert.equal(fig.get('note'), 'x.y');
  });

  test('each visits every matching object once, across batches', async () => {
    const seen = [];
    await q().each(
      (obj) => {
        seen.push(obj.get('name'));
      },
      { batchSize: 2 },
    );
    assert.deepEqual(seen.sort(), ALL);

    const grpA = [];
    await q()
      .equalTo('grp', 'a')
      .each((obj) => {
        grpA.push(obj.get('name'));
      });
    assert.deepEqual(grpA.sort(), ['Cherry', 'apple', 'eggplant']);
  });
});

describe('keys, order, paging', () => {
  test('select returns only the chosen keys (plus the built-in ones)', async () => {
    const [apple] = await q().equalTo('name', 'apple').select('name', 'n').find();
    assert.equal(apple.get('name'), 'apple');
    assert.equal(apple.get('n'), 1);
    assert.equal(apple.has('tags'), false);
    assert.equal(apple.has('meta'), false);
    assert.equal(apple.has('owner'), false);
    assert.equal(apple.id, items.apple.id);
    assert.ok(apple.createdAt instanceof Date);
    assert.ok(apple.updatedAt instanceof Date);
  });

  test('select a subkey of an object field', async () => {
    const [apple] = await q().equalTo('name', 'apple').select('meta.color').find();
    // SURPRISE (Parse Server 9 + PostgreSQL): selecting 'meta.color' returns the
    // whole `meta` object, not just {color}; only the selected part is asserted.
    assert.equal(apple.get('meta').color, 'red');
    assert.equal(apple.has('name'), false);
    assert.equal(apple.has('tags'), false);
  });

  test('exclude removes keys', async () => {
    const [apple] = await q().equalTo('name', 'apple').exclude('tags', 'meta').find();
    assert.equal(apple.get('name'), 'apple');
    assert.equal(apple.get('n'), 1);
    assert.equal(apple.get('origin'), 'Paris');
    assert.equal(apple.has('tags'), false);
    assert.equal(apple.has('meta'), false);
    assert.equal(apple.id, items.apple.id);
  });

  test('ascending / descending', async () => {
    assert.deepEqual(await orderedNames(q().ascending('n')), ['apple', 'banana', 'Cherry', 'date', 'eggplant', 'fig']);
    assert.deepEqual(await orderedNames(q().descending('n')), ['fig', 'eggplant', 'date', 'Cherry', 'banana', 'apple']);
    assert.deepEqual(await orderedNames(q().ascending('price')), ['banana', 'apple', 'eggplant', 'date', 'Cherry', 'fig']);
    assert.deepEqual(await orderedNames(q().descending('createdAt')), ['fig', 'eggplant', 'date', 'Cherry', 'banana', 'apple']);
  });

  test('multiple order keys', async () => {
    assert.deepEqual(
      await orderedNames(q().ascending('grp').addDescending('n')),
      ['eggplant', 'Cherry', 'apple', 'fig', 'date', 'banana'],
    );
    assert.deepEqual(
      await orderedNames(q().descending('grp').addAscending('n')),
      ['banana', 'date', 'fig', 'apple', 'Cherry', 'eggplant'],
    );
    assert.deepEqual(
      await orderedNames(q().ascending('grp', 'n')),
      ['apple', 'Cherry', 'eggplant', 'banana', 'date', 'fig'],
    );
  });

  test('limit and skip', async () => {
    assert.deepEqual(await orderedNames(q().ascending('n').limit(2)), ['apple', 'banana']);
    assert.deepEqual(await orderedNames(q().ascending('n').skip(2).limit(2)), ['Cherry', 'date']);
    assert.deepEqual(await orderedNames(q().ascending('n').skip(5)), ['fig']);
    assert.deepEqual(await orderedNames(q().ascending('n').skip(10)), []);
    assert.deepEqual(await orderedNames(q().ascending('n').limit(0)), []);
  });

  test('distinct (master key)', async () => {
    const grps = await q().distinct('grp', { useMasterKey: true });
    assert.deepEqual([...grps].sort(), ['a', 'b']);
    const ns = await q().equalTo('grp', 'a').distinct('n', { useMasterKey: true });
    assert.deepEqual([...ns].sort((a, b) => a - b), [1, 3, 5]);
    const tags = await q().distinct('tags', { useMasterKey: true });
    // Arrays are unwound: distinct over the elements.
    assert.deepEqual([...tags].sort(), ['brown', 'fruit', 'purple', 'red', 'small', 'yellow']);
  });

  test('distinct without the master key is refused', async () => {
    const res = await rest('GET', `/aggregate/${Item}?distinct=grp`);
    assert.equal(res.status, 403, res.text);
  });
});

describe('saveAll / destroyAll', () => {
  test('saveAll creates and updates in batches; destroyAll removes them', async () => {
    const objs = Array.from({ length: 7 }, (_, i) => new Parse.Object(Bulk).set({ i, kind: 'bulk' }));
    const saved = await Parse.Object.saveAll(objs);
    assert.equal(saved.length, 7);
    const ids = new Set(saved.map((o) => o.id));
    assert.equal(ids.size, 7);
    for (const o of saved) assert.match(o.id, /^[A-Za-z0-9]{10}$/);
    assert.equal(await new Parse.Query(Bulk).count(), 7);

    for (const o of saved) o.increment('i', 100);
    await Parse.Object.saveAll(saved, { batchSize: 3 });
    const after = await new Parse.Query(Bulk).ascending('i').find();
    assert.deepEqual(
      after.map((o) => o.get('i')),
      [100, 101, 102, 103, 104, 105, 106],
    );

    await Parse.Object.destroyAll(saved.slice(0, 4));
    assert.equal(await new Parse.Query(Bulk).count(), 3);
    await Parse.Object.destroyAll(saved.slice(4));
    assert.equal(await new Parse.Query(Bulk).count(), 0);
  });

  test('saveAll reports a per-object error', async () => {
    const good = await new Parse.Object(Bulk).save({ i: 1 });
    const bad = new Parse.Object(Bulk).set({ i: 'not a number' });
    const err = await expectParseError(() => Parse.Object.saveAll([good, bad]));
    // The SDK rejects with the error of the failing object(s).
    const codes = Array.isArray(err.errors) ? err.errors.map((e) => e.code) : [err.code];
    assert.ok(codes.includes(111), JSON.stringify(err));
  });
});

describe('query errors', () => {
  test('invalid key names in a query give 105', async () => {
    // The SDK does not validate query keys, so this reaches the server.
    const err = await expectParseError(() => q().equalTo('$bad', 1).find());
    assert.equal(err.code, Parse.Error.INVALID_KEY_NAME);
    assert.equal(err.code, 105);
  });

  test('unknown operators are rejected', async () => {
    // SURPRISE: the brief expected 102 (INVALID_QUERY). Parse Server 9 on PostgreSQL
    // answers 119 OPERATION_FORBIDDEN "Postgres doesn't support this query type yet"
    // (on MongoDB it answers 107 "bad constraint"). An unknown operator next to a
    // known one ({$gt: 1, $foo: 2}) is silently ignored by Parse Server, so that
    // case is not asserted.
    const query = q();
    query._addCondition('n', '$foo', 1);
    const err = await expectParseError(() => query.find());
    assert.equal(err.code, Parse.Error.OPERATION_FORBIDDEN);
    const raw = await rest('GET', `/classes/${Item}?where=${encodeURIComponent('{"name":{"$nope":"x"}}')}`);
    assert.equal(raw.status, 400, raw.text);
    assert.equal(raw.body.code, 119, raw.text);
  });

  test('a malformed $in gives 107 INVALID_JSON', async () => {
    const raw = await rest('GET', `/classes/${Item}?where=${encodeURIComponent('{"n":{"$in":1}}')}`);
    assert.equal(raw.status, 400, raw.text);
    assert.equal(raw.body.code, 107, raw.text);
  });
});
