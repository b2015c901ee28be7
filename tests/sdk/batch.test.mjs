// Transactional batches through the official JS SDK: Parse.Object.saveAll and destroyAll with
// { transaction: true } write all of their objects or none.
//
// A failed transactional batch is answered with a 500, which the SDK retries (REQUEST_ATTEMPT_LIMIT
// times, with a growing delay) before it rejects: the failing tests make one attempt only.
// Fields are created before the transactions: Parse Server on PostgreSQL deadlocks on a
// transactional batch that adds a field to a class it also writes.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { Parse, createClasses, dropClasses, startServer, stopServer, uniqueName } from './harness.mjs';

const Thing = uniqueName('SdkBatch');
const MASTER = { useMasterKey: true };
const attempts = Parse.CoreManager.get('REQUEST_ATTEMPT_LIMIT');

const thing = (n) => new Parse.Object(Thing).set({ n });
const stored = async () => (await new Parse.Query(Thing).ascending('n').find(MASTER)).map((o) => o.get('n'));

before(async () => {
  await startServer();
  await createClasses(Thing);
  const seed = thing(0);
  await seed.save();
  await seed.destroy();
});

afterEach(async () => {
  Parse.CoreManager.set('REQUEST_ATTEMPT_LIMIT', attempts);
  await Parse.Object.destroyAll(await new Parse.Query(Thing).find(MASTER), MASTER);
});

after(async () => {
  await dropClasses(Thing);
  await stopServer();
});

describe('saveAll with transaction', () => {
  test('saves every object', async () => {
    const objects = [thing(1), thing(2), thing(3)];
    await Parse.Object.saveAll(objects, { transaction: true });
    assert.ok(objects.every((o) => typeof o.id === 'string'));
    assert.deepEqual(await stored(), [1, 2, 3]);
  });

  test('creates and updates together', async () => {
    const first = thing(1);
    await first.save();
    first.increment('n', 10);
    await Parse.Object.saveAll([first, thing(2)], { transaction: true });
    assert.deepEqual(await stored(), [2, 11]);
  });

  test('saves none when one fails', async () => {
    const first = thing(1);
    await first.save();
    Parse.CoreManager.set('REQUEST_ATTEMPT_LIMIT', 1);
    first.increment('n', 10);
    const bad = new Parse.Object(Thing).set({ n: 'not a number' });
    const error = await Parse.Object.saveAll([first, thing(2), bad], { transaction: true }).then(
      () => assert.fail('the transaction should fail'), (err) => err);
    // The SDK rejects with one error per object of the failed batch.
    assert.ok(Array.isArray(error) && error.length > 0);
    for (const err of error) {
      assert.ok(err instanceof Parse.Error);
      assert.equal(err.message, 'Internal server error.');
    }
    assert.deepEqual(await stored(), [1]);
  });

  test('without transaction, the others are saved', async () => {
    const bad = new Parse.Object(Thing).set({ n: 'not a number' });
    await assert.rejects(Parse.Object.saveAll([thing(1), bad, thing(2)]));
    assert.deepEqual(await stored(), [1, 2]);
  });
});

describe('destroyAll with transaction', () => {
  test('destroys every object', async () => {
    const objects = [thing(1), thing(2), thing(3)];
    await Parse.Object.saveAll(objects);
    await Parse.Object.destroyAll(objects.slice(0, 2), { transaction: true });
    assert.deepEqual(await stored(), [3]);
  });

  test('destroys none when one may not be destroyed', async () => {
    const open = [thing(1), thing(2)];
    const locked = thing(3);
    locked.setACL(new Parse.ACL()); // only the master key may write it
    await Parse.Object.saveAll([...open, locked]);
    Parse.CoreManager.set('REQUEST_ATTEMPT_LIMIT', 1);
    const error = await Parse.Object.destroyAll([...open, locked], { transaction: true }).then(
      () => assert.fail('the transaction should fail'), (err) => err);
    assert.ok(error instanceof Parse.Error);
    assert.deepEqual(await stored(), [1, 2, 3]);
  });
});
