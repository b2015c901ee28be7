// Users, sessions, ACLs and roles through the official JS SDK.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { Parse, createClasses, dropClasses, expectParseError, startServer, stopServer, uniqueName } from './harness.mjs';

const Note = uniqueName('SdkNote');
const name = () => `u_${randomBytes(4).toString('hex')}`;

async function newUser(extra = {}) {
  const user = new Parse.User();
  user.set('username', name());
  user.set('password', 'pw-1234');
  for (const [k, v] of Object.entries(extra)) user.set(k, v);
  await user.signUp();
  return user;
}

before(async () => {
  await startServer();
  Parse.User.enableUnsafeCurrentUser();
  await createClasses(Note);
});

after(async () => {
  await Parse.User.logOut().catch(() => {});
  await dropClasses(Note);
  await stopServer();
});

describe('sign-up, log-in, log-out', () => {
  test('signUp makes the current user with a revocable session', async () => {
    const user = await newUser({ email: `${name()}@example.com` });
    assert.ok(user.id);
    assert.match(user.getSessionToken(), /^r:/);
    assert.equal(Parse.User.current().id, user.id);
    assert.equal(user.get('password'), undefined);
    const session = await Parse.Session.current();
    assert.equal(session.getSessionToken(), user.getSessionToken());
    assert.equal(session.get('createdWith').action, 'signup');
  });

  test('logIn with the right password, and one error for every wrong one', async () => {
    const user = await newUser();
    const username = user.get('username');
    await Parse.User.logOut();
    const back = await Parse.User.logIn(username, 'pw-1234');
    assert.equal(back.id, user.id);
    assert.equal(Parse.User.current().id, user.id);
    for (const [u, p] of [[username, 'wrong'], [name(), 'pw-1234']]) {
      const err = await expectParseError(() => Parse.User.logIn(u, p));
      assert.equal(err.code, Parse.Error.OBJECT_NOT_FOUND);
      assert.equal(err.message, 'Invalid username/password.');
    }
  });

  test('duplicate usernames and emails are refused', async () => {
    const email = `${name()}@example.com`;
    const first = await newUser({ email });
    const dup = new Parse.User({ username: first.get('username').toUpperCase(), password: 'x' });
    assert.equal((await expectParseError(() => dup.signUp())).code, Parse.Error.USERNAME_TAKEN);
    const dupEmail = new Parse.User({ username: name(), password: 'x', email: email.toUpperCase() });
    assert.equal((await expectParseError(() => dupEmail.signUp())).code, Parse.Error.EMAIL_TAKEN);
  });

  test('become restores a user from a token; logOut revokes it', async () => {
    const user = await newUser();
    const token = user.getSessionToken();
    await newUser(); // someone else is current now
    const again = await Parse.User.become(token);
    assert.equal(again.id, user.id);
    await Parse.User.logOut();
    const err = await expectParseError(() => Parse.User.become(token));
    assert.equal(err.code, Parse.Error.INVALID_SESSION_TOKEN);
  });

  test('a user saves their own fields, and a new password', async () => {
    const user = await newUser();
    user.set('nickname', 'neo');
    user.set('password', 'pw-5678');
    await user.save();
    const username = user.get('username');
    await Parse.User.logOut();
    await expectParseError(() => Parse.User.logIn(username, 'pw-1234'));
    const back = await Parse.User.logIn(username, 'pw-5678');
    assert.equal(back.get('nickname'), 'neo');
  });

  test('a user signed up with an empty ACL can still log in and change itself', async () => {
    const user = new Parse.User();
    const username = name();
    user.set('username', username);
    user.set('password', 'pw-1234');
    user.setACL(new Parse.ACL());
    await user.signUp();
    await Parse.User.logOut();
    const back = await Parse.User.logIn(username, 'pw-1234');
    assert.equal(back.id, user.id);
    assert.equal(back.getACL().getReadAccess(user.id), true);
    assert.equal(back.getACL().getWriteAccess(user.id), true);
    back.set('nick', 'me');
    await back.save();
  });

  test('a user cannot change another user', async () => {
    const alice = await newUser();
    await newUser(); // bob is current now
    alice.set('nickname', 'hacked');
    const err = await expectParseError(() => alice.save());
    assert.equal(err.code, Parse.Error.SESSION_MISSING);
  });
});

describe('ACLs and roles', () => {
  test('queries as different users return only what each may read', async () => {
    const alice = await newUser();
    const aliceToken = alice.getSessionToken();
    const priv = new Parse.Object(Note);
    priv.set('text', 'alice only');
    priv.setACL(new Parse.ACL(alice));
    await priv.save(null, { sessionToken: aliceToken });
    const pub = new Parse.Object(Note);
    pub.set('text', 'everyone');
    await pub.save(null, { sessionToken: aliceToken });

    const bob = await newUser();
    const seenByBob = await new Parse.Query(Note).find({ sessionToken: bob.getSessionToken() });
    assert.deepEqual(seenByBob.map((n) => n.get('text')).sort(), ['everyone']);
    const seenByAlice = await new Parse.Query(Note).find({ sessionToken: aliceToken });
    assert.deepEqual(seenByAlice.map((n) => n.get('text')).sort(), ['alice only', 'everyone']);
    priv.set('text', 'bob was here');
    const err = await expectParseError(() => priv.save(null, { sessionToken: bob.getSessionToken() }));
    assert.equal(err.code, Parse.Error.OBJECT_NOT_FOUND);
  });

  test('a role without a name or an ACL is refused by the server (111)', async () => {
    const acl = new Parse.ACL();
    const nameless = new Parse.Role();
    nameless.setACL(acl);
    let err = await expectParseError(() => nameless.save(null, { useMasterKey: true }));
    assert.equal(err.code, Parse.Error.INCORRECT_TYPE);
    assert.equal(err.message, 'name is required.');
    const aclless = new Parse.Role();
    aclless.set('name', `noacl_${randomBytes(3).toString('hex')}`);
    err = await expectParseError(() => aclless.save(null, { useMasterKey: true }));
    assert.equal(err.code, Parse.Error.INCORRECT_TYPE);
    assert.equal(err.message, 'ACL is required.');
  });

  test('a role grants its members, and members of child roles, access', async () => {
    const member = await newUser();
    const roleACL = new Parse.ACL();
    roleACL.setPublicReadAccess(true);
    const editors = new Parse.Role(`editors_${randomBytes(3).toString('hex')}`, roleACL);
    editors.getUsers().add(member);
    await editors.save(null, { useMasterKey: true });
    const readers = new Parse.Role(`readers_${randomBytes(3).toString('hex')}`, roleACL);
    readers.getRoles().add(editors);
    await readers.save(null, { useMasterKey: true });

    const doc = new Parse.Object(Note);
    doc.set('text', 'for readers');
    const acl = new Parse.ACL();
    acl.setRoleReadAccess(readers, true);
    doc.setACL(acl);
    await doc.save(null, { useMasterKey: true });

    const got = await new Parse.Query(Note).get(doc.id, { sessionToken: member.getSessionToken() });
    assert.equal(got.get('text'), 'for readers');
    const outsider = await newUser();
    const err = await expectParseError(() =>
      new Parse.Query(Note).get(doc.id, { sessionToken: outsider.getSessionToken() }));
    assert.equal(err.code, Parse.Error.OBJECT_NOT_FOUND);
  });
});
