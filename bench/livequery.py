#!/usr/bin/env python3
"""LiveQuery benchmark: N subscribed WebSocket clients and a steady stream of writes.

For each server and each client count, a Node load client (``bench/livequery/client.mjs``)
opens N WebSockets that each connect and subscribe to every object of ``BenchLive``, then
writes through the REST API at a fixed rate (creates and updates alternately, each carrying
its wall-clock time ``t``), so every write is one event on every socket.  Measured: event
delivery latency (receive time minus ``t``; p50/p90/p99/max), events delivered per second,
the share of the expected events that arrived, and the server's resident memory before the
clients connect and once they are all subscribed (memory per connection).

Servers: ``bastion`` (one process, PostgreSQL), ``parse`` (Parse Server 9 with its LiveQuery
server on the same port, PostgreSQL) and ``bastion-redis`` (Bastion with two worker processes
and ``--pubsub redis://...``: sockets land on either process, every write reaches both
through Redis).  Start-up, databases, clean-up and CPU accounting come from ``run.py``.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from run import (
    APP_ID,
    BENCH_DIR,
    CLK_TCK,
    HOST,
    MASTER_KEY,
    OUT_DIR,
    PARSE_DIR,
    BenchError,
    Monitor,
    Options,
    Postgres,
    SeedTarget,
    csv_list,
    http_json,
    is_load_side,
    log,
    machine_info,
    rss_kib,
    scan_procs,
    started_server,
    summarize,
    tree_pids,
    tree_rss_kib,
    wait_for_quiet,
)

SERVERS = ("bastion", "parse", "bastion-redis")
CLASS = "BenchLive"
CLIENT = BENCH_DIR / "livequery" / "client.mjs"
FIELDS = {"t": {"type": "Number"}, "seq": {"type": "Number"}, "pad": {"type": "String"}}
PAD = "x" * 64  # a little payload in every created object


@dataclass
class LqRow:
    server: str
    workers: int
    clients: int
    write_rate: float | None = None
    writes: int | None = None
    sockets: int | None = None
    connect_s: float | None = None
    expected: int | None = None
    received: int | None = None
    events_per_s: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    write_p50_ms: float | None = None
    write_errors: int | None = None
    rss_idle_mib: float | None = None
    rss_connected_mib: float | None = None
    kib_per_conn: float | None = None
    peak_rss_mib: float | None = None
    server_cpu: float | None = None
    client_cpu: float | None = None
    other_cpu: float | None = None
    notes: str = ""
    error: str = ""


class LoadMonitor(Monitor):
    """run.Monitor that counts the load client (and Redis) as load, and the client's CPU apart."""

    def __init__(self, root: int, db: str | None, client_pid: int, redis: bool) -> None:
        super().__init__(root, db)
        self.client_pid = client_pid
        self.redis = redis
        self.client_cores = 0.0

    def _sample(self) -> None:
        procs = scan_procs()
        tree = set(tree_pids(self.root, procs))
        self.peak_kib = max(self.peak_kib, sum(rss_kib(p) for p in tree))
        for pid, info in procs.items():
            if pid in tree:
                cat = "server"
            elif (pid == self.client_pid or (self.redis and info.comm == "redis-server")
                  or is_load_side(pid, info, self.db)):
                cat = "load"
            else:
                continue
            self._last[pid] = (cat, info.cpu_ticks)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        wall = time.monotonic() - self._t0
        last = self._last.get(self.client_pid)
        if last and wall > 0:
            self.client_cores = (last[1] - self._base.get(self.client_pid, 0)) / CLK_TCK / wall


class LoadClient:
    """The Node load client: JSON lines on stdout, "go" on stdin."""

    def __init__(self, config: dict[str, Any], log_path: Path) -> None:
        self._err = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(["node", str(CLIENT), json.dumps(config)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, text=True, start_new_session=True)
        self.log_path = log_path
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, phase: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"load client: no '{phase}' within {timeout:.0f}s") from None
            if line is None:
                tail = self.log_path.read_text(errors="replace")[-800:]
                raise BenchError(f"load client exited (code {self.proc.wait()}) before '{phase}':\n{tail}")
            msg = json.loads(line)
            if msg.get("phase") == phase:
                return msg

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._err.close()


