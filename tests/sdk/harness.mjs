// Test harness: provides a Parse-compatible server and an initialized Parse JS SDK.
//
// Two modes:
//   * External server: when PARSE_SERVER_URL and PARSE_APP_ID and PARSE_MASTER_KEY are
//     set (PARSE_JS_KEY optional), the already-running server at that URL is used.
//   * Bastion (default): `${BASTION_PYTHON:-python3} -m bastion serve ...` is spawned on
//     a free loopback port with a fresh temporary data dir and random keys; it is killed
//     (by pid) when the test file finishes. BASTION_TEST_DATABASE, when set, is passed
//     as `--database`. It runs with the repository root as working directory.
//
// LiveQuery: `Parse.liveQueryServerURL` is set to the ws:// form of the server URL
// (ws://host:port/parse), or to LIVE_QUERY_URL when that is set (for an external server
// whose LiveQuery server listens elsewhere). `liveQueryURL()` answers it. In Bastion mode
// `restartServer()` stops the server and starts it again on the same port and data dir
// (`canRestartServer()` is false against an external server).
//
// Each test file runs in its own process under `node --test`, so each file gets its own
// server in Bastion mode. Use `uniqueName()` for class names so files never collide
// when they share one external server.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import Parse from 'parse/node.js';

const HEALTH_TIMEOUT_MS = 30_000;
// Bastion is started from the repository root so `-m bastion` finds the package
// even when it is not installed into the interpreter.
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let current = null; // { serverURL, appId, masterKey, jsKey, child, dataDir, stderr }

function randomToken(bytes = 12) {
  return randomBytes(bytes).toString('hex');
}

