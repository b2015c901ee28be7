// Full-text search through the official JS SDK: fullText (terms, operators, stemming, stop words,
// languages, options), sortByTextScore / select('$score') and the score each object carries.
// Answers are Parse Server 9 on PostgreSQL's (to_tsquery and ts_rank_cd(..., 32)).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Parse, createClasses, dropClasses, expectParseError, startServer, stopServer, uniqueName } from './harness.mjs';

const Doc = uniqueName('SdkText');
// Parse Server's own test data, and a few more.
const SUBJECTS = {
  coffee: 'coffee',
  shopping: 'Coffee Shopping',
  cake: 'Baking a cake',
  baking: 'baking',
  leche_accent: 'Café Con Leche',
  syrniki: 'Сырники',
  cream: 'coffee and cream',
  leche: 'Cafe con Leche',
  runners: 'The runners were running',
  strong: 'Strong coffee, strong coffee and more coffee',
};

const q = () => new Parse.Query(Doc);
const orderedNames = async (query) => (await query.find()).map((o) => o.get('name'));
const names = async (query) => (await orderedNames(query)).sort();

before(async () => {
  await startServer();
  await createClasses(Doc);
  await Parse.Object.saveAll(Object.entries(SUBJECTS).map(([name, subject], i) =>
    new Parse.Object(Doc).set({ name, subject, n: i % 2 })));
});

after(async () => {
  await dropClasses(Doc);
  await stopServer();
});

describe('fullText', () => {
  test('a word, in any case', async () => {
    assert.deepEqual(await names(q().fullText('subject', 'coffee')), ['coffee', 'cream', 'shopping', 'strong']);
    assert.deepEqual(await names(q().fullText('subject', 'Coffee')), ['coffee', 'cream', 'shopping', 'strong']);
  });

  test('to_tsquery operators and quoted phrases', async () => {
    assert.deepEqual(await names(q().fullText('subject', 'coffee & cream')), ['cream']);
    assert.deepEqual(await names(q().fullText('subject', 'cream | cake')), ['cake', 'cream']);
    assert.deepEqual(await names(q().fullText('subject', 'coffee & !strong')), ['coffee', 'cream', 'shopping']);
    assert.deepEqual(await names(q().fullText('subject', "'strong coffee'")), ['strong']);
  });

  test('stemming and stop words', async () => {
    assert.deepEqual(await names(q().fullText('subject', 'running')), ['runners']);
    assert.deepEqual(await names(q().fullText('subject', 'bakes')), ['baking', 'cake']);
    assert.deepEqual(await names(q().fullText('subject', 'the')), []);
  });

  test('languages and options', async () => {
    assert.deepEqual(await names(q().fullText('subject', 'leche', { language: 'spanish' })), ['leche', 'leche_accent']);
    assert.deepEqual(await names(q().fullText('subject', 'CAFÉ', { diacriticSensitive: true })), ['leche_accent']);
    assert.deepEqual(await names(q().fullText('subject', 'сырники', { language: 'russian' })), ['syrniki']);
    assert.deepEqual(await names(q().fullText('subject', 'coffee', { caseSensitive: false })),
      ['coffee', 'cream', 'shopping', 'strong']);
  });

  test('with other constraints and count', async () => {
    assert.deepEqual(await names(q().fullText('subject', 'coffee').equalTo('n', 0)), ['coffee', 'cream']);
    assert.equal(await q().fullText('subject', 'coffee').count(), 4);
    const either = Parse.Query.or(q().fullText('subject', 'cake'), q().equalTo('name', 'leche'));
    assert.deepEqual(await names(either), ['cake', 'leche']);
  });

  test('options Parse Server on PostgreSQL refuses', async () => {
    let err = await expectParseError(() => q().fullText('subject', 'coffee', { caseSensitive: true }).find());
    assert.equal(err.code, Parse.Error.INVALID_JSON);
    assert.equal(err.message,
      'bad $text: $caseSensitive not supported, please use $regex or create a separate lower case column.');
    err = await expectParseError(() => q().fullText('subject', 'coffee', { diacriticSensitive: false }).find());
    assert.equal(err.code, Parse.Error.INVALID_JSON);
    err = await expectParseError(() => q().fullText('subject', 'leche', { language: true }).find());
    assert.equal(err.message, 'bad $text: $language, should be string');
  });
});

describe('score', () => {
  test('sortByTextScore: best first, each object carries its score', async () => {
    const found = await q().fullText('subject', 'coffee').sortByTextScore().find();
    assert.equal(found.length, 4);
    assert.equal(found[0].id && found[0].get('score'), 0.23076923);
    assert.deepEqual(found.slice(1).map((o) => o.get('score')), [0.09090909, 0.09090909, 0.09090909]);
    assert.equal(found[0].get('subject'), undefined); // only $score was selected
  });

  test('descending($score) and select of other keys', async () => {
    const found = await q().fullText('subject', 'coffee | cream').descending('$score').select('$score', 'name').find();
    const scores = found.map((o) => o.get('score'));
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    assert.deepEqual(found.slice(0, 2).map((o) => o.get('name')), ['strong', 'cream']);
    assert.equal(found[1].get('score'), 0.16666667);
  });
});
