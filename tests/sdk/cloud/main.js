// Parse Server's JavaScript twin of the cloud code in tests/cloud_app (the parts the SDK suite
// uses), so that tests/sdk/cloud.test.mjs can run against Parse Server itself:
// start Parse Server with `cloud: '<repo>/tests/sdk/cloud/main.js'`.

Parse.Cloud.define('hello', (request) => `Hello ${request.params.name || 'world'}`);

Parse.Cloud.define('echoTypes', (request) => {
  const { when, pointer } = request.params;
  const object = Parse.Object.fromJSON({ className: 'CloudThing', objectId: 'thing1', a: 1 });
  return {
    whenIsDatetime: when instanceof Date,
    when,
    pointerClass: pointer ? pointer.className : null,
    pointerId: pointer ? pointer.id : null,
    object,
    now: new Date('2020-01-02T03:04:05.678Z'),
  };
});

Parse.Cloud.define('fail', () => {
  throw new Parse.Error(141, 'custom failure');
});

// A function returning undefined answers {}, one returning null {"result": null} (Python: no
// `return <value>` vs `return None`); a plain thrown error answers 141 with its message.
Parse.Cloud.define('noReturn', () => {});
Parse.Cloud.define('nothing', () => null);
Parse.Cloud.define('plainError', () => {
  throw new Error('plain message');
});

Parse.Cloud.define('needsUser', (request) => request.user.id, { requireUser: true });

Parse.Cloud.define('needsMaster', () => 'ok', { requireMaster: true });

Parse.Cloud.beforeSave('CloudScore', (request) => {
  const obj = request.object;
  if ((obj.get('score') || 0) < 0) {
    throw new Parse.Error(142, 'score must be >= 0');
  }
  obj.set('checked', true);
  if (obj.get('name') === 'shout') obj.set('name', 'SHOUT');
  if (obj.get('dropMe') !== undefined) obj.unset('dropMe');
  if (obj.get('bump')) obj.increment('bumps', 10);
  obj.set('sawOriginal', request.original ? request.original.get('score') : null);
  obj.set('existed', obj.existed());
  obj.set('sawMaster', request.master);
});

Parse.Cloud.beforeDelete('CloudScore', (request) => {
  if (request.object.get('protected')) {
    throw new Parse.Error(119, 'this score is protected');
  }
});

Parse.Cloud.beforeFind('CloudScore', (request) => {
  request.query.notEqualTo('hidden', true);
});

Parse.Cloud.afterFind('CloudScore', (request) => {
  for (const obj of request.objects) obj.set('decorated', true);
  return request.objects;
});

Parse.Cloud.beforeLogin((request) => {
  const name = request.object.get('username') || '';
  if (name.startsWith('cloudblocked_')) {
    throw new Parse.Error(119, 'Access denied, you have been banned.');
  }
});

Parse.Cloud.job('jobEcho', async (request) => {
  request.message(`params ${Object.keys(request.params).sort()}`);
  return `done ${request.params.n}`;
});

// One CloudCall object per run: tests/sdk/idempotency.test.mjs counts them.
Parse.Cloud.define('recordCall', async (request) => {
  const call = new Parse.Object('CloudCall');
  call.set('marker', request.params.marker);
  await call.save(null, { useMasterKey: true });
  return 'recorded';
});
