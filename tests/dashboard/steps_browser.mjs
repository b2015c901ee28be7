// The data browser: the app, the class list, a class (page, sort, filter), rows, cells of every type,
// columns, classes, export, and the class-level-permission editor. Each step checks its effect through REST.

import fs from 'node:fs';
import path from 'node:path';
import {
  assert, assertEqual, bodyText, cell, clickText, eventually, go, menu, openEditor, rowIds, selectAllAndType, sleep,
  waitForText,
} from './ui.mjs';

const SCORES = 120; // more than a page of 100
const ITEM_FIELDS = {
  str: { type: 'String' }, num: { type: 'Number' }, bool: { type: 'Boolean' }, date: { type: 'Date' },
  obj: { type: 'Object' }, arr: { type: 'Array' }, geo: { type: 'GeoPoint' }, poly: { type: 'Polygon' },
  file: { type: 'File' }, ptr: { type: 'Pointer', targetClass: 'Score' }, rel: { type: 'Relation', targetClass: 'Score' },
};
const state = {};

async function seed({ rest, artifacts }) {
  state.artifacts = artifacts;
  await rest.post('/schemas/Score', { className: 'Score', fields: { n: { type: 'Number' }, name: { type: 'String' } } });
  const requests = [];
  for (let n = 0; n < SCORES; n++) {
    requests.push({ method: 'POST', path: '/parse/classes/Score', body: { n, name: `player ${n}` } });
  }
  for (let i = 0; i < requests.length; i += 50) await rest.post('/batch', { requests: requests.slice(i, i + 50) });
  await rest.post('/schemas/Item', { className: 'Item', fields: ITEM_FIELDS });
  state.user = await rest.post('/users', { username: 'ada', password: 'lovelace-1815', email: 'ada@example.com' });
  state.role = await rest.post('/roles', {
    name: 'editors', ACL: { '*': { read: true } },
    users: { __op: 'AddRelation', objects: [{ __type: 'Pointer', className: '_User', objectId: state.user.objectId }] },
  });
  state.scores = await rest.find('Score', {}, '&order=n&limit=1000');
  assertEqual(state.scores.length, SCORES, 'seeded scores');
}

async function openApp({ page, dashboardURL, appName }) {
  await go(page, `${dashboardURL}/apps`);
  await clickText(page, appName);
  await eventually(() => page.url().includes('/browser'), 'the app opens on its data browser');
}

async function classListWithCounts({ page }) {
  // The sidebar lists each class with its count, asked of the server with count=1.
  await eventually(async () => {
    const text = await bodyText(page);
    return /Score\s*120/.test(text) && /Item\s*0/.test(text) && /User\s*1/.test(text) && /Role\s*1/.test(text);
  }, 'Score 120, Item 0, User 1 and Role 1 in the class list');
}

async function openPageSortFilter({ page, appURL }) {
  await go(page, `${appURL}/browser/Score`);
  await waitForText(page, `${SCORES} objects`);
  // Newest first by default: one page of 100.
  await eventually(async () => (await rowIds(page)).length === 100, '100 rows on the first page');
  await clickText(page, '⮕');
  await eventually(async () => (await rowIds(page)).length === SCORES - 100, 'the rest on the second page');
  const secondPage = await rowIds(page);
  assertEqual(new Set(secondPage).size, SCORES - 100, 'distinct rows on page 2');
  // Sort by n ascending: click the header until the first row is n = 0.
  await go(page, `${appURL}/browser/Score`);
  await clickText(page, 'n');
  await eventually(async () => (await rowIds(page))[0] === state.scores[0].objectId
    || (await rowIds(page))[0] === state.scores[SCORES - 1].objectId, 'sorted by n');
  const first = (await rowIds(page))[0];
  if (first !== state.scores[0].objectId) {
    await clickText(page, 'n');
    await eventually(async () => (await rowIds(page))[0] === state.scores[0].objectId, 'sorted by n ascending');
  }
  // Filter: the dashboard keeps its filters in the URL; n = 7 matches one row.
  const filters = JSON.stringify([{ field: 'n', constraint: 'eq', compareTo: 7 }]);
  await go(page, `${appURL}/browser/Score?filters=${encodeURIComponent(filters)}`);
  await eventually(async () => {
    const ids = await rowIds(page);
    return ids.length === 1 && ids[0] === state.scores[7].objectId;
  }, 'the filter n = 7 shows one row');
}

