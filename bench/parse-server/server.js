'use strict';
// Launcher for the Parse Server comparison target of the Bastion benchmark.
//
// Configuration comes from the environment (bench/run.py sets all of it):
//   BENCH_PORT         port to listen on (host is always 127.0.0.1)
//   BENCH_DATABASE_URI PostgreSQL URI of a database owned by this run
//   BENCH_WORKERS      number of server processes (node cluster workers), default 1
//   BENCH_APP_ID       application id, default "bench"
//   BENCH_MASTER_KEY   master key, default "benchmaster"
//   BENCH_CLOUD        optional: cloud code file (bench/cloud.py sets it); none when unset
//   BENCH_LIVE_QUERY   optional: comma-separated class names (regular expressions, as
//                      Parse Server's liveQuery.classNames) to run LiveQuery for, with the
//                      LiveQuery WebSocket server on the same port (bench/livequery.py sets
//                      it); no LiveQuery when unset
// Files go to ./files under the working directory (run.py uses a temp dir).
//
// With BENCH_WORKERS > 1 the primary process forks one worker first and waits
// until it listens (so only one process creates Parse's system tables), then
// forks the others; the workers share the port through node's cluster module.

const cluster = require('node:cluster');

const host = '127.0.0.1';
const port = Number(process.env.BENCH_PORT || 1337);
const workers = Math.max(1, Number(process.env.BENCH_WORKERS || 1));
const databaseURI = process.env.BENCH_DATABASE_URI;
const appId = process.env.BENCH_APP_ID || 'bench';
const masterKey = process.env.BENCH_MASTER_KEY || 'benchmaster';
const cloud = process.env.BENCH_CLOUD ? require('node:path').resolve(process.env.BENCH_CLOUD) : undefined;
const liveQueryClasses = (process.env.BENCH_LIVE_QUERY || '').split(',').filter(Boolean);

if (!databaseURI) {
  console.error('server.js: BENCH_DATABASE_URI is required');
  process.exit(2);
}

async function runWorker() {
  const { ParseServer } = require('parse-server');
  const FSFilesAdapter = require('@parse/fs-files-adapter');
  await ParseServer.startApp({
    appId,
    masterKey,
    maintenanceKey: `${masterKey}-maintenance`,
    databaseURI,
    serverURL: `http://${host}:${port}/parse`,
    mountPath: '/parse',
    host,
    port,
    filesAdapter: new FSFilesAdapter(),
    logsFolder: null,
    logLevel: 'error',
    verifyServerUrl: false,
    ...(cloud ? { cloud } : {}),
    ...(liveQueryClasses.length
      ? { liveQuery: { classNames: liveQueryClasses }, startLiveQueryServer: true }
      : {}),
  });
  if (process.send) {
    process.send({ bench: 'listening' });
  }
}

function runPrimary() {
  let started = 0;
  let stopping = false;
  const fork = () => {
    started += 1;
    const worker = cluster.fork();
    worker.on('message', (msg) => {
      if (msg && msg.bench === 'listening' && started < workers) {
        fork();
      }
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`server.js: worker ${worker.process.pid} exited (${signal || code}); stopping`);
      shutdown(1);
    }
  });
  const shutdown = (code) => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) {
      if (w) w.process.kill('SIGTERM');
    }
    setTimeout(() => process.exit(code), 2000).unref();
    const check = setInterval(() => {
      if (Object.keys(cluster.workers).length === 0) {
        clearInterval(check);
        process.exit(code);
      }
    }, 50);
  };
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  fork();
}

if (workers > 1 && cluster.isPrimary) {
  runPrimary();
} else {
  runWorker().catch((err) => {
    console.error('server.js: failed to start Parse Server:', err);
    process.exit(1);
  });
}
