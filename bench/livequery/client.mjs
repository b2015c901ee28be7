// LiveQuery load client for bench/livequery.py (Node 20+, the `ws` package from
// bench/parse-server/node_modules or tests/sdk/node_modules).
//
// One process opens N WebSockets, each speaking Parse's LiveQuery protocol: `connect`
// (application id only, no keys, no session: the public path), then one `subscribe` to
// every object of the class (`where: {}`), so every write reaches every socket. Then,
// when told on stdin, it writes at a fixed rate through the REST API (master key):
// alternately a create and an update of the object the previous create made, each
// carrying `t`, the wall-clock time of the write in ms (performance.timeOrigin +
// performance.now(), sub-millisecond). An event's latency is its receive time minus
// the `t` of the object it carries.
//
// Protocol with the harness (one JSON object a line on stdout):
//   {"phase":"subscribed", connect_s, sockets, failed, errors}  all sockets subscribed
//   (harness writes "go\n" on stdin)
//   {"phase":"result", ...}                                     numbers, then exit
// Progress and problems go to stderr.
//
// Config: one JSON argument: { ws, rest, appId, masterKey, className, clients, rate,
// warmupWrites, writes, drainS, connectConcurrency, connectTimeoutS, pad }.

import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
let WebSocket;
for (const base of [join(here, '..', 'parse-server'), join(here, '..', '..', 'tests', 'sdk')]) {
  try {
    WebSocket = createRequire(join(base, 'package.json'))('ws');
    break;
  } catch {
    /* try the next one */
  }
}
if (!WebSocket) {
  console.error('client.mjs: the `ws` package was not found: run `npm ci` in bench/parse-server');
  process.exit(2);
}

const cfg = JSON.parse(process.argv[2]);
const now = () => performance.timeOrigin + performance.now();
const log = (msg) => process.stderr.write(`[lq-client] ${msg}\n`);
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

// --------------------------------------------------------------------------- sockets

const sockets = [];
let subscribed = 0;
let failed = 0;
let closedEarly = 0;
const errors = {};
const noteError = (what) => {
  errors[what] = (errors[what] || 0) + 1;
};

// Events of measured writes: latency per event, count per write.
const firstMeasured = cfg.warmupWrites;
const totalWrites = cfg.warmupWrites + cfg.writes;
const latencies = new Float64Array(Math.max(1, cfg.writes * cfg.clients));
let nLat = 0;
const perWrite = new Uint32Array(totalWrites);
let lastReceive = 0;
let otherMessages = 0;
let measuring = false;

function onMessage(data) {
  const t1 = now();
  const text = typeof data === 'string' ? data : data.toString();
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    noteError('bad json');
    return;
  }
  if ((msg.op === 'create' || msg.op === 'update') && msg.object) {
    const seq = msg.object.seq;
    if (typeof seq === 'number' && seq >= 0 && seq < totalWrites) {
      perWrite[seq] += 1;
      if (seq >= firstMeasured && nLat < latencies.length) {
        latencies[nLat++] = t1 - msg.object.t;
        lastReceive = t1;
      }
    }
    return;
  }
  if (msg.op === 'error') noteError(`server error ${msg.code}: ${msg.error}`);
  else if (measuring) otherMessages += 1;
}

function openSocket(i) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (ok) subscribed += 1;
      else {
        failed += 1;
        noteError(why);
      }
      resolve();
    };
    const ws = new WebSocket(cfg.ws, { perMessageDeflate: false });
    sockets[i] = ws;
    const timer = setTimeout(() => {
      finish(false, 'connect timeout');
      ws.terminate();
    }, cfg.connectTimeoutS * 1000);
    ws.on('open', () => {
      ws.send(JSON.stringify({ op: 'connect', applicationId: cfg.appId }));
    });
    ws.on('message', (data) => {
      if (done) {
        onMessage(data);
        return;
      }
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        finish(false, 'bad json during connect');
        return;
      }
      if (msg.op === 'connected') {
        ws.send(JSON.stringify({
          op: 'subscribe', requestId: 1, query: { className: cfg.className, where: {} },
        }));
      } else if (msg.op === 'subscribed') {
        finish(true);
      } else if (msg.op === 'error') {
        finish(false, `error ${msg.code}: ${msg.error}`);
      }
    });
    ws.on('error', (err) => {
      if (!done) finish(false, `socket error: ${err.code || err.message}`);
      else noteError(`socket error: ${err.code || err.message}`);
    });
    ws.on('close', () => {
      if (!done) finish(false, 'closed during connect');
      else if (!shuttingDown) closedEarly += 1;
    });
  });
}

