// Parse.Query#aggregate and Parse.Query#distinct through the official JS SDK (both use the
// master key, and both are GET /aggregate/:className as the SDK's POST-as-GET).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Parse, createClasses, dropClasses, expectParseError, startServer, stopServer, uniqueName } from './harness.mjs';

const Sale = uniqueName('SdkSale');
const Shop = uniqueName('SdkShop');

const shops = {};
// [item, shop, amount, day (UTC)]
const SALES = [
  ['pen', 'north', 3, '2024-03-01T09:30:00.000Z'],
  ['pen', 'south', 5, '2024-03-01T15:00:00.000Z'],
  ['ink', 'north', 10, '2024-04-02T10:00:00.000Z'],
  ['pad', 'south', 7, '2025-04-02T10:00:00.000Z'],
  ['pad', null, 1, null],
];

const q = () => new Parse.Query(Sale);
// Parse Server on PostgreSQL compiles a pipeline into one flat SELECT and gets these wrong: the
// tests report there (todo) and must pass on Bastion.
const parseServerBug = (why) => ({ todo: process.env.PARSE_SERVER_URL ? `Parse Server: ${why}` : false });
// Rows in a stable order whatever the order of their keys.
const canonical = (v) => (v && typeof v === 'object' && !Array.isArray(v)
  ? `{${Object.keys(v).sort().map((k) => `${k}:${canonical(v[k])}`).join(',')}}` : JSON.stringify(v));
const byJSON = (rows) => [...rows].sort((a, b) => (canonical(a) < canonical(b) ? -1 : 1));

before(async () => {
  await startServer();
  await createClasses(Sale, Shop);
  for (const name of ['north', 'south']) {
    shops[name] = await new Parse.Object(Shop).save({ name });
  }
  await Parse.Object.saveAll(SALES.map(([item, shop, amount, day]) => {
    const sale = new Parse.Object(Sale).set({ item, amount });
    if (shop) sale.set('shop', shops[shop]);
    if (day) sale.set('day', new Date(day));
    return sale;
  }));
});

after(async () => {
  await dropClasses(Sale, Shop);
  await stopServer();
});

describe('aggregate', () => {
  test('$group with accumulators', async () => {
    const rows = await q().aggregate([{
      $group: {
        _id: '$item', total: { $sum: '$amount' }, n: { $sum: 1 }, most: { $max: '$amount' },
        least: { $min: '$amount' }, mean: { $avg: '$amount' },
      },
    }]);
    assert.deepEqual(byJSON(rows), byJSON([
      { objectId: 'pen', total: 8, n: 2, most: 5, least: 3, mean: 4 },
      { objectId: 'ink', total: 10, n: 1, most: 10, least: 10, mean: 10 },
      { objectId: 'pad', total: 8, n: 2, most: 7, least: 1, mean: 4 },
    ]));
  });

  test('$group by null counts everything; a pipeline may be one object', async () => {
    assert.deepEqual(await q().aggregate({ $group: { _id: null, n: { $sum: 1 } } }), [{ objectId: null, n: 5 }]);
  });

  test('the query constraints become a leading $match', parseServerBug('$match with $group fails in SQL'), async () => {
    const rows = await q().equalTo('item', 'pen').greaterThan('amount', 4).aggregate([
      { $group: { _id: null, total: { $sum: '$amount' } } },
    ]);
    assert.deepEqual(rows, [{ objectId: null, total: 5 }]);
  });

  test('$group by a pointer gives the object ids', async () => {
    const rows = await q().aggregate([{ $group: { _id: '$shop', total: { $sum: '$amount' } } }]);
    assert.deepEqual(byJSON(rows), byJSON([
      { objectId: shops.north.id, total: 13 },
      { objectId: shops.south.id, total: 12 },
      { objectId: null, total: 1 },
    ]));
  });

  test('$group by date parts', parseServerBug('it groups by the whole dates'), async () => {
    const rows = await q().aggregate([
      { $match: { day: { $gt: { __type: 'Date', iso: '2000-01-01T00:00:00.000Z' } } } },
      { $group: { _id: { year: { $year: '$day' }, month: { $month: '$day' } }, n: { $sum: 1 } } },
    ]);
    assert.deepEqual(byJSON(rows), byJSON([
      { objectId: { year: 2024, month: 3 }, n: 2 },
      { objectId: { year: 2024, month: 4 }, n: 1 },
      { objectId: { year: 2025, month: 4 }, n: 1 },
    ]));
  });

  test('$match on a date, $project, $sort and $limit', parseServerBug('$project after $match keeps every column'), async () => {
    const rows = await q().aggregate([
      { $match: { day: { $lt: { __type: 'Date', iso: '2025-01-01T00:00:00.000Z' } } } },
      { $project: { item: 1, amount: 1 } },
      { $sort: { amount: -1 } },
      { $limit: 2 },
    ]);
    assert.deepEqual(rows, [{ item: 'ink', amount: 10, objectId: null }, { item: 'pen', amount: 5, objectId: null }]);
  });

  test('whole objects come back as REST JSON', async () => {
    const [row] = await q().equalTo('amount', 10).aggregate([{ $sort: { amount: 1 } }]);
    assert.equal(row.item, 'ink');
    assert.deepEqual(row.day, { __type: 'Date', iso: '2024-04-02T10:00:00.000Z' });
    assert.deepEqual(row.shop, { __type: 'Pointer', className: Shop, objectId: shops.north.id });
    assert.match(row.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  test('an invalid stage is refused with INVALID_QUERY', async () => {
    const err = await expectParseError(() => q().aggregate([{ group: { _id: '$item' } }]));
    assert.equal(err.code, Parse.Error.INVALID_QUERY);
    const missing = await expectParseError(() => q().aggregate([{ $group: { total: { $sum: 1 } } }]));
    assert.equal(missing.code, Parse.Error.INVALID_QUERY);
  });

  test('$push, $first and $last follow the input order', parseServerBug('it ignores them'), async () => {
    const rows = await q().aggregate([
      { $sort: { amount: 1 } },
      { $group: { _id: '$item', amounts: { $push: '$amount' }, first: { $first: '$amount' }, last: { $last: '$amount' } } },
      { $sort: { _id: 1 } },
    ]);
    assert.deepEqual(rows, [
      { objectId: 'ink', amounts: [10], first: 10, last: 10 },
      { objectId: 'pad', amounts: [1, 7], first: 1, last: 7 },
      { objectId: 'pen', amounts: [3, 5], first: 3, last: 5 },
    ]);
  });
});

describe('distinct', () => {
  test('values, with constraints', async () => {
    assert.deepEqual((await q().distinct('item')).sort(), ['ink', 'pad', 'pen']);
    assert.deepEqual((await q().greaterThan('amount', 4).distinct('item')).sort(), ['ink', 'pad', 'pen']);
    assert.deepEqual((await q().lessThan('amount', 4).distinct('amount')).sort(), [1, 3]);
  });

  test('pointers come back as pointers', async () => {
    const ids = (await q().distinct('shop')).map((p) => p.objectId).sort();
    assert.deepEqual(ids, [shops.north.id, shops.south.id].sort());
  });

  test('a field nobody has gives nothing', async () => {
    assert.deepEqual(await q().distinct('nosuch'), []);
  });
});
