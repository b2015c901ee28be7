// Multi-factor authentication (the `mfa` auth adapter, TOTP) through the official JS SDK: enrolment
// with user.save / linkWith, log-in with Parse.User.logInWithAdditionalAuth, recovery codes, and
// turning MFA off with a code.
//
// The server needs `auth: {mfa: {options: ["TOTP"]}}` (period 30, 6 digits, SHA1). In Bastion mode
// the harness starts it so; against an external server set PARSE_MFA=1 once it is configured so
// (tests/sdk_runner/test_mfa_sdk.py does, for Bastion on each backend).
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, expectParseError, startServer, stopServer } from './harness.mjs';

const external = Boolean(process.env.PARSE_SERVER_URL) && !process.env.PARSE_MFA;
const MFA = { mfa: { options: ['TOTP'], digits: 6, period: 30, algorithm: 'SHA1' } };
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

before(async () => {
  if (external) return;
  await startServer({ args: ['--auth', JSON.stringify(MFA)] });
  Parse.User.enableUnsafeCurrentUser();
});

after(async () => {
  if (external) return;
  await Parse.User.logOut().catch(() => {});
  await stopServer();
});

function base32(bytes) {
  let bits = '';
  for (const byte of bytes) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i + 5 <= bits.length; i += 5) out += ALPHABET[parseInt(bits.slice(i, i + 5), 2)];
  return out;
}

function unbase32(text) {
  let bits = '';
  for (const char of text) bits += ALPHABET.indexOf(char).toString(2).padStart(5, '0');
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** The RFC 6238 code of `secret` for time step `step` (30 s, 6 digits, HMAC-SHA1). */
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', unbase32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 30_000);

async function newUser() {
  const username = `mfa_${randomBytes(5).toString('hex')}`;
  const password = `pw-${randomBytes(4).toString('hex')}`;
  const user = new Parse.User();
  user.set({ username, password });
  await user.signUp();
  return { user, username, password, secret: base32(randomBytes(20)), step: stepNow() };
}

describe('MFA with TOTP', { skip: external && 'the external server has no mfa adapter (set PARSE_MFA=1)' }, () => {
  test('enrol with user.save, then log in with the password and a code', async () => {
    const { user, username, password, secret, step } = await newUser();
    await user.save({ authData: { mfa: { secret, token: totp(secret, step) } } });
    const recovery = user.get('authDataResponse').mfa.recovery.split(', ');
    assert.equal(recovery.length, 2);
    const fetched = await user.fetch();
    assert.deepEqual(fetched.get('authData'), { mfa: { status: 'enabled' } });
    await Parse.User.logOut();

    const missing = await expectParseError(() => Parse.User.logIn(username, password));
    assert.equal(missing.code, Parse.Error.OTHER_CAUSE);
    assert.equal(missing.message, 'Missing additional authData mfa');
    const reused = await expectParseError(() =>
      Parse.User.logInWithAdditionalAuth(username, password, { mfa: { token: totp(secret, step) } }));
    assert.equal(reused.code, Parse.Error.SCRIPT_FAILED);
    assert.equal(reused.message, 'Invalid MFA token');

    const loggedIn = await Parse.User.logInWithAdditionalAuth(username, password,
      { mfa: { token: totp(secret, step + 1) } });
    assert.equal(loggedIn.id, user.id);
    assert.ok(loggedIn.getSessionToken());
    assert.deepEqual(loggedIn.get('authData'), { mfa: { status: 'enabled' } });
    assert.equal(Parse.User.current().id, user.id);
    await Parse.User.logOut();

    // The same code does not log in twice; a recovery code does, once.
    const again = await expectParseError(() =>
      Parse.User.logInWithAdditionalAuth(username, password, { mfa: { token: totp(secret, step + 1) } }));
    assert.equal(again.message, 'Invalid MFA token');
    const viaRecovery = await Parse.User.logInWithAdditionalAuth(username, password, { mfa: { token: recovery[0] } });
    assert.equal(viaRecovery.id, user.id);
    await Parse.User.logOut();
    const spent = await expectParseError(() =>
      Parse.User.logInWithAdditionalAuth(username, password, { mfa: { token: recovery[0] } }));
    assert.equal(spent.message, 'Invalid MFA token');
  });

  test('enrol with linkWith; unlinking is refused, turning off with a code works', async () => {
    const { user, username, password, secret, step } = await newUser();
    await user.linkWith('mfa', { authData: { secret, token: totp(secret, step) } });
    const recovery = user.get('authDataResponse').mfa.recovery.split(', ');
    assert.ok(user._isLinked('mfa'));

    const refused = await expectParseError(() => user._unlinkFrom('mfa'));
    assert.equal(refused.code, Parse.Error.SCRIPT_FAILED);
    const stillOn = await expectParseError(async () => {
      await Parse.User.logOut();
      await Parse.User.logIn(username, password);
    });
    assert.equal(stillOn.message, 'Missing additional authData mfa');

    const back = await Parse.User.logInWithAdditionalAuth(username, password, { mfa: { token: recovery[1] } });
    await back.save({ authData: { mfa: { token: recovery[0], disable: true } } });
    const fetched = await back.fetch();
    assert.equal(fetched.get('authData'), undefined);
    await Parse.User.logOut();
    const plain = await Parse.User.logIn(username, password);
    assert.equal(plain.id, user.id);
    await Parse.User.logOut();
  });

  test('secrets never come back in queries', async () => {
    const { user, secret, step } = await newUser();
    await user.save({ authData: { mfa: { secret, token: totp(secret, step) } } });
    const found = await new Parse.Query(Parse.User).equalTo('objectId', user.id).first();
    assert.deepEqual(found.get('authData'), { mfa: { status: 'enabled' } });
    const guessed = await expectParseError(() =>
      new Parse.Query(Parse.User).startsWith('authData.mfa.secret', secret.slice(0, 1)).find());
    assert.equal(guessed.code, Parse.Error.OPERATION_FORBIDDEN);
    // linkWith sends the whole authData back, MFA's status included (for anonymous the SDK then
    // sends it as null, as it strips anonymity): the save passes and MFA stays as it is.
    const sessionToken = user.getSessionToken();
    await user.fetch({ sessionToken });
    await user.linkWith('anonymous', { authData: { id: randomBytes(8).toString('hex') } }, { sessionToken });
    const raw = await new Parse.Query(Parse.User).get(user.id, { useMasterKey: true });
    assert.equal(raw.get('authData').mfa.secret, secret);
    await Parse.User.logOut();
  });
});