/** A class-name-safe unique name: `${base}_${random}`. */
export function uniqueName(base) {
  return `${base}_${randomBytes(5).toString('hex')}`;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitForHealth(baseURL, child, stderrBuf) {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let lastError = null;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `Bastion exited early (code ${child.exitCode}, signal ${child.signalCode}).\n` +
          `--- server stderr ---\n${stderrBuf.join('')}`,
      );
    }
    try {
      const res = await fetch(`${baseURL}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) {
        const body = await res.json().catch(() => null);
        if (body && body.status === 'ok') return;
        lastError = new Error(`health answered ${JSON.stringify(body)}`);
      } else {
        lastError = new Error(`health answered HTTP ${res.status}`);
      }
    } catch (err) {
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(
    `Bastion did not become healthy within ${HEALTH_TIMEOUT_MS / 1000}s ` +
      `(last error: ${lastError && lastError.message}).\n` +
      `--- server stderr ---\n${stderrBuf.join('')}`,
  );
}

async function startBastion(options = {}, reuse = null) {
  // A relative BASTION_PYTHON (../../.venv/bin/python) is relative to where node runs,
  // not to the repository root the server is started in.
  const rawPython = process.env.BASTION_PYTHON || 'python3';
  const python = rawPython.includes('/') ? resolve(rawPython) : rawPython;
  // `reuse` (from restartServer) keeps the port, data dir and keys of a stopped server.
  const port = reuse ? reuse.port : await freePort();
  const dataDir = reuse ? reuse.dataDir : mkdtempSync(join(tmpdir(), 'bastion-sdk-'));
  const appId = reuse ? reuse.appId : `app_${randomToken(6)}`;
  const masterKey = reuse ? reuse.masterKey : `mk_${randomToken()}`;
  const jsKey = reuse ? reuse.jsKey : `js_${randomToken()}`;
  const args = [
    '-m', 'bastion', 'serve',
    '--host', '127.0.0.1',
    '--port', String(port),
    '--data-dir', dataDir,
    '--app-id', appId,
    '--master-key', masterKey,
    '--javascript-key', jsKey,
  ];
  if (process.env.BASTION_TEST_DATABASE) {
    args.push('--database', process.env.BASTION_TEST_DATABASE);
  }
  if (options.cloud) {
    args.push('--cloud', options.cloud); // relative to the repository root
  }
  if (options.args) {
    args.push(...options.args); // more `bastion serve` options
  }
  const stderr = [];
  const child = spawn(python, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr.push(chunk);
  });
  const spawnError = new Promise((_, reject) => child.once('error', reject));
  // If this process exits without calling stopServer(), do not leave Bastion behind.
  const killOnExit = () => {
    if (child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.once('exit', killOnExit);

  const serverURL = `http://127.0.0.1:${port}/parse`;
  try {
    await Promise.race([waitForHealth(serverURL, child, stderr), spawnError]);
  } catch (err) {
    killOnExit();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return { serverURL, appId, masterKey, jsKey, child, dataDir, stderr, killOnExit, port, options };
}

/** The ws:// form of an http(s):// server URL (path kept). */
function wsURL(serverURL) {
  return serverURL.replace(/^http/, 'ws');
}

/**
 * Starts (or connects to) the server under test and initializes the SDK.
 * `options.cloud`: cloud code for a Bastion this harness starts (a path from the repository root).
 * `options.args`: more `bastion serve` options for it.
 * Returns { Parse, serverURL, appId, masterKey, jsKey }.
 */
export async function startServer(options = {}) {
  if (current) return info();
  if (process.env.PARSE_SERVER_URL) {
    const { PARSE_SERVER_URL, PARSE_APP_ID, PARSE_MASTER_KEY, PARSE_JS_KEY } = process.env;
    if (!PARSE_APP_ID || !PARSE_MASTER_KEY) {
      throw new Error('PARSE_SERVER_URL needs PARSE_APP_ID and PARSE_MASTER_KEY too');
    }
    current = {
      serverURL: PARSE_SERVER_URL.replace(/\/+$/, ''),
      appId: PARSE_APP_ID,
      masterKey: PARSE_MASTER_KEY,
      jsKey: PARSE_JS_KEY || undefined,
      child: null,
      liveQueryURL: process.env.LIVE_QUERY_URL || undefined,
    };
  } else {
    current = await startBastion(options);
  }
  Parse.initialize(current.appId, current.jsKey);
  Parse.serverURL = current.serverURL;
  Parse.masterKey = current.masterKey;
  Parse.liveQueryServerURL = liveQueryURL();
  return info();
}

function info() {
  const { serverURL, appId, masterKey, jsKey } = current;
  return { Parse, serverURL, appId, masterKey, jsKey };
}

/** The LiveQuery WebSocket URL of the server under test. */
export function liveQueryURL() {
  return current.liveQueryURL || process.env.LIVE_QUERY_URL || wsURL(current.serverURL);
}

/** True when this harness started the server and can restart it (Bastion mode). */
export function canRestartServer() {
  return Boolean(current && current.child);
}

/**
 * Stops the Bastion this harness started (SIGTERM, like a deploy) and starts it again on
 * the same port with the same data dir and keys; resolves once it is healthy again.
 * `downMs` keeps it stopped that long first.
 */
export async function restartServer({ downMs = 0 } = {}) {
  if (!canRestartServer()) throw new Error('restartServer() needs a server started by the harness');
  const old = current;
  if (old.child.exitCode === null && old.child.signalCode === null) {
    const exited = new Promise((r) => old.child.once('exit', r));
    process.kill(old.child.pid, 'SIGTERM');
    const timedOut = await Promise.race([exited.then(() => false), sleep(10_000).then(() => true)]);
    if (timedOut) old.killOnExit();
  }
  process.removeListener('exit', old.killOnExit);
  if (downMs) await sleep(downMs);
  current = await startBastion(old.options, old);
  return info();
}

/** Stops the server if this harness started it. */
export async function stopServer() {
  if (!current) return;
  const { child, dataDir, killOnExit } = current;
  current = null;
  if (!child) return;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    const timedOut = await Promise.race([exited.then(() => false), sleep(5000).then(() => true)]);
    if (timedOut) killOnExit();
  }
  process.removeListener('exit', killOnExit);
  rmSync(dataDir, { recursive: true, force: true });
}

/**
 * Raw REST call (for things the SDK does not expose, or to check wire-level shapes).
 * `opts.master` sends the master key; otherwise the JS key (if any) is sent.
 */
export async function rest(method, path, body, opts = {}) {
  const { serverURL, appId, masterKey, jsKey } = current;
  const headers = { 'X-Parse-Application-Id': appId, 'Content-Type': 'application/json' };
  if (opts.master) headers['X-Parse-Master-Key'] = masterKey;
  else if (jsKey) headers['X-Parse-JavaScript-Key'] = jsKey;
  const res = await fetch(`${serverURL}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: json, text };
}

/** Creates each class with the master key (clients may not create classes). */
export async function createClasses(...names) {
  for (const name of names) {
    await new Parse.Schema(name).save({ useMasterKey: true });
  }
}

/** Deletes all objects of each class and then the class itself (master key). */
export async function dropClasses(...names) {
  for (const name of names) {
    try {
      const schema = new Parse.Schema(name);
      await schema.purge();
      await schema.delete();
    } catch {
      /* best effort */
    }
  }
}

/** Runs fn and returns the Parse.Error it rejects with; fails if it resolves. */
export async function expectParseError(fn) {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail with a Parse.Error, but it succeeded');
}

export { Parse };
