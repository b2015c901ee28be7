// authData through the official JS SDK: anonymous users, logInWith, linking and unlinking.
// The server runs with its defaults (anonymous users on, no other provider configured).
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, expectParseError, rest, startServer, stopServer } from './harness.mjs';

const name = () => `a_${randomBytes(4).toString('hex')}`;

before(async () => {
  await startServer();
  Parse.User.enableUnsafeCurrentUser();
});

after(async () => {
  await Parse.User.logOut().catch(() => {});
  await stopServer();
});

describe('anonymous users', () => {
  test('AnonymousUtils.logIn makes a current user linked to anonymous', async () => {
    const user = await Parse.AnonymousUtils.logIn();
    assert.ok(user.id);
    assert.equal(Parse.User.current().id, user.id);
    assert.ok(Parse.AnonymousUtils.isLinked(user));
    assert.match(user.get('authData').anonymous.id, /^[0-9a-f-]{36}$/);
    assert.equal(user.get('username').length, 25);
    assert.match(user.getSessionToken(), /^r:/);
    const session = await Parse.Session.current();
    // Parse Server 9.10 records a sign-up with authData as a log-in with that provider.
    assert.deepEqual(session.get('createdWith'), { action: 'login', authProvider: 'anonymous' });
  });

  test('logInWith the same anonymous id comes back to the same user', async () => {
    const id = randomUUID();
    const first = await Parse.User.logInWith('anonymous', { authData: { id } });
    const token = first.getSessionToken();
    await Parse.User.logOut();
    const again = await Parse.User.logInWith('anonymous', { authData: { id } });
    assert.equal(again.id, first.id);
    assert.notEqual(again.getSessionToken(), token);
    assert.deepEqual(again.get('authData'), { anonymous: { id } });
  });

  test('setting a username and password converts the user and drops the anonymous link', async () => {
    const user = await Parse.AnonymousUtils.logIn();
    const anonymousId = user.get('authData').anonymous.id;
    const username = name();
    user.setUsername(username); // the SDK unlinks anonymous here (authData.anonymous = null)
    user.setPassword('pw-1234');
    await user.save();
    assert.ok(!Parse.AnonymousUtils.isLinked(user));
    const fetched = await Parse.User.current().fetch();
    assert.equal(fetched.get('authData'), undefined);
    await Parse.User.logOut();
    const back = await Parse.User.logIn(username, 'pw-1234');
    assert.equal(back.id, user.id);
    // The old anonymous id now makes someone new.
    await Parse.User.logOut();
    const stranger = await Parse.User.logInWith('anonymous', { authData: { id: anonymousId } });
    assert.notEqual(stranger.id, user.id);
  });
});

describe('linking', () => {
  test('_linkWith and _unlinkFrom on a password user', async () => {
    const user = new Parse.User();
    user.set('username', name());
    user.set('password', 'pw-1234');
    await user.signUp();
    const id = randomUUID();
    await user._linkWith('anonymous', { authData: { id } });
    assert.ok(user._isLinked('anonymous'));
    const linked = await new Parse.Query(Parse.User).get(user.id, { sessionToken: user.getSessionToken() });
    assert.deepEqual(linked.get('authData'), { anonymous: { id } });
    const token = user.getSessionToken();
    const viaProvider = await rest('POST', '/users', { authData: { anonymous: { id } } });
    assert.equal(viaProvider.status, 200);
    assert.equal(viaProvider.body.objectId, user.id);

    await user._unlinkFrom('anonymous');
    assert.ok(!user._isLinked('anonymous'));
    const unlinked = await new Parse.Query(Parse.User).get(user.id, { sessionToken: token });
    assert.equal(unlinked.get('authData'), undefined);
  });

  test('an id linked to another user is refused with 208', async () => {
    const id = randomUUID();
    const owner = await Parse.User.logInWith('anonymous', { authData: { id } });
    assert.ok(owner.id);
    await Parse.User.logOut();
    const other = new Parse.User();
    other.set('username', name());
    other.set('password', 'pw-1234');
    await other.signUp();
    const error = await expectParseError(() => other._linkWith('anonymous', { authData: { id } }));
    assert.equal(error.code, Parse.Error.ACCOUNT_ALREADY_LINKED);
    assert.equal(error.message, 'this auth is already used');
    const stored = await rest('GET', `/users/${other.id}`, undefined, { master: true });
    assert.equal(stored.body.authData, undefined);
  });

  test('a provider the server does not know is refused with 252', async () => {
    const user = new Parse.User();
    user.set('username', name());
    user.set('password', 'pw-1234');
    await user.signUp();
    const error = await expectParseError(() => user._linkWith('nosuchprovider', { authData: { id: 'x', id_token: 'y' } }));
    assert.equal(error.code, Parse.Error.UNSUPPORTED_SERVICE);
    const login = await expectParseError(() => Parse.User.logInWith('nosuchprovider', { authData: { id: 'x' } }));
    assert.equal(login.code, Parse.Error.UNSUPPORTED_SERVICE);
  });
});
