// Password reset and verification-email requests through the official JS SDK.
// The server runs with its defaults: no email verification; Bastion mails through its development
// mailer. Parse Server 9 without an email adapter refuses both requests (code 1): the tests skip then.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, expectParseError, startServer, stopServer } from './harness.mjs';

const name = () => `m_${randomBytes(4).toString('hex')}`;
let noMailer = false;

before(async () => {
  await startServer();
  try {
    await Parse.User.requestPasswordReset('probe-nobody@example.com');
  } catch (err) {
    noMailer = err.code === Parse.Error.INTERNAL_SERVER_ERROR;
  }
});

after(async () => {
  await stopServer();
});

describe('requestPasswordReset', () => {
  test('resolves for a user and, alike, for an unknown email', async (t) => {
    if (noMailer) return t.skip('the server has no email adapter');
    const email = `${name()}@example.com`;
    const user = new Parse.User();
    await user.signUp({ username: name(), password: 'pw', email });
    assert.equal(user.get('emailVerified'), undefined); // no verification asked by default
    await Parse.User.requestPasswordReset(email);
    await Parse.User.requestPasswordReset(`${name()}@example.com`); // no account enumeration
    await Parse.User.logOut();
    // The request changes nothing until the link is used: the old password still works.
    const again = await Parse.User.logIn(user.get('username'), 'pw');
    assert.equal(again.id, user.id);
    await Parse.User.logOut();
  });

  test('refuses a missing or non-string email', async (t) => {
    if (noMailer) return t.skip('the server has no email adapter');
    const missing = await expectParseError(() => Parse.User.requestPasswordReset(undefined));
    assert.equal(missing.code, Parse.Error.EMAIL_MISSING);
    assert.equal(missing.message, 'you must provide an email');
    const number = await expectParseError(() => Parse.User.requestPasswordReset(5));
    assert.equal(number.code, Parse.Error.INVALID_EMAIL_ADDRESS);
    assert.equal(number.message, 'you must provide a valid email string');
  });
});

describe('requestEmailVerification', () => {
  test('resolves for known and unknown emails, refuses a missing one', async (t) => {
    if (noMailer) return t.skip('the server has no email adapter');
    const email = `${name()}@example.com`;
    await new Parse.User().signUp({ username: name(), password: 'pw', email });
    await Parse.User.logOut();
    await Parse.User.requestEmailVerification(email);
    await Parse.User.requestEmailVerification(`${name()}@example.com`);
    const missing = await expectParseError(() => Parse.User.requestEmailVerification(''));
    assert.equal(missing.code, Parse.Error.EMAIL_MISSING);
  });
});
