// Parse.File through the official JS SDK: saving (base64 and byte arrays), the URL served,
// getData, file fields on objects and queries, and deleting with the master key.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  Parse,
  createClasses,
  dropClasses,
  expectParseError,
  startServer,
  stopServer,
  uniqueName,
} from './harness.mjs';

const Doc = uniqueName('SdkDoc');
const UNIQUE = /^[0-9a-f]{32}_/;
let session; // { sessionToken } of a user: Node's SDK keeps no current user

async function download(url) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

before(async () => {
  await startServer();
  await createClasses(Doc);
  // Parse Server 9 lets only logged-in users upload by default (fileUpload.enableForPublic false).
  const user = await Parse.User.signUp(uniqueName('filer'), 'secret-pw');
  session = { sessionToken: user.getSessionToken() };
});

after(async () => {
  await dropClasses(Doc);
  await stopServer();
});

describe('saving files', () => {
  test('base64 data: a unique name and a URL that serves the bytes', async () => {
    const file = new Parse.File('hello.txt', { base64: Buffer.from('hello, files').toString('base64') });
    await file.save(session);
    assert.match(file.name(), UNIQUE);
    assert.ok(file.name().endsWith('_hello.txt'));
    assert.ok(file.url().endsWith(`/files/${Parse.applicationId}/${encodeURIComponent(file.name())}`));
    const got = await download(file.url());
    assert.equal(got.status, 200);
    assert.equal(got.body.toString(), 'hello, files');
    assert.match(got.type, /^text\/plain/);
  });

  test('a byte array, with its content type giving the extension', async () => {
    const bytes = [0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3, 255];
    const file = new Parse.File('picture', bytes, 'image/png');
    await file.save(session);
    assert.ok(file.name().endsWith('_picture.png'));
    const got = await download(file.url());
    assert.deepEqual([...got.body], bytes);
    assert.equal(got.type, 'image/png');
  });

  test('getData reads a saved file back through its URL', async () => {
    const data = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
    const saved = await new Parse.File('blob.bin', { base64: data.toString('base64') }).save(session);
    const copy = Parse.File.fromJSON({ __type: 'File', name: saved.name(), url: saved.url() });
    assert.equal(await copy.getData(), data.toString('base64'));
  });

  test('the public may not upload; refused extensions are refused', async () => {
    const pub = await expectParseError(() => new Parse.File('p.txt', { base64: 'eA==' }).save());
    assert.equal(pub.code, 130);
    assert.equal(pub.message, 'File upload by public is disabled.');
    const err = await expectParseError(() => new Parse.File('page.html', { base64: 'eA==' }).save(session));
    assert.equal(err.code, 130);
    assert.equal(err.message, 'File upload of extension html is disabled.');
    const bad = await expectParseError(() => new Parse.File('bad$name.txt', { base64: 'eA==' }).save(session));
    assert.equal(bad.code, Parse.Error.INVALID_FILE_NAME);
  });
});

describe('files on objects', () => {
  test('a File field keeps name and URL, and queries find it', async () => {
    const file = await new Parse.File('attached.txt', { base64: Buffer.from('on an object').toString('base64') }).save(session);
    const obj = new Parse.Object(Doc);
    obj.set('doc', file);
    obj.set('title', 'with a file');
    await obj.save();

    const copy = await new Parse.Query(Doc).get(obj.id);
    const field = copy.get('doc');
    assert.ok(field instanceof Parse.File);
    assert.equal(field.name(), file.name());
    assert.equal(field.url(), file.url());
    assert.equal(Buffer.from(await field.getData(), 'base64').toString(), 'on an object');

    // (equalTo with a File: Parse Server 9 on PostgreSQL answers 119, so it is not used here.)
    const withFile = await new Parse.Query(Doc).exists('doc').equalTo('title', 'with a file').find();
    assert.deepEqual(withFile.map((o) => o.id), [obj.id]);
  });
});

describe('deleting files', () => {
  test('destroy (with the master key); the URL then answers 404', async () => {
    const file = await new Parse.File('doomed.txt', { base64: Buffer.from('bye').toString('base64') }).save(session);
    assert.equal((await download(file.url())).status, 200);
    await file.destroy();
    const got = await download(file.url());
    assert.equal(got.status, 404);
    assert.equal(got.body.toString(), 'File not found.');
  });

  test('destroy without the master key is refused', async () => {
    const file = await new Parse.File('kept.txt', { base64: 'eA==' }).save(session);
    // Parse.File#destroy uses the master key unless told otherwise.
    const err = await expectParseError(() => file.destroy({ useMasterKey: false }));
    assert.ok(err);
    assert.equal((await download(file.url())).status, 200);
  });
});