def seed(target: SeedTarget) -> list[str]:
    """Create BenchLive; check that a write and a LiveQuery connection work."""
    base = f"{target.base}/parse"
    status, body = http_json("POST", f"{base}/schemas/{CLASS}", {"className": CLASS, "fields": FIELDS})
    if not 200 <= status < 300:
        raise BenchError(f"POST /schemas/{CLASS} -> {status} {str(body)[:300]}")
    status, body = http_json("POST", f"{base}/classes/{CLASS}", {"t": 0, "seq": -1, "pad": PAD})
    if status != 201:
        raise BenchError(f"POST /classes/{CLASS} -> {status} {str(body)[:300]}")
    log(f"{target.tag}: created {CLASS}")
    return []


def redis_reachable(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or HOST, parts.port or 6379), timeout=2):
            return True
    except OSError:
        return False


def redis_numsub(url: str, channel: str) -> int | None:
    """Subscribers of a Redis pub/sub channel (PUBSUB NUMSUB), None if Redis does not answer."""
    parts = urllib.parse.urlsplit(url)
    args = [b"PUBSUB", b"NUMSUB", channel.encode()]
    cmd = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    try:
        with socket.create_connection((parts.hostname or HOST, parts.port or 6379), timeout=2) as conn:
            conn.sendall(cmd)
            reply = conn.recv(4096).decode(errors="replace").split("\r\n")
        # *2 $len channel :count
        return int(reply[3].lstrip(":"))
    except (OSError, ValueError, IndexError):
        return None


def raise_fd_limit(clients: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < clients + 1024:
        log(f"WARNING: open files limit {want} is low for {clients} sockets (server and client each need one "
            "per socket); raise the hard limit (ulimit -Hn)")


def measure(run_server: Any, row: LqRow, args: argparse.Namespace, opts: Options, redis: bool) -> None:
    server, base, db = run_server.server, run_server.base, run_server.db
    tag = f"{row.server}-w{row.workers} n={row.clients}"
    rate = args.rate if args.rate else max(0.5, args.events_per_second / row.clients)
    writes = max(2, round(rate * args.duration))
    warmup = max(2, round(rate * args.warmup))
    row.write_rate, row.writes = round(rate, 2), writes
    wait_for_quiet(server.pid, db, args.wait_idle, args.idle_limit, tag)
    time.sleep(1.0)
    row.rss_idle_mib = round(tree_rss_kib(server.pid) / 1024, 1)
    config = {
        "ws": base.replace("http://", "ws://") + "/parse", "rest": f"{base}/parse", "appId": APP_ID,
        "masterKey": MASTER_KEY, "className": CLASS, "clients": row.clients, "rate": rate,
        "warmupWrites": warmup, "writes": writes, "drainS": args.drain,
        "connectConcurrency": args.connect_concurrency, "connectTimeoutS": 60, "pad": PAD,
    }
    client = LoadClient(config, opts.run_dir / f"client-{row.server}-w{row.workers}-{row.clients}.log")
    try:
        sub = client.expect("subscribed", args.connect_timeout)
        row.sockets, row.connect_s = sub["sockets"], round(sub["connect_s"], 2)
        log(f"{tag}: {sub['sockets']} sockets subscribed in {sub['connect_s']:.1f}s, {sub['failed']} failed"
            + (f" {sub['errors']}" if sub["errors"] else ""))
        if sub["failed"]:
            row.notes += f"{sub['failed']} sockets failed to subscribe ({summarize(json.dumps(sub['errors']))}); "
        if not sub["sockets"]:
            raise BenchError("no socket could subscribe")
        time.sleep(2.0)  # let the server settle after the connection burst
        rss = tree_rss_kib(server.pid)
        row.rss_connected_mib = round(rss / 1024, 1)
        row.kib_per_conn = round((rss - row.rss_idle_mib * 1024) / sub["sockets"], 1)
        log(f"{tag}: RSS {row.rss_idle_mib} -> {row.rss_connected_mib} MiB; writing {rate:.2f}/s for "
            f"{writes} writes (+{warmup} warm-up)")
        with LoadMonitor(server.pid, db, client.proc.pid, redis) as mon:
            client.go()
            res = client.expect("result", (warmup + writes) / rate + args.drain + 60)
        row.expected, row.received = res["expected_events"], res["received_events"]
        row.events_per_s = round(res["events_per_s"], 1)
        for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "write_p50_ms"):
            if res[key] is not None:
                setattr(row, key, round(res[key], 2))
        row.write_errors = res["write_errors"]
        row.peak_rss_mib = round(mon.peak_kib / 1024, 1)
        row.server_cpu, row.client_cpu = round(mon.server_cores, 2), round(mon.client_cores, 2)
        row.other_cpu = round(mon.other_cores, 2)
        if res["write_errors"]:
            row.notes += f"{res['write_errors']} failed writes ({res['first_write_error'][:200]}); "
        if res["closed_early"]:
            row.notes += f"{res['closed_early']} sockets closed by the server during the load; "
        if res["errors"]:
            row.notes += f"client errors {json.dumps(res['errors'])[:300]}; "
        log(f"{tag}: {row.received}/{row.expected} events, {row.events_per_s:.0f}/s, p50 {row.p50_ms} ms "
            f"p99 {row.p99_ms} ms max {row.max_ms} ms; cpu server {mon.server_cores:.2f} client "
            f"{mon.client_cores:.2f} other {mon.other_cores:.2f}")
        if mon.other_cores > args.idle_limit:
            log(f"{tag}: WARNING other processes used {mon.other_cores:.2f} cores during the measurement")
    finally:
        client.stop()
        time.sleep(2.0)  # the server closes the sockets before the next client count