async function addRow({ page, rest, appURL }) {
  await go(page, `${appURL}/browser/Item`);
  await clickText(page, 'Add Row');
  // A draft row: fill one cell, then "Add" saves it.
  await openEditor(page, '(undefined)', 'str');
  await selectAllAndType(page, 'first');
  await page.keyboard.press('Enter');
  await clickText(page, 'Add');
  const saved = await eventually(async () => (await rest.find('Item'))[0], 'the added row is stored');
  assertEqual(saved.str, 'first', 'the added row\'s str');
  state.item = saved.objectId;
  await eventually(async () => (await rowIds(page)).includes(state.item), 'the added row shows its objectId');
}

/** Types `text` into the cell's editor and presses Enter; returns the stored object once `check` holds. */
async function editText(page, rest, column, text, check) {
  await openEditor(page, state.item, column);
  await selectAllAndType(page, text);
  await page.keyboard.press('Enter');
  return eventually(async () => {
    const [object] = await rest.find('Item', { objectId: state.item });
    return check(object[column]) && object;
  }, `${column} stored from "${text}"`);
}

async function editEveryType({ page, rest, appURL }) {
  await go(page, `${appURL}/browser/Item`);
  const score = state.scores[3];
  await editText(page, rest, 'str', 'hello dashboard', v => v === 'hello dashboard');
  await editText(page, rest, 'num', '42.5', v => v === 42.5);
  await editText(page, rest, 'date', '2024-05-06T07:08:09.000Z',
    v => v?.__type === 'Date' && v.iso === '2024-05-06T07:08:09.000Z');
  await editText(page, rest, 'obj', '{"a": 1, "nested": {"b": [true]}}',
    v => JSON.stringify(v) === JSON.stringify({ a: 1, nested: { b: [true] } }));
  await editText(page, rest, 'arr', '[1, "two", {"three": 3}]',
    v => JSON.stringify(v) === JSON.stringify([1, 'two', { three: 3 }]));
  await editText(page, rest, 'poly', '[[0, 0], [0, 1], [1, 1], [1, 0]]',
    // Stored closed, as Parse Server stores it: the first point again at the end.
    v => v?.__type === 'Polygon' && JSON.stringify(v.coordinates) === JSON.stringify([[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]));
  await editText(page, rest, 'ptr', score.objectId,
    v => v?.__type === 'Pointer' && v.className === 'Score' && v.objectId === score.objectId);
  // GeoPoint: two inputs, latitude then longitude.
  await openEditor(page, state.item, 'geo');
  await selectAllAndType(page, '48.85');
  await page.keyboard.press('Tab');
  await selectAllAndType(page, '2.35');
  await page.keyboard.press('Enter');
  await eventually(async () => {
    const [object] = await rest.find('Item', { objectId: state.item });
    return object.geo?.__type === 'GeoPoint' && object.geo.latitude === 48.85 && object.geo.longitude === 2.35;
  }, 'geo stored');
  // Boolean: a toggle.
  await openEditor(page, state.item, 'bool');
  await clickText(page, 'True');
  await page.keyboard.press('Enter');
  await eventually(async () => (await rest.find('Item', { objectId: state.item }))[0].bool === true, 'bool stored');
  // File: the cell's editor has a file input; the dashboard uploads through POST /files, then saves.
  await openEditor(page, state.item, 'file');
  const upload = path.join(state.artifacts, 'upload.txt');
  fs.writeFileSync(upload, 'uploaded through Parse Dashboard\n');
  const input = await page.waitForSelector('#fileInput');
  await input.uploadFile(upload);
  const stored = await eventually(async () => {
    const [object] = await rest.find('Item', { objectId: state.item });
    return object.file?.__type === 'File' && object.file;
  }, 'file stored');
  assert(stored.name.endsWith('upload.txt'), `file name ${stored.name}`);
  const content = await (await fetch(stored.url)).text();
  assertEqual(content, 'uploaded through Parse Dashboard\n', 'the uploaded file\'s content');
}

async function editAcl({ page, rest, appURL }) {
  await go(page, `${appURL}/browser/Item`);
  await openEditor(page, state.item, 'ACL');
  await waitForText(page, 'Edit Access Control List (ACL)');
  // Public keeps Read and loses Write; the user ada is added by objectId (the dialog looks it up).
  await clickText(page, 'Write', '[data-modal]');
  await page.type('[data-modal] input[placeholder="Role or User…"]', state.user.objectId);
  await page.keyboard.press('Enter');
  await sleep(800);
  await clickText(page, 'Save ACL');
  const acl = await eventually(async () => {
    const [object] = await rest.find('Item', { objectId: state.item });
    return object.ACL?.[state.user.objectId] && !object.ACL['*']?.write && object.ACL;
  }, 'the ACL stored');
  assertEqual(acl['*'], { read: true }, 'public read only');
  assert(acl[state.user.objectId].read === true, `ada may read: ${JSON.stringify(acl)}`);
}

/** The open dialog's text (for checks and for failure messages). */
async function dialogText(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-modal]')].map(m => m.innerText).join('\n'));
}

