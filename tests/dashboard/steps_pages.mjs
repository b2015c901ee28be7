// The app's other pages: Config, Jobs, Push, API Console, Webhooks, Logs, Cloud Code and the apps
// index. Each step checks its effect through REST where the page changes something.

import { assert, assertEqual, bodyText, clickText, eventually, go, selectAllAndType, sleep, waitForText } from './ui.mjs';

async function config({ page, rest, appURL }) {
  await go(page, `${appURL}/config`);
  await clickText(page, 'Create a parameter');
  await page.type('[data-modal] input[placeholder="New parameter"]', 'greeting');
  await page.type('[data-modal] textarea', 'hello');
  await clickText(page, 'Create', '[data-modal]');
  await eventually(async () => (await rest.get('/config')).params.greeting === 'hello', 'the parameter is stored');
  await waitForText(page, 'greeting');
  // Edit: a click on the row opens the same dialog.
  await clickText(page, 'greeting');
  await waitForText(page, 'Edit parameter');
  const value = await page.waitForSelector('[data-modal] textarea');
  await eventually(async () => {
    await value.focus();
    await selectAllAndType(page, 'bonjour');
    return (await value.evaluate(el => el.value)) === 'bonjour';
  }, 'the new value typed');
  await clickText(page, 'Save', '[data-modal]');
  await eventually(async () => (await rest.get('/config')).params.greeting === 'bonjour', 'the edited value is stored');
  // Delete: the row's last cell holds the trash link, then a confirmation.
  await page.click('table tr td:last-child a');
  await page.type('[data-modal] input[placeholder="Parameter name"]', 'greeting');
  await clickText(page, 'Delete', '[data-modal]');
  await eventually(async () => !('greeting' in (await rest.get('/config')).params), 'the parameter is deleted');
}

async function jobs({ page, rest, appURL }) {
  await go(page, `${appURL}/jobs`);
  const run = await page.evaluateHandle(() => {
    const name = [...document.querySelectorAll('td, div, span')].find(e => e.textContent.trim() === 'jobEcho' && !e.children.length);
    let row = name;
    while (row && !row.querySelector('button, a[role=button]')) row = row.parentElement;
    return [...row.querySelectorAll('button, a')].find(b => b.textContent.trim() === 'Run...');
  });
  await run.click();
  await page.type('[data-modal] textarea', '{"n": 3}');
  await clickText(page, 'Run', '[data-modal]');
  const status = await eventually(async () => (await rest.find('_JobStatus', { jobName: 'jobEcho', status: 'succeeded' }))[0],
    'jobEcho ran and succeeded');
  // The dashboard posts {description, input, jobName, when}; the job's params are its input.
  assertEqual(status.params.input, { n: 3 }, 'the job\'s params');
  // Its status on the Job Status page.
  await go(page, `${appURL}/jobs/status`);
  await waitForText(page, 'jobEcho');
  await eventually(async () => /succeeded/i.test(await bodyText(page)), 'the job status shows succeeded');
  // Schedule one.
  await go(page, `${appURL}/jobs/new`);
  await page.type('input[placeholder="Pick a good name…"]', 'nightly echo');
  // The job list loads after the page: pick until the dropdown shows the choice.
  await eventually(async () => {
    await page.click('[role=combobox]');
    await sleep(300);
    await clickText(page, 'jobEcho');
    await sleep(200);
    return page.$eval('[role=combobox]', el => el.textContent.trim() === 'jobEcho');
  }, 'jobEcho picked');
  await page.type('textarea', '{"n": 9}');
  const save = await page.evaluateHandle(() => [...document.querySelectorAll('button')].find(b => /^(Save|Schedule)/.test(b.textContent.trim())));
  await save.click();
  await eventually(async () => {
    const list = await rest.get('/cloud_code/jobs');
    return list.find?.(j => j.description === 'nightly echo') && list;
  }, 'the schedule is stored');
}

async function push({ page, rest, appURL }) {
  await go(page, `${appURL}/push/new`);
  await page.click('label[for=audience_radio_everyone]');
  await page.type('textarea[placeholder="Type your message…"]', 'Hello from the dashboard');
  await clickText(page, 'Send push');
  const status = await eventually(async () => (await rest.find('_PushStatus'))[0], 'a _PushStatus record');
  assert(JSON.stringify(status.payload).includes('Hello from the dashboard'), `push payload ${JSON.stringify(status.payload)}`);
  await go(page, `${appURL}/push/activity`);
  await waitForText(page, 'Hello from the dashboard');
  // A saved audience (stored through REST) is listed on the Audiences page and offered on a new push.
  await rest.post('/push_audiences', { name: 'Android users', query: JSON.stringify({ deviceType: 'android' }) });
  await go(page, `${appURL}/push/audiences`);
  await waitForText(page, 'Android users');
  await go(page, `${appURL}/push/new`);
  await waitForText(page, 'Android users');
}

async function apiConsole({ page, appURL }) {
  await go(page, `${appURL}/api_console`);
  await page.type('input[placeholder="classes/_User"]', 'classes/Score');
  await page.type('textarea', 'where={"n":7}');
  // With the master key: the test server requires a JavaScript key, which the console does not send.
  const toggle = await page.evaluateHandle(() => {
    let row = [...document.querySelectorAll('div')].find(d => d.textContent === 'Use Master Key?');
    while (row && !row.querySelector('span')) row = row.parentElement;
    while (row && ![...row.querySelectorAll('span')].some(s => !s.textContent)) row = row.parentElement;
    return [...row.querySelectorAll('span')].find(s => !s.textContent);
  });
  await toggle.click();
  await clickText(page, 'Send Query');
  await eventually(async () => (await bodyText(page)).includes('player 7'), 'the console shows the result');
}

async function webhooks({ page, rest, appURL }) {
  // A function webhook registered through REST is listed on the page.
  await rest.post('/hooks/functions', { functionName: 'remoteHello', url: 'https://hooks.example.com/hello' });
  await go(page, `${appURL}/webhooks`);
  await waitForText(page, 'remoteHello');
  await waitForText(page, 'https://hooks.example.com/hello');
}

async function logs({ page, rest, appURL }) {
  // A cloud function (tests/cloud_app's logLines) writes an error line; the Logs page shows it. The
  // test server runs at --log-level warning, so an error line is the one kept.
  const text = `dashboard-log-check-${Date.now()}`;
  await rest.post('/functions/logLines', { levels: ['error'], text });
  await go(page, `${appURL}/logs/info`);
  await waitForText(page, 'Logs');
  await eventually(async () => {
    await go(page, `${appURL}/logs/error`);
    return (await bodyText(page)).includes(text);
  }, 'the error line on the Logs page (error level)');
}

async function cloudCode({ page, appURL }) {
  await go(page, `${appURL}/cloud_code`);
  // Parse Server 9.10 has no hosted cloud code to list (see /releases/latest in drive.mjs): the page
  // says so.
  await waitForText(page, 'Feature unavailable');
}

async function appsIndex({ page, dashboardURL, appName }) {
  await go(page, `${dashboardURL}/apps`);
  await waitForText(page, appName);
}

export const pageSteps = [
  ['Config: add, edit, delete a parameter', config],
  ['Jobs: run, status, schedule', jobs],
  ['Push: send, audiences', push],
  ['API Console', apiConsole],
  ['Webhooks', webhooks],
  ['Logs', logs],
  ['Cloud Code', cloudCode],
  ['the apps index', appsIndex],
];