def bench(name: str, clients: list[int], args: argparse.Namespace, opts: Options, rows: list[LqRow]) -> None:
    workers = 2 if name == "bastion-redis" else 1
    kind = "parse" if name == "parse" else "bastion-pg"
    redis = name == "bastion-redis"
    done = len(rows)
    try:
        if redis:
            os.environ["BASTION_PUBSUB"] = args.redis  # read by `bastion serve` as --pubsub
        try:
            ctx = started_server(kind, workers, opts, seed)
            running = ctx.__enter__()
        finally:
            os.environ.pop("BASTION_PUBSUB", None)
        if redis:
            # Bastion's LiveQuery channel (an implementation detail: only logged); the Redis
            # adapter prefixes channels with the URL's database number.
            db = args.redis.rstrip("/").rsplit("/", 1)[-1]
            channel = f"db{db if db.isdigit() else 0}:bastion:{APP_ID}:livequery"
            log(f"{name}: {redis_numsub(args.redis, channel)} subscribers on Redis channel {channel} "
                f"(expected {workers})")
        try:
            for n in clients:
                row = LqRow(server=name, workers=workers, clients=n)
                try:
                    if not running.server.alive():
                        raise BenchError(f"server exited:\n{running.server.log_tail()}")
                    measure(running, row, args, opts, redis)
                except BenchError as err:
                    row.error = str(err)
                    log(f"{name} n={n}: FAILED: {err}")
                rows.append(row)
        finally:
            ctx.__exit__(None, None, None)
    except BenchError as err:
        log(f"{name}: FAILED: {err}")
        measured = {r.clients for r in rows[done:]}
        rows.extend(LqRow(server=name, workers=workers, clients=n, error=summarize(str(err)))
                    for n in clients if n not in measured)


def fmt(v: float | int | None, spec: str = "") -> str:
    return "-" if v is None else format(v, spec)


