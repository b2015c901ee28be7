// Geo queries through the official JS SDK: near, withinRadians/Kilometers/Miles (sorted and
// unsorted), withinGeoBox, withinPolygon, polygonContains; GeoPoint and Polygon fields saved and
// read back.
//
// Against Parse Server on PostgreSQL, near and the sorted within* need PostGIS (ST_DistanceSphere).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Parse, createClasses, dropClasses, expectParseError, startServer, stopServer, uniqueName } from './harness.mjs';

const Place = uniqueName('SdkPlace');
const Area = uniqueName('SdkArea');

const gp = (lat, lng) => new Parse.GeoPoint(lat, lng);
const ORIGIN = gp(0, 0);
// name -> [latitude, longitude]
const POINTS = { a: [0, 0], b: [1, 1], c: [5, 5], d: [10, 10], e: [-5, 3], f: [0, 10], g: [40, -120], h: [0.5, 0.2] };
const NEAREST_TO_ORIGIN = ['a', 'h', 'b', 'e', 'c', 'f', 'd', 'g'];

const q = () => new Parse.Query(Place);
const orderedNames = async (query) => (await query.find()).map((o) => o.get('name'));
const names = async (query) => (await orderedNames(query)).sort();

before(async () => {
  await startServer();
  await createClasses(Place, Area);
  const objects = Object.entries(POINTS).map(([name, [lat, lng]]) =>
    new Parse.Object(Place).set({ name, loc: gp(lat, lng) }));
  objects.push(new Parse.Object(Place).set({ name: 'noloc' }));
  await Parse.Object.saveAll(objects);
  await Parse.Object.saveAll([
    new Parse.Object(Area).set({
      name: 'sq', shape: new Parse.Polygon([[0, 0], [0, 10], [10, 10], [10, 0]]) }),
    new Parse.Object(Area).set({
      name: 'tri', shape: new Parse.Polygon([[0, 0], [20, 0], [0, 5]]) }),
  ]);
});

after(async () => {
  await dropClasses(Place, Area);
  await stopServer();
});

describe('geo values', () => {
  test('a GeoPoint reads back as a Parse.GeoPoint', async () => {
    const h = await q().equalTo('name', 'h').first();
    const loc = h.get('loc');
    assert.ok(loc instanceof Parse.GeoPoint);
    assert.equal(loc.latitude, 0.5);
    assert.equal(loc.longitude, 0.2);
    assert.deepEqual(await names(q().equalTo('loc', gp(1, 1))), ['b']);
  });

  test('a Polygon reads back closed, as a Parse.Polygon', async () => {
    const tri = await new Parse.Query(Area).equalTo('name', 'tri').first();
    const shape = tri.get('shape');
    assert.ok(shape instanceof Parse.Polygon);
    assert.deepEqual(shape.coordinates, [[0, 0], [20, 0], [0, 5], [0, 0]]);
    assert.equal(shape.containsPoint(gp(15, 1)), true);
  });
});

describe('near and within a distance', () => {
  test('near sorts nearest first and skips objects without a point', async () => {
    assert.deepEqual(await orderedNames(q().near('loc', ORIGIN)), NEAREST_TO_ORIGIN);
  });

  test('near wins over ascending(): Parse Server sorts by distance', async () => {
    assert.deepEqual(await orderedNames(q().near('loc', ORIGIN).ascending('name')), NEAREST_TO_ORIGIN);
  });

  test('near with limit, skip and count', async () => {
    assert.deepEqual(await orderedNames(q().near('loc', ORIGIN).skip(1).limit(2)), ['h', 'b']);
    assert.equal(await q().withinRadians('loc', ORIGIN, 0.1).count(), 3);
  });

  test('withinRadians, sorted and unsorted', async () => {
    assert.deepEqual(await orderedNames(q().withinRadians('loc', ORIGIN, 0.1)), ['a', 'h', 'b']);
    assert.deepEqual(await orderedNames(q().withinRadians('loc', ORIGIN, 0.1, false).descending('name')), ['h', 'b', 'a']);
  });

  test('withinKilometers (earth radius 6371 km), sorted and unsorted', async () => {
    // e is 648 km from the origin, c 786 km.
    assert.deepEqual(await orderedNames(q().withinKilometers('loc', ORIGIN, 700)), ['a', 'h', 'b', 'e']);
    assert.deepEqual(await names(q().withinKilometers('loc', ORIGIN, 700, false)), ['a', 'b', 'e', 'h']);
    assert.equal(await q().withinKilometers('loc', gp(10, 10), 5).count(), 1);
  });

  test('withinMiles (earth radius 3958.8 miles), sorted and unsorted', async () => {
    assert.deepEqual(await orderedNames(q().withinMiles('loc', ORIGIN, 500)), ['a', 'h', 'b', 'e', 'c']);
    assert.deepEqual(await orderedNames(q().withinMiles('loc', ORIGIN, 500, false).ascending('name')),
      ['a', 'b', 'c', 'e', 'h']);
  });

  test('near combined with another constraint, and inside Parse.Query.or', async () => {
    assert.deepEqual(await orderedNames(q().near('loc', ORIGIN).containedIn('name', ['g', 'b', 'noloc'])), ['b', 'g']);
    const either = Parse.Query.or(q().withinKilometers('loc', ORIGIN, 100), q().equalTo('name', 'g'));
    assert.deepEqual(await orderedNames(either.ascending('name')), ['a', 'g', 'h']);
  });
});

describe('boxes and polygons', () => {
  test('withinGeoBox', async () => {
    assert.deepEqual(await names(q().withinGeoBox('loc', gp(0, 0), gp(5, 5))), ['a', 'b', 'c', 'h']);
    assert.deepEqual(await names(q().withinGeoBox('loc', gp(-6, 2), gp(-4, 4))), ['e']);
  });

  test('withinPolygon with GeoPoints (the boundary counts)', async () => {
    const square = [gp(0, 0), gp(0, 10), gp(10, 10), gp(10, 0)];
    assert.deepEqual(await names(q().withinPolygon('loc', square)), ['a', 'b', 'c', 'd', 'f', 'h']);
    assert.deepEqual(await names(q().withinPolygon('loc', [gp(-6, 2), gp(-6, 4), gp(-4, 4), gp(-4, 2)])), ['e']);
  });

  test('withinPolygon with fewer than 3 points is refused', async () => {
    const err = await expectParseError(() => q().withinPolygon('loc', [gp(0, 0), gp(1, 1)]).find());
    assert.equal(err.code, Parse.Error.INVALID_JSON);
  });

  test('polygonContains', async () => {
    const areas = (point) => new Parse.Query(Area).polygonContains('shape', point);
    assert.deepEqual(await names(areas(gp(1, 1))), ['sq', 'tri']);
    assert.deepEqual(await names(areas(gp(15, 1))), ['tri']);
    assert.deepEqual(await names(areas(gp(1, 15))), []);
  });
});