async function deleteRows({ page, rest, appURL }) {
  await go(page, `${appURL}/browser/Score`);
  const [first, second] = await rowIds(page);
  for (const id of [first, second]) {
    const box = await page.evaluateHandle(id => [...document.querySelectorAll('#browser-table div > span:nth-child(2)')]
      .find(s => s.textContent === id).parentElement.querySelector('input[type=checkbox]'), id);
    await box.click();
  }
  await menu(page, 'Edit', 'Delete these rows');
  await clickText(page, 'Delete', '[data-modal]');
  await eventually(async () => (await rest.count('Score')) === 118, 'two rows deleted');
  assertEqual(await rest.count('Score', { objectId: { $in: [first, second] } }), 0, 'the deleted rows are gone');
}

async function modalHtml(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-modal]')].map(m => m.outerHTML).join('\n')
    .replace(/<svg.*?<\/svg>/g, '').slice(0, 3000));
}

async function addAndDeleteColumn({ page, rest, appURL }) {
  await go(page, `${appURL}/browser/Score`);
  await clickText(page, 'Add a new column');
  await page.type('[data-modal] input[placeholder="Give it a good name..."]', 'nickname');
  await page.type('[data-modal] input[placeholder="Set a default value here"]', 'anon');
  await clickText(page, 'Add', '[data-modal]');
  const field = await eventually(async () => (await rest.get('/schemas/Score')).fields.nickname, 'the column is in the schema');
  // As Parse Server answers it: the definition as the dashboard sent it, "required": false included.
  assertEqual(field, { type: 'String', required: false, defaultValue: 'anon' }, 'the new column');
  await go(page, `${appURL}/browser/Score`);
  await menu(page, 'Edit', 'Delete a column');
  await page.click('[data-modal] [role=combobox]');
  await clickText(page, 'nickname');
  await clickText(page, 'Remove', '[data-modal]');
  // On a loaded machine the first click can land before the modal takes it (the modal stays open
  // with the column chosen): click again, at most every 2 s, while the modal is still there.
  let clicked = Date.now();
  await eventually(async () => {
    if (!(await rest.get('/schemas/Score')).fields.nickname) return true;
    if (Date.now() - clicked > 2000 && (await page.$('[data-modal]'))) {
      clicked = Date.now();
      await clickText(page, 'Remove', '[data-modal]').catch(() => {});
    }
    return false;
  }, 'the column is gone from the schema', 20000);
}

async function createAndDeleteClass({ page, rest, appURL }) {
  await go(page, `${appURL}/browser/Score`);
  await clickText(page, 'Create a class');
  await page.type('[data-modal] input[placeholder="Give it a good name..."]', 'Scratch');
  await clickText(page, 'Create', '[data-modal]');
  await eventually(() => page.url().endsWith('/browser/Scratch'), 'the new class opens');
  const schema = await rest.get('/schemas/Scratch');
  assertEqual(schema.className, 'Scratch', 'the created class');
  await menu(page, 'Edit', 'Delete this class');
  await page.type('[data-modal] input[placeholder="Current class name"]', 'Scratch');
  await clickText(page, 'Delete', '[data-modal]');
  await eventually(async () => !(await rest.get('/schemas')).results.some(c => c.className === 'Scratch'),
    'the class is gone');
}

async function exportRows({ page, appURL, downloads }) {
  await go(page, `${appURL}/browser/Score`);
  await menu(page, 'Data', 'Export all rows');
  await page.type('[data-modal] input[placeholder="export all"]', 'export all');
  await clickText(page, 'Export', '[data-modal]');
  const file = await eventually(() => fs.readdirSync(downloads).find(f => f.endsWith('.csv')), 'a CSV download');
  const csv = await eventually(() => {
    const text = fs.readFileSync(path.join(downloads, file), 'utf8');
    return text.split('\n').filter(Boolean).length >= 119 && text;
  }, 'the whole CSV');
  const lines = csv.split('\n').filter(Boolean);
  assert(lines[0].includes('objectId') && lines[0].includes('name'), `CSV header: ${lines[0]}`);
  assertEqual(lines.length, 1 + 118, 'CSV lines (header and the 118 remaining rows)');
  assert(csv.includes('player 50'), 'a row in the CSV');
}