def print_table(rows: list[LqRow]) -> None:
    headers = ["server", "procs", "clients", "writes/s", "events/s", "delivered", "p50 ms", "p99 ms", "max ms",
               "connect s", "RSS idle MiB", "RSS conn MiB", "KiB/conn", "srv CPU", "client CPU", "other CPU"]
    table = []
    for r in rows:
        delivered = "-" if not r.expected else f"{100 * (r.received or 0) / r.expected:.1f} %"
        table.append([r.server, str(r.workers), str(r.clients), fmt(r.write_rate, "g"), fmt(r.events_per_s, ".0f"),
                      delivered, fmt(r.p50_ms, ".1f"), fmt(r.p99_ms, ".1f"), fmt(r.max_ms, ".0f"),
                      fmt(r.connect_s, ".1f"), fmt(r.rss_idle_mib, ".0f"), fmt(r.rss_connected_mib, ".0f"),
                      fmt(r.kib_per_conn, ".1f"), fmt(r.server_cpu, ".2f"), fmt(r.client_cpu, ".2f"),
                      fmt(r.other_cpu, ".2f")])
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)) + " |")
    notes = [f"FAILED {r.server} n={r.clients}: {summarize(r.error)}" for r in rows if r.error]
    notes += [f"NOTE {r.server} n={r.clients}: {r.notes.rstrip('; ')}" for r in rows if r.notes]
    if notes:
        print()
        print("\n".join(notes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LiveQuery benchmark (see bench/README.md).")
    parser.add_argument("--servers", type=csv_list(SERVERS), default=list(SERVERS),
                        help=f"comma-separated, from {','.join(SERVERS)} (default: all)")
    parser.add_argument("--clients", default="1000,10000",
                        help="subscribed WebSocket clients, comma-separated (default: 1000,10000)")
    parser.add_argument("--events-per-second", type=float, default=10_000,
                        help="target delivered events/s: writes/s = this / clients (default: 10000)")
    parser.add_argument("--rate", type=float, help="writes per second (overrides --events-per-second)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of measured writes (default: 20)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of writes not measured (default: 3)")
    parser.add_argument("--drain", type=float, default=10.0,
                        help="after the last write, wait up to this long for missing events (default: 10)")
    parser.add_argument("--connect-concurrency", type=int, default=100,
                        help="WebSocket handshakes in flight while connecting (default: 100)")
    parser.add_argument("--connect-timeout", type=float, default=300.0,
                        help="seconds for all clients to connect and subscribe (default: 300)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11",
                        help="pub/sub URL for bastion-redis (default: redis://127.0.0.1:6379/11)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for Bastion (default: this one)")
    parser.add_argument("--pg-host", default=HOST)
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--wait-idle", type=float, default=60.0,
                        help="before each measurement, wait up to this long for other processes to calm down")
    parser.add_argument("--idle-limit", type=float, default=0.15,
                        help="CPU cores other processes may use for the machine to count as quiet (default: 0.15)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200 clients, 5 s, no waiting for a quiet machine")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    try:
        clients = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        parser.error("--clients takes comma-separated integers")
    if args.quick:
        clients, args.duration, args.warmup, args.wait_idle, args.drain = [200], 5.0, 1.0, 0.0, 5.0
    if args.pg_host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("only a PostgreSQL server on this machine (loopback) may be used")
    servers = list(args.servers)
    if shutil.which("node") is None:
        print("error: node is needed for the load client", file=sys.stderr)
        return 2
    if "parse" in servers and not (PARSE_DIR / "node_modules" / "parse-server").is_dir():
        log("Parse Server is not installed: run `cd bench/parse-server && npm ci`; skipping it")
        servers.remove("parse")
    if "bastion-redis" in servers and not redis_reachable(args.redis):
        log(f"no Redis at {args.redis}: skipping bastion-redis")
        servers.remove("bastion-redis")
    if not servers:
        print("error: no server to benchmark", file=sys.stderr)
        return 2
    raise_fd_limit(max(clients))
    os.environ["BENCH_LIVE_QUERY"] = CLASS  # read by bench/parse-server/server.js
    OUT_DIR.mkdir(exist_ok=True)
    opts = Options(python=args.python, duration=args.duration, warmup=args.warmup, connections=0, threads=0,
                   seed=0, startup_timeout=args.startup_timeout, wait_idle=args.wait_idle,
                   idle_limit=args.idle_limit, retries=0,
                   pg=Postgres(args.pg_host, args.pg_port, args.pg_user, args.python),
                   run_dir=Path(tempfile.mkdtemp(prefix="lq-", dir=OUT_DIR)))
    rows: list[LqRow] = []
    info: dict[str, str] = {}
    interrupted = False
    try:
        info = machine_info(opts)
        log("machine: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "wrk"))
        log(f"logs and temp data in {opts.run_dir}")
        for name in servers:
            bench(name, clients, args, opts, rows)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; servers stopped and databases dropped")
    print()
    what = (f"{args.rate:g} writes/s" if args.rate else f"writes/s = {args.events_per_second:g} / clients")
    print(f"LiveQuery: every client subscribed to all of {CLASS}; {what}, {args.duration:g}s measured "
          f"(+{args.warmup:g}s warm-up), creates and updates alternating")
    print("delivered: events received of (writes x sockets); latency: receive time - write time in the object; "
          "KiB/conn: (RSS connected - RSS idle) / sockets")
    print_table(rows)
    if args.json:
        payload = {"machine": info, "settings": {
            "clients": clients, "servers": servers, "duration_s": args.duration, "warmup_s": args.warmup,
            "rate": args.rate, "events_per_second": args.events_per_second, "drain_s": args.drain,
            "command": " ".join(["python", "bench/livequery.py", *(argv if argv is not None else sys.argv[1:])])},
            "results": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    if interrupted:
        return 130
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
