// Small helpers over puppeteer for Parse Dashboard's pages (its CSS class names are hashed, so
// elements are found by their text and structure).

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

export function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

export function assertEqual(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}

/** Polls fn until it returns a truthy value (its value), or throws after timeout ms. */
export async function eventually(fn, message, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out: ${message} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(150);
  }
}

export async function go(page, url) {
  await page.goto(url, { waitUntil: 'networkidle0' });
}

/** The innermost visible element whose own text is `text` (trimmed), within `scope` (a CSS selector). */
export async function byText(page, text, scope = 'body', timeout = 10000) {
  return eventually(async () => {
    const handle = await page.evaluateHandle((text, scope) => {
      const roots = [...document.querySelectorAll(scope)];
      for (const root of roots.reverse()) {  // the last match: dialogs are appended last
        const all = [...root.querySelectorAll('*')].reverse();
        const hit = all.find(el => el.textContent.trim() === text && el.getClientRects().length > 0
          && ![...el.children].some(c => c.textContent.trim() === text));
        if (hit) return hit;
      }
      return null;
    }, text, scope);
    return (await handle.evaluate(el => el !== null)) ? handle : null;
  }, `element with text "${text}"`, timeout);
}

export async function clickText(page, text, scope = 'body') {
  const el = await byText(page, text, scope);
  await el.evaluate(e => e.scrollIntoView({ block: 'center', inline: 'center' }));
  await el.click();
  return el;
}

export async function bodyText(page) {
  return page.evaluate(() => document.body.innerText);
}

export async function waitForText(page, text, timeout = 10000) {
  return eventually(async () => (await bodyText(page)).includes(text), `page text "${text}"`, timeout);
}

/** The browser table's cell of row `objectId` in column `column`, scrolled into view. */
export async function cell(page, objectId, column) {
  return eventually(async () => {
    const handle = await page.evaluateHandle((objectId, column) => {
      const table = document.getElementById('browser-table');
      if (!table) return null;
      const headers = [...table.children[0].children].map(h => h.querySelector('[draggable] > div')?.textContent);
      const index = headers.indexOf(column);
      const idCell = [...table.querySelectorAll('div > span:nth-child(2)')].find(s => s.textContent === objectId);
      if (index < 0 || !idCell) return null;
      const target = idCell.parentElement.children[index];
      target.scrollIntoView({ block: 'center', inline: 'center' });
      return target;
    }, objectId, column);
    return (await handle.evaluate(el => el !== null)) ? handle : null;
  }, `cell ${objectId}.${column}`);
}

/** Opens the editor of a cell (double click) and returns the focused element. */
export async function openEditor(page, objectId, column) {
  const target = await cell(page, objectId, column);
  await target.click({ count: 2 });
  await sleep(300);
  return page.evaluateHandle(() => document.activeElement);
}

export async function selectAllAndType(page, text) {
  await page.keyboard.down('Control');
  await page.keyboard.press('a');
  await page.keyboard.up('Control');
  await page.keyboard.press('Backspace');
  await page.keyboard.type(text);
}

/** Row ids shown in the browser table, top to bottom. */
export async function rowIds(page) {
  return page.evaluate(() => [...document.querySelectorAll('#browser-table div > span:nth-child(2)')].map(s => s.textContent));
}

/** Opens the toolbar menu `menu` (e.g. "Edit") and clicks its item `item`. */
export async function menu(page, menuTitle, item) {
  await clickText(page, menuTitle);
  await sleep(200);
  await clickText(page, item);
  await sleep(300);
}