let shuttingDown = false;

async function connectAll() {
  const t0 = now();
  let next = 0;
  let lastLog = t0;
  const worker = async () => {
    while (next < cfg.clients) {
      const i = next++;
      await openSocket(i);
      if (now() - lastLog > 2000) {
        lastLog = now();
        log(`${subscribed} subscribed, ${failed} failed of ${cfg.clients}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.connectConcurrency, cfg.clients) }, worker));
  return (now() - t0) / 1000;
}

// --------------------------------------------------------------------------- writes

const headers = {
  'X-Parse-Application-Id': cfg.appId,
  'X-Parse-Master-Key': cfg.masterKey,
  'Content-Type': 'application/json',
};
let writeErrors = 0;
let firstWriteError = '';
const writeLatencies = [];

async function write(seq, createdIds) {
  let url;
  let method;
  if (seq % 2 === 0) {
    url = `${cfg.rest}/classes/${cfg.className}`;
    method = 'POST';
  } else {
    const id = await createdIds[seq - 1];
    if (!id) return undefined;
    url = `${cfg.rest}/classes/${cfg.className}/${id}`;
    method = 'PUT';
  }
  const t = now();
  const body = method === 'POST' ? { t, seq, pad: cfg.pad } : { t, seq };
  try {
    const res = await fetch(url, { method, headers, body: JSON.stringify(body) });
    const text = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status} ${text.slice(0, 200)}`);
    if (seq >= firstMeasured) writeLatencies.push(now() - t);
    return method === 'POST' ? JSON.parse(text).objectId : undefined;
  } catch (err) {
    writeErrors += 1;
    if (!firstWriteError) firstWriteError = `${method} ${err.message}`;
    return undefined;
  }
}

async function runWrites() {
  const interval = 1000 / cfg.rate;
  const createdIds = new Array(totalWrites);
  const t0 = now();
  let measureStart = t0;
  for (let seq = 0; seq < totalWrites; seq++) {
    const due = t0 + seq * interval;
    const wait = due - now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (seq === firstMeasured) {
      measureStart = now();
      measuring = true;
    }
    createdIds[seq] = write(seq, createdIds);
  }
  await Promise.all(createdIds);
  const writesEnd = now();
  // Drain: wait until every socket has every measured event, or drainS after the last write.
  const expected = cfg.writes * subscribed;
  const deadline = writesEnd + cfg.drainS * 1000;
  while (nLat < expected && now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return { measureStart, writesEnd };
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

async function main() {
  const connectS = await connectAll();
  emit({ phase: 'subscribed', connect_s: connectS, sockets: subscribed, failed, errors });
  const rl = createInterface({ input: process.stdin });
  await new Promise((resolve) => rl.once('line', resolve));
  rl.close();
  const { measureStart, writesEnd } = await runWrites();
  const lat = latencies.subarray(0, nLat).sort();
  const measuredWrites = Array.from(perWrite.subarray(firstMeasured));
  const received = nLat;
  const expected = cfg.writes * subscribed;
  // Delivered events per second: the measured events over the time from the first
  // measured write to the last event received.
  const spanS = Math.max((lastReceive || writesEnd) - measureStart, 1) / 1000;
  const wl = writeLatencies.sort((a, b) => a - b);
  emit({
    phase: 'result',
    sockets: subscribed,
    writes: cfg.writes,
    write_rate: cfg.rate,
    write_errors: writeErrors,
    first_write_error: firstWriteError,
    write_p50_ms: percentile(wl, 50),
    write_p99_ms: percentile(wl, 99),
    expected_events: expected,
    received_events: received,
    min_events_per_write: measuredWrites.length ? Math.min(...measuredWrites) : 0,
    events_per_s: received / spanS,
    span_s: spanS,
    p50_ms: percentile(lat, 50),
    p90_ms: percentile(lat, 90),
    p99_ms: percentile(lat, 99),
    max_ms: lat.length ? lat[lat.length - 1] : null,
    closed_early: closedEarly,
    other_messages: otherMessages,
    errors,
  });
  shuttingDown = true;
  for (const ws of sockets) {
    if (ws) ws.terminate();
  }
  process.exit(0);
}

main().catch((err) => {
  log(`failed: ${err.stack || err}`);
  process.exit(1);
});
