'use strict';
// Cloud code for bench/cloud.py (Parse Server side); bench/cloud/main.py does the same in Python.
// No-op triggers on BenchCloud (BenchPlain has none) and two small functions.

Parse.Cloud.beforeSave('BenchCloud', () => {});

Parse.Cloud.afterSave('BenchCloud', () => {});

Parse.Cloud.define('noop', () => ({ ok: true }));

Parse.Cloud.define('echo', (request) => request.params.text);