async function usersAndRoles({ page, appURL }) {
  await go(page, `${appURL}/browser/_User`);
  await eventually(async () => (await rowIds(page)).includes(state.user.objectId), 'the user in the Users view');
  await waitForText(page, 'ada@example.com');
  await go(page, `${appURL}/browser/_Role`);
  await eventually(async () => (await rowIds(page)).includes(state.role.objectId), 'the role in the Roles view');
  await waitForText(page, 'editors');
  // The role's users relation opens the relation view, listing ada.
  const users = await cell(page, state.role.objectId, 'users');
  await (await users.$('a') || users).click();
  await eventually(() => page.url().endsWith(`/_Role/${state.role.objectId}/users`), 'the relation view');
  await eventually(async () => (await rowIds(page)).includes(state.user.objectId), 'ada in the role\'s users');
}

async function relationView({ page, rest, appURL }) {
  // Item.rel starts empty: its cell opens the relation view, where two scores are attached by id.
  const [a, b] = await rest.find('Score', {}, '&order=n&limit=2');
  await go(page, `${appURL}/browser/Item`);
  const rel = await cell(page, state.item, 'rel');
  await (await rel.$('a') || rel).click();
  await eventually(() => page.url().endsWith(`/Item/${state.item}/rel`), 'the relation view');
  await clickText(page, 'Attach existing rows from Score');
  await page.type('[data-modal] input', `${a.objectId}, ${b.objectId}`);
  await clickText(page, 'Attach', '[data-modal]');
  const related = await eventually(async () => {
    const where = { $relatedTo: { object: { __type: 'Pointer', className: 'Item', objectId: state.item }, key: 'rel' } };
    const found = await rest.find('Score', where);
    return found.length === 2 && found;
  }, 'two scores in Item.rel');
  assertEqual(related.map(s => s.objectId).sort(), [a.objectId, b.objectId].sort(), 'the attached scores');
  await eventually(async () => {
    const ids = await rowIds(page);
    return ids.length === 2 && ids.includes(a.objectId) && ids.includes(b.objectId);
  }, 'the relation view lists the two related scores');
}

async function classLevelPermissions({ page, rest, appURL }) {
  await go(page, `${appURL}/browser/Score`);
  await clickText(page, 'Security');
  await clickText(page, 'Class Level Permissions');
  await waitForText(page, 'Edit Class Level Permissions');
  // Public loses Write (create, update, delete) and keeps Read.
  const publicWrite = await page.evaluateHandle(() => {
    const label = [...document.querySelectorAll('[data-modal] div')].find(d => d.textContent === 'Public');
    return [...label.parentElement.querySelectorAll('span')].find(s => s.textContent === 'Write');
  });
  await publicWrite.click();
  await clickText(page, 'Save CLP');
  const clp = await eventually(async () => {
    const current = (await rest.get('/schemas/Score')).classLevelPermissions;
    return !current.create?.['*'] && current;
  }, 'the CLP stored');
  for (const op of ['create', 'update', 'delete']) assert(!clp[op]['*'], `public ${op} removed: ${JSON.stringify(clp)}`);
  for (const op of ['find', 'get', 'count']) assert(clp[op]['*'] === true, `public ${op} kept: ${JSON.stringify(clp)}`);
  // It takes effect: a client without the master key may read Score but not create in it.
  const reads = await rest.asClient('GET', '/classes/Score?limit=1');
  assertEqual(reads.status, 200, 'a client still reads Score');
  const creates = await rest.asClient('POST', '/classes/Score', { n: -1 });
  assertEqual([creates.status, creates.body.code], [400, 119], 'a client may no longer create in Score');
}

export const browserSteps = [
  ['seed data through REST', seed],
  ['open the app', openApp],
  ['class list with counts', classListWithCounts],
  ['open, page, sort and filter a class', openPageSortFilter],
  ['add a row', addRow],
  ['edit a cell of every type', editEveryType],
  ['edit an ACL cell', editAcl],
  ['delete rows', deleteRows],
  ['add and delete a column', addAndDeleteColumn],
  ['create and delete a class', createAndDeleteClass],
  ['export a class', exportRows],
  ['Users and Roles views', usersAndRoles],
  ['edit a Relation cell in the relation view', relationView],
  ['class-level permissions', classLevelPermissions],
];
