// Drives Parse Dashboard (already running, pointed at a Parse-compatible server) in headless Chromium
// through every page Bastion must serve, and checks each important step's effect through REST.
//
// Environment: DASHBOARD_URL (e.g. http://127.0.0.1:4040), APP_NAME (the app's name in the dashboard),
// PARSE_SERVER_URL, PARSE_APP_ID, PARSE_MASTER_KEY, PARSE_JS_KEY (when the server requires one), CHROMIUM (the browser binary), ARTIFACTS (a folder
// for screenshots and exports). Prints one line per step; exits 1 when any step failed or when a page
// logged a console error, threw, or saw a failed request to the server.

import fs from 'node:fs';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { Rest } from './rest.mjs';
import { browserSteps } from './steps_browser.mjs';
import { pageSteps } from './steps_pages.mjs';

const env = name => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const dashboardURL = env('DASHBOARD_URL').replace(/\/$/, '');
const appName = env('APP_NAME');
const serverURL = env('PARSE_SERVER_URL').replace(/\/$/, '');
const artifacts = env('ARTIFACTS');
fs.mkdirSync(artifacts, { recursive: true });

const rest = new Rest(serverURL, env('PARSE_APP_ID'), env('PARSE_MASTER_KEY'), process.env.PARSE_JS_KEY);
const browser = await puppeteer.launch({
  executablePath: env('CHROMIUM'),
  headless: true,
  // --no-sandbox: CI runs the suite as root, where Chromium's sandbox refuses to start.
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--window-size=1600,900'],
});
const page = await browser.newPage();
await page.setViewport({ width: 1600, height: 900 });
page.setDefaultTimeout(15000);

// Everything the page reports that must not happen, tagged with the step it happened in.
const problems = [];
let current = 'start';
// The allowances: requests a page makes on every load and that fail by design, each with its reason.
const allowed = [
  // The Cloud Code page asks for the deployed release's files (Parse.com's hosted cloud code);
  // Parse Server 9.10 has no such route either and answers it 404, after which the page shows the
  // "no cloud code" state.
  { status: 404, url: /\/releases\/latest$/ },
];
const isAllowed = (status, url) => allowed.some(a => a.status === status && a.url.test(url));
page.on('console', msg => {
  if (msg.type() !== 'error') return;
  const where = msg.location()?.url || '';
  // A failed response from the server is already reported (or allowed) by the response handler
  // below; its console echo ("Failed to load resource") carries no more information.
  if (/Failed to load resource/.test(msg.text()) && where.startsWith(serverURL)) return;
  problems.push(`[${current}] console error: ${msg.text()} ${where}`);
});
page.on('pageerror', err => problems.push(`[${current}] page error: ${err.message}`));
page.on('requestfailed', req => {
  const reason = req.failure()?.errorText || '';
  // Aborted loads (a navigation that leaves a page while its requests are pending) are the browser's
  // own doing, not a failure of the server.
  if (reason === 'net::ERR_ABORTED' && !req.url().startsWith(serverURL)) return;
  problems.push(`[${current}] request failed: ${req.method()} ${req.url()} ${reason}`);
});
page.on('response', res => {
  const url = res.url();
  if (res.status() < 400 || !url.startsWith(serverURL)) return;
  if (isAllowed(res.status(), url)) return;
  problems.push(`[${current}] HTTP ${res.status()}: ${res.request().method()} ${url} ${res.request().postData()?.slice(0, 300) || ''}`);
});
// The dashboard's stylesheet links Google Fonts; the test machine may have no internet, and the fonts
// are no part of what is tested, so they are answered with an empty stylesheet.
await page.setRequestInterception(true);
page.on('request', req => {
  if (/^https:\/\/fonts\.(googleapis|gstatic)\.com\//.test(req.url())) {
    req.respond({ status: 200, contentType: 'text/css', body: '' });
  } else {
    req.continue();
  }
});
const downloads = path.join(artifacts, 'downloads');
fs.mkdirSync(downloads, { recursive: true });
const cdp = await page.createCDPSession();
await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads });

const ctx = { page, rest, artifacts, appURL: `${dashboardURL}/apps/${encodeURIComponent(appName)}`, dashboardURL, appName, downloads };
const results = [];
let shot = 0;
const started = Date.now();
for (const [name, run] of [...browserSteps, ...pageSteps]) {
  current = name;
  const before = problems.length;
  const t0 = Date.now();
  let failure = null;
  try {
    await run(ctx);
  } catch (err) {
    failure = err;
  }
  await new Promise(r => setTimeout(r, 150)); // late console errors belong to this step
  const file = path.join(artifacts, `${String(++shot).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
  await page.screenshot({ path: file }).catch(() => {});
  const ok = !failure && problems.length === before;
  results.push({ name, ok });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} (${Date.now() - t0} ms)${failure ? `: ${failure.stack || failure}` : ''}`);
  for (const p of problems.slice(before)) console.log(`     ${p}`);
}
await browser.close();
const failed = results.filter(r => !r.ok).map(r => r.name);
console.log(`steps: ${results.length}, failed: ${failed.length} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
console.log(`screenshots: ${artifacts}`);
process.exit(failed.length ? 1 : 0);
