// Apple and Google sign-in through the official JS SDK: Parse.User.logInWith('apple', …) and
// user.linkWith('google', …), with ID tokens signed by a local key set this file serves (loopback).
// The Bastion the harness starts gets an auth config pointing apple and google at that key set
// (jwksUri); against an external server (PARSE_SERVER_URL) the file skips: it cannot configure it.
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { Parse, expectParseError, startServer, stopServer } from './harness.mjs';

const external = Boolean(process.env.PARSE_SERVER_URL);
const APPLE_CLIENT = 'com.example.app';
const GOOGLE_CLIENT = 'google-client.apps.googleusercontent.com';

const keys = {
  apple: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  google: generateKeyPairSync('rsa', { modulusLength: 2048 }),
};
let keyServer = null;

const b64url = (data) => Buffer.from(data).toString('base64url');

function idToken(provider, claims) {
  const header = { alg: 'RS256', typ: 'JWT', kid: `${provider}-1` };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(input).sign(keys[provider].privateKey);
  return `${input}.${b64url(signature)}`;
}

function claims(provider, sub, extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  const iss = provider === 'apple' ? 'https://appleid.apple.com' : 'https://accounts.google.com';
  const aud = provider === 'apple' ? APPLE_CLIENT : GOOGLE_CLIENT;
  return { iss, aud, sub, iat: now, exp: now + 600, ...extra };
}

function serveKeys() {
  const server = createServer((req, res) => {
    const provider = req.url.slice(1); // /apple or /google
    if (!keys[provider]) {
      res.writeHead(404).end();
      return;
    }
    const jwk = { ...keys[provider].publicKey.export({ format: 'jwk' }), kid: `${provider}-1`, use: 'sig', alg: 'RS256' };
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const newId = () => `s${randomBytes(6).toString('hex')}`;

before(async () => {
  if (external) return;
  keyServer = await serveKeys();
  const base = `http://127.0.0.1:${keyServer.address().port}`;
  const auth = {
    apple: { clientId: APPLE_CLIENT, jwksUri: `${base}/apple` },
    google: { clientId: GOOGLE_CLIENT, jwksUri: `${base}/google` },
  };
  await startServer({ args: ['--auth', JSON.stringify(auth)] });
  Parse.User.enableUnsafeCurrentUser();
});

after(async () => {
  if (external) return;
  await Parse.User.logOut().catch(() => {});
  await stopServer();
  await new Promise((resolve) => keyServer.close(resolve));
});

describe('ID-token providers', { skip: external && 'the external server has no apple/google key set of ours' }, () => {
  test('logInWith apple signs up, then logs the same user in again', async () => {
    const id = newId();
    const user = await Parse.User.logInWith('apple', { authData: { id, token: idToken('apple', claims('apple', id)) } });
    assert.ok(user.id);
    assert.match(user.getSessionToken(), /^r:/);
    assert.equal(user.get('authData').apple.id, id);
    await Parse.User.logOut();
    const again = await Parse.User.logInWith('apple', {
      authData: { id, token: idToken('apple', claims('apple', id, { iat: Math.floor(Date.now() / 1000) - 5 })) },
    });
    assert.equal(again.id, user.id);
    assert.equal(Parse.User.current().id, user.id);
  });

  test('logInWith apple with a token for another app is refused', async () => {
    const id = newId();
    const token = idToken('apple', claims('apple', id, { aud: 'com.example.other' }));
    const error = await expectParseError(() => Parse.User.logInWith('apple', { authData: { id, token } }));
    assert.equal(error.code, Parse.Error.OBJECT_NOT_FOUND);
    assert.equal(error.message, `jwt audience invalid. expected: ${APPLE_CLIENT}`);
  });

  test('linkWith google adds Google to a password user, who can then sign in with it', async () => {
    const user = new Parse.User();
    user.set('username', newId());
    user.set('password', 'pw-1234');
    await user.signUp();
    const id = newId();
    await user.linkWith('google', { authData: { id, id_token: idToken('google', claims('google', id)) } });
    assert.equal(user.get('authData').google.id, id);
    await Parse.User.logOut();
    const back = await Parse.User.logInWith('google', {
      authData: { id, id_token: idToken('google', claims('google', id, { iat: Math.floor(Date.now() / 1000) - 5 })) },
    });
    assert.equal(back.id, user.id);
  });

  test('linkWith google with an expired token is refused and links nothing', async () => {
    const user = new Parse.User();
    user.set('username', newId());
    user.set('password', 'pw-1234');
    await user.signUp();
    const id = newId();
    const expired = idToken('google', claims('google', id, { exp: Math.floor(Date.now() / 1000) - 5 }));
    const error = await expectParseError(() => user.linkWith('google', { authData: { id, id_token: expired } }));
    // Parse Server 9.10 answers any refused link as 206, whatever the provider said.
    assert.equal(error.code, Parse.Error.SESSION_MISSING);
    assert.equal(error.message, 'Permission denied');
    const fetched = await new Parse.Query(Parse.User).get(user.id, { sessionToken: user.getSessionToken() });
    assert.equal((fetched.get('authData') || {}).google, undefined);
  });
});
