#!/usr/bin/env python3
"""Bastion benchmark harness.

Starts each server under test on 127.0.0.1 (each on a fresh PostgreSQL
database that is dropped again at the end), seeds it through its REST API,
drives the same wrk load at it and prints one table.  See bench/README.md.

Standard library only, so any Python 3.11+ can run it; the servers are started
with ``--python`` (default: this interpreter).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WRK_DIR = BENCH_DIR / "wrk"
PARSE_DIR = BENCH_DIR / "parse-server"
OUT_DIR = BENCH_DIR / "out"

HOST = "127.0.0.1"
APP_ID = "bench"
MASTER_KEY = "benchmaster"
CLASS_NAME = "BenchItem"
CLASS_PATH = f"/parse/classes/{CLASS_NAME}"

ALL_SERVERS = ("bastion-pg", "bastion-sqlite", "parse", "ceiling")
ALL_WORKLOADS = ("create", "get", "query", "update")
# The ceiling app has a single route, a primary-key read.
CEILING_WORKLOADS = ("get",)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A server under test could not be started, seeded or measured."""


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    python: str

    def uri(self, db: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{db}"

    def _run_sql(self, sql: str, db: str = "postgres") -> str:
        """Run one statement (on the maintenance database unless ``db`` is given); psql if present, else asyncpg."""
        psql = shutil.which("psql")
        if psql:
            proc = subprocess.run(
                [psql, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                 "-U", self.user, "-d", db, "-c", sql],
                capture_output=True, text=True, timeout=60,
            )
            if proc.returncode != 0:
                raise BenchError(f"psql failed: {proc.stderr.strip()}")
            return proc.stdout.strip()
        code = (
            "import asyncio, sys, asyncpg\n"
            "async def m():\n"
            "    c = await asyncpg.connect(sys.argv[1])\n"
            "    try:\n"
            "        r = await c.fetch(sys.argv[2])\n"
            "        print('\\n'.join(str(x[0]) for x in r))\n"
            "    finally:\n"
            "        await c.close()\n"
            "asyncio.run(m())\n"
        )
        proc = subprocess.run([self.python, "-c", code, self.uri(db), sql],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise BenchError(f"SQL via asyncpg failed: {proc.stderr.strip()[-500:]}")
        return proc.stdout.strip()

    def run_sql(self, db: str, sql: str) -> str:
        """Run one statement on database ``db``."""
        return self._run_sql(sql, db)

    def copy_csv(self, db: str, table: str, columns: list[str], data: bytes) -> None:
        """Bulk-load CSV rows into ``table`` of ``db`` with COPY (psql, else asyncpg).

        ``table`` and ``columns`` are the harness's own constant names, quoted here.
        """
        def quote(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'
        target = f"{quote(table)} ({', '.join(quote(c) for c in columns)})"
        psql = shutil.which("psql")
        if psql:
            proc = subprocess.run(
                [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port),
                 "-U", self.user, "-d", db, "-c", f"COPY {target} FROM STDIN WITH (FORMAT csv)"],
                input=data, capture_output=True, timeout=600,
            )
            if proc.returncode != 0:
                raise BenchError(f"COPY into {table} failed: {proc.stderr.decode(errors='replace').strip()}")
            return
        code = (
            "import asyncio, io, sys, asyncpg\n"
            "async def m():\n"
            "    c = await asyncpg.connect(sys.argv[1])\n"
            "    try:\n"
            "        await c.copy_to_table(sys.argv[2], source=io.BytesIO(sys.stdin.buffer.read()),\n"
            "                              columns=sys.argv[3:], format='csv')\n"
            "    finally:\n"
            "        await c.close()\n"
            "asyncio.run(m())\n"
        )
        proc = subprocess.run([self.python, "-c", code, self.uri(db), table, *columns],
                              input=data, capture_output=True, timeout=600)
        if proc.returncode != 0:
            raise BenchError(f"COPY into {table} via asyncpg failed: {proc.stderr.decode(errors='replace')[-500:]}")

    def version(self) -> str:
        return self._run_sql("SHOW server_version")

    def create_db(self) -> str:
        name = "bench_" + secrets.token_hex(6)
        self._run_sql(f'CREATE DATABASE "{name}"')
        return name

    def drop_db(self, name: str) -> None:
        self._run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class ProcInfo:
    comm: str
    ppid: int
    cpu_ticks: int  # utime + stime, in clock ticks


def scan_procs() -> dict[int, ProcInfo]:
    """All processes of the machine: name, parent and CPU time used so far."""
    procs: dict[int, ProcInfo] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ... utime stime ..."; comm may contain spaces or parentheses.
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) >= 13:
            procs[int(entry.name)] = ProcInfo(comm, int(rest[1]), int(rest[11]) + int(rest[12]))
    return procs


def tree_pids(root: int, procs: dict[int, ProcInfo] | None = None) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, info in (procs if procs is not None else scan_procs()).items():
        children.setdefault(info.ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_rss_kib(root: int) -> int:
    return sum(rss_kib(p) for p in tree_pids(root))


def busy_ticks() -> int:
    """CPU time spent by the whole machine outside idle/iowait, in clock ticks."""
    with open("/proc/stat", encoding="utf-8") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    return sum(fields[:8]) - fields[3] - fields[4]


CLK_TCK = os.sysconf("SC_CLK_TCK")
_PG_BACKEND = re.compile(r"^postgres: \S+ (\S+) (?:\S+\(\d+\)|\[local\])")
_pg_db_cache: dict[int, str | None] = {}


def pg_backend_db(pid: int) -> str | None:
    """Database of a PostgreSQL client backend (None for PostgreSQL's own processes)."""
    if pid not in _pg_db_cache:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = ""
        m = _PG_BACKEND.match(cmd)
        _pg_db_cache[pid] = m.group(1) if m else None
    return _pg_db_cache[pid]


def is_load_side(pid: int, info: ProcInfo, db: str | None) -> bool:
    """wrk, this harness, and PostgreSQL except backends serving other databases."""
    if info.comm == "wrk" or pid == os.getpid():
        return True
    if info.comm.startswith("postgres"):
        backend_db = pg_backend_db(pid)
        return backend_db is None or backend_db == db
    return False


class Monitor:
    """Samples a server's process tree during a measurement, in a background thread.

    Records the peak of the tree's summed VmRSS, and splits the machine's CPU use
    into the server tree, the load side (wrk, PostgreSQL) and everything else.
    "Other" CPU is noise from processes outside the benchmark: if it is large, the
    numbers are not trustworthy.  A process's CPU is taken from its last sample, so
    up to one interval of a process that exits is counted as "other".
    """

    def __init__(self, root: int, db: str | None, interval: float = 0.2) -> None:
        self.root = root
        self.db = db
        self.interval = interval
        self.peak_kib = 0
        self.server_cores = 0.0
        self.other_cores = 0.0
        self._base: dict[int, int] = {}
        self._last: dict[int, tuple[str, int]] = {}  # pid -> (category, cpu ticks)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        procs = scan_procs()
        tree = set(tree_pids(self.root, procs))
        self.peak_kib = max(self.peak_kib, sum(rss_kib(p) for p in tree))
        for pid, info in procs.items():
            if pid in tree:
                cat = "server"
            elif is_load_side(pid, info, self.db):
                cat = "load"
            else:
                continue
            self._last[pid] = (cat, info.cpu_ticks)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Monitor:
        self._t0 = time.monotonic()
        self._busy0 = busy_ticks()
        self._base = {pid: info.cpu_ticks for pid, info in scan_procs().items()}
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.monotonic() - self._t0
        busy = busy_ticks() - self._busy0
        used = {"server": 0, "load": 0}
        for pid, (cat, ticks) in self._last.items():
            used[cat] += ticks - self._base.get(pid, 0)
        if wall > 0:
            self.server_cores = used["server"] / CLK_TCK / wall
            self.other_cores = max(0.0, (busy - used["server"] - used["load"]) / CLK_TCK / wall)


def outside_load(root: int, db: str | None, seconds: float = 1.0) -> float:
    """CPU (in cores) used over ``seconds`` by processes outside the benchmark."""
    busy0, procs0 = busy_ticks(), scan_procs()
    time.sleep(seconds)
    busy1, procs1 = busy_ticks(), scan_procs()
    tree = set(tree_pids(root, procs1))
    ours = sum(info.cpu_ticks - (procs0[pid].cpu_ticks if pid in procs0 else 0)
               for pid, info in procs1.items() if pid in tree or is_load_side(pid, info, db))
    return max(0.0, (busy1 - busy0 - ours) / CLK_TCK / seconds)


def wait_for_quiet(root: int, db: str | None, max_wait: float, limit: float, what: str) -> float:
    """Wait up to ``max_wait`` s until other processes use less than ``limit`` cores."""
    deadline = time.monotonic() + max_wait
    load = outside_load(root, db)
    if load >= limit and max_wait > 0:
        log(f"{what}: machine busy ({load:.2f} cores used by other processes); waiting up to {max_wait:.0f}s")
        while load >= limit and time.monotonic() < deadline:
            load = outside_load(root, db)
        log(f"{what}: {'quiet now' if load < limit else 'still busy, measuring anyway'} ({load:.2f} cores)")
    return load


class ServerProcess:
    """A server started in its own process group, stopped by its pid."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=full_env, cwd=str(cwd) if cwd else None, start_new_session=True,
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: did not stop on SIGTERM, sending SIGKILL")
                with suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        # Worker processes left behind stay in the process group this server was
        # started in (its pid); give them a moment, then kill that group.
        deadline = time.monotonic() + 5
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._group_alive():
            log(f"{self.name}: killing leftover processes of group {self.pid}")
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self._log.close()


# --------------------------------------------------------------------------- HTTP


def http_json(method: str, url: str, body: Any = None, *, timeout: float = 60.0,
              master: bool = True) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("X-Parse-Application-Id", APP_ID)
    if master:
        req.add_header("X-Parse-Master-Key", MASTER_KEY)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")[:300]


def wait_healthy(server: ServerProcess, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not server.alive():
            raise BenchError(f"{server.name} exited with code {server.proc.returncode} during start-up:\n"
                             f"{server.log_tail()}")
        try:
            status, body = http_json("GET", url, timeout=2, master=False)
            if status == 200 and isinstance(body, dict) and body.get("status") == "ok":
                return
            last = f"HTTP {status}: {body}"
        except (OSError, urllib.error.URLError) as err:
            last = str(err)
        time.sleep(0.25)
    raise BenchError(f"{server.name} not healthy after {timeout:.0f}s ({last}):\n{server.log_tail()}")


def wait_processes(server: ServerProcess, workers: int, timeout: float) -> None:
    """With several workers, the health check answers as soon as the first one
    listens: wait until the tree holds a supervisor plus ``workers`` processes."""
    if workers < 2:
        return
    deadline = time.monotonic() + timeout
    while len(tree_pids(server.pid)) < workers + 1:
        if time.monotonic() > deadline:
            log(f"{server.name}: NOTE expected {workers} worker processes, found "
                f"{len(tree_pids(server.pid)) - 1}")
            return
        time.sleep(0.1)
    time.sleep(1.0)  # let the last worker finish booting


# --------------------------------------------------------------------------- seeding


def seed_object(i: int) -> dict[str, Any]:
    return {"n": i, "name": f"item-{i}", "tags": [f"t{i % 10}", f"g{i % 7}"]}


@dataclass
class SeedReport:
    ids: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)


def seed_rest(base: str, count: int) -> SeedReport:
    """Create BenchItem (schema, index on n) and ``count`` objects through the REST API."""
    notes: list[str] = []
    t0 = time.monotonic()
    schema = {"className": CLASS_NAME, "fields": {
        "n": {"type": "Number"}, "name": {"type": "String"}, "tags": {"type": "Array"}}}
    status, body = http_json("POST", f"{base}/schemas/{CLASS_NAME}", schema)
    schema_ok = 200 <= status < 300
    if not schema_ok:
        notes.append(f"POST /schemas/{CLASS_NAME} -> {status} {str(body)[:200]}")

    def put_index() -> bool:
        st, b = http_json("PUT", f"{base}/schemas/{CLASS_NAME}", {"indexes": {"n_1": {"n": 1}}})
        if not 200 <= st < 300:
            notes.append(f"PUT /schemas/{CLASS_NAME} indexes -> {st} {str(b)[:200]}")
            return False
        return True

    index_ok = put_index() if schema_ok else False

    chunks = [list(range(start, min(start + 50, count))) for start in range(0, count, 50)]
    use_batch = True
    batch_lock = threading.Lock()

    def single(i: int) -> str:
        st, b = http_json("POST", f"{base}/classes/{CLASS_NAME}", seed_object(i))
        if st not in (200, 201) or not isinstance(b, dict) or "objectId" not in b:
            raise BenchError(f"seed POST failed: {st} {str(b)[:300]}")
        return str(b["objectId"])

    def do_chunk(chunk: list[int]) -> list[str]:
        nonlocal use_batch
        if use_batch:
            reqs = [{"method": "POST", "path": CLASS_PATH, "body": seed_object(i)} for i in chunk]
            st, b = http_json("POST", f"{base}/batch", {"requests": reqs})
            if (200 <= st < 300 and isinstance(b, list) and len(b) == len(chunk)
                    and all(isinstance(r, dict) and "objectId" in r.get("success", {}) for r in b)):
                return [str(r["success"]["objectId"]) for r in b]
            with batch_lock:
                if use_batch:
                    use_batch = False
                    notes.append(f"/batch failed ({st} {str(b)[:200]}); seeded with single POSTs")
            # A partly applied batch would leave extra rows; they are harmless for the load.
        return [single(i) for i in chunk]

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(do_chunk, chunks))
    ids = [oid for chunk_ids in results for oid in chunk_ids]
    if not index_ok and not schema_ok:
        index_ok = put_index()
    if not index_ok:
        notes.append("index on n NOT created")
    notes.extend(check_seed(base, ids, count))
    return SeedReport(ids=ids, seconds=time.monotonic() - t0, notes=notes)


def check_seed(base: str, ids: list[str], count: int) -> list[str]:
    """Spot-check that the seeded data reads back, so fast-but-wrong answers show up."""
    problems: list[str] = []
    if len(ids) != count:
        problems.append(f"expected {count} ids, got {len(ids)}")
    if not ids:
        return problems
    st, b = http_json("GET", f"{base}/classes/{CLASS_NAME}/{ids[0]}")
    if st != 200 or not isinstance(b, dict) or b.get("objectId") != ids[0] or b.get("n") != 0:
        problems.append(f"GET of the first seeded object -> {st} {str(b)[:200]}")
    where = urllib.parse.quote(json.dumps({"n": {"$gt": count // 2}}, separators=(",", ":")))
    st, b = http_json("GET", f"{base}/classes/{CLASS_NAME}?where={where}&limit=20")
    results = b.get("results") if isinstance(b, dict) else None
    if (st != 200 or not isinstance(results, list) or len(results) != min(20, max(0, count - count // 2 - 1))
            or any(not isinstance(r, dict) or r.get("n", -1) <= count // 2 for r in results)):
        problems.append(f"query n > {count // 2} limit 20 -> {st} {str(b)[:200]}")
    return problems


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    first_error: str
    empty: int = 0  # 2xx answers of a find that found nothing ("results":[])


def run_wrk(url: str, workload: str, duration: float, connections: int, threads: int,
            script_args: list[str]) -> WrkResult:
    script = WRK_DIR / f"{workload}.lua"
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
            "-s", str(script), url, "--", *script_args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=duration + 60)
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"wrk did not finish within {duration + 60:.0f}s (server or machine stalled)") from err
    match = re.search(r"^BENCH_RESULT (\{.*\})$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or not match:
        raise BenchError(f"wrk failed (code {proc.returncode}): {proc.stderr.strip()[-500:]}\n{proc.stdout[-500:]}")
    r = json.loads(match.group(1))
    dur = r["duration_us"] / 1e6
    return WrkResult(
        requests=r["requests"], duration_s=round(dur, 3), rps=round(r["requests"] / dur, 1) if dur else 0.0,
        p50_ms=r["p50_us"] / 1000, p90_ms=r["p90_us"] / 1000, p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000, non2xx=r["non2xx"],
        socket_errors=r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"],
        first_error=r["first_error"], empty=r.get("empty", 0),
    )


# --------------------------------------------------------------------------- servers


@dataclass
class Row:
    server: str
    workers: int
    workload: str
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    non2xx: int | None = None
    socket_errors: int | None = None
    requests: int | None = None
    peak_rss_mib: float | None = None
    server_cpu: float | None = None  # cores used by the server tree during the measurement
    other_cpu: float | None = None  # cores used by processes outside the benchmark (noise)
    ratio_vs_parse: float | None = None
    first_error: str = ""
    empty: int | None = None  # finds that answered no results: a query that matches nothing is suspect
    error: str = ""
    round: int = 1  # which pass of the matrix (--rounds)


@dataclass
class Options:
    python: str
    duration: float
    warmup: float
    connections: int
    threads: int
    seed: int
    startup_timeout: float
    wait_idle: float
    idle_limit: float
    retries: int
    pg: Postgres
    run_dir: Path


@dataclass
class Running:
    server: ServerProcess
    base: str
    db: str | None
    script_args: list[str]


@dataclass
class SeedTarget:
    """A started, healthy server that a seeder fills (see ``started_server``)."""

    name: str  # one of the server names, e.g. "parse"
    tag: str  # name and worker count, for log lines
    base: str  # http://127.0.0.1:<port>
    db: str | None  # its PostgreSQL database (None for bastion-sqlite)
    tmp: Path  # the server's temp directory, for files the wrk scripts read


# Seeds a server and answers the wrk script arguments its workloads need.
Seeder = Callable[[SeedTarget], list[str]]


class Cleanup:
    """Things to undo at the end, also on Ctrl-C or error (run in reverse order)."""

    def __init__(self) -> None:
        self._items: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, fn: Callable[[], None]) -> None:
        self._items.append((what, fn))

    def run(self) -> None:
        # A second Ctrl-C must not leave a server running or a database behind.
        old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while self._items:
                what, fn = self._items.pop()
                try:
                    fn()
                except Exception as err:  # noqa: BLE001 - keep cleaning up
                    log(f"cleanup of {what} failed: {err}")
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)


@contextmanager
def started_server(name: str, workers: int, opts: Options, seeder: Seeder | None = None) -> Iterator[Running]:
    """Start and seed one server; yield what the load needs.

    ``seeder`` replaces the default seeding (BenchItem objects through the REST API).

    On leaving (normally, on error or on Ctrl-C) the server is stopped, its data
    directory removed and its database dropped.
    """
    tag = f"{name}-w{workers}"
    tmp = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=opts.run_dir))
    data = tmp / "data"
    data.mkdir()
    port = free_port()
    base = f"http://{HOST}:{port}"
    cleanup = Cleanup()
    try:
        db: str | None = None
        if name != "bastion-sqlite":
            db = opts.pg.create_db()
            dbname = db
            log(f"{tag}: created database {db}")
            cleanup.push(f"database {db}", lambda: (opts.pg.drop_db(dbname), log(f"{tag}: dropped database {dbname}")))
        cleanup.push(f"data dir {data}", lambda: shutil.rmtree(data, ignore_errors=True))
        ids_file = tmp / "ids.txt"
        if name in ("bastion-pg", "bastion-sqlite"):
            argv = [opts.python, "-m", "bastion", "serve", "--host", HOST, "--port", str(port)]
            if db:
                argv += ["--database", opts.pg.uri(db)]
            # --log-level error, as server.js runs Parse Server (logLevel: 'error'): neither logs (nor, for
            # the Logs page, keeps) a line per cloud function or trigger run.
            argv += ["--data-dir", str(data), "--app-id", APP_ID, "--master-key", MASTER_KEY,
                     "--workers", str(workers), "--log-level", "error"]
            server = ServerProcess(tag, argv, cwd=REPO_DIR, log_path=tmp / "server.log")
            health = f"{base}/parse/health"
        elif name == "parse":
            assert db is not None
            env = {"BENCH_PORT": str(port), "BENCH_DATABASE_URI": opts.pg.uri(db), "BENCH_WORKERS": str(workers),
                   "BENCH_APP_ID": APP_ID, "BENCH_MASTER_KEY": MASTER_KEY, "NODE_ENV": "production"}
            server = ServerProcess(tag, ["node", str(PARSE_DIR / "server.js")], env=env, cwd=data,
                                   log_path=tmp / "server.log")
            health = f"{base}/parse/health"
        elif name == "ceiling":
            assert db is not None
            argv = [opts.python, str(BENCH_DIR / "ceiling_app.py"), "--host", HOST, "--port", str(port),
                    "--database", opts.pg.uri(db), "--workers", str(workers), "--seed", str(opts.seed),
                    "--ids-file", str(ids_file)]
            server = ServerProcess(tag, argv, cwd=BENCH_DIR, log_path=tmp / "server.log")
            health = f"{base}/health"
        else:
            raise BenchError(f"unknown server {name}")
        cleanup.push(f"server {tag}", server.stop)
        log(f"{tag}: started pid {server.pid} on port {port}: {' '.join(server.argv)}")
        wait_healthy(server, health, opts.startup_timeout)
        wait_processes(server, workers, opts.startup_timeout)
        log(f"{tag}: healthy, {len(tree_pids(server.pid))} processes, {tree_rss_kib(server.pid) / 1024:.0f} MiB RSS")
        if seeder is not None:
            yield Running(server, base, db, seeder(SeedTarget(name, tag, base, db, tmp)))
            return
        if name == "ceiling":
            prefix = "/item"
            n_ids = sum(1 for line in ids_file.read_text().splitlines() if line)
            log(f"{tag}: {n_ids} rows seeded by the app itself")
        else:
            prefix = CLASS_PATH
            report = seed_rest(f"{base}/parse", opts.seed)
            for note in report.notes:
                log(f"{tag}: NOTE {note}")
            ids_file.write_text("\n".join(report.ids) + "\n")
            log(f"{tag}: seeded {len(report.ids)} objects in {report.seconds:.1f}s")
        yield Running(server, base, db, [f"prefix={prefix}", f"ids={ids_file}", f"range={opts.seed}",
                                         f"appid={APP_ID}", f"masterkey={MASTER_KEY}"])
    finally:
        cleanup.run()


def summarize(text: str) -> str:
    """First line of an error plus its last line (e.g. the exception of a server log tail)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else ""
    return f"{lines[0].rstrip(':')}: {lines[-1]}"


def measure(run: Running, tag: str, workload: str, opts: Options) -> tuple[WrkResult, Monitor]:
    """Warm up and measure one workload; while processes outside the benchmark
    disturbed the measurement, measure again (up to ``opts.retries`` times) and
    keep the least disturbed attempt."""
    best: tuple[WrkResult, Monitor] | None = None
    for attempt in range(opts.retries + 1):
        wait_for_quiet(run.server.pid, run.db, opts.wait_idle, opts.idle_limit, f"{tag} {workload}")
        if opts.warmup > 0:
            run_wrk(run.base, workload, opts.warmup, opts.connections, opts.threads, run.script_args)
        with Monitor(run.server.pid, run.db) as mon:
            res = run_wrk(run.base, workload, opts.duration, opts.connections, opts.threads, run.script_args)
        if best is None or mon.other_cores < best[1].other_cores:
            best = (res, mon)
        if mon.other_cores <= opts.idle_limit:
            break
        if attempt < opts.retries:
            log(f"{tag} {workload}: other processes used {mon.other_cores:.2f} cores "
                f"({res.rps:.0f} req/s); measuring again")
    assert best is not None
    return best


def bench_server(name: str, workers: int, workloads: list[str], opts: Options, rows: list[Row],
                 seeder: Seeder | None = None) -> None:
    """Measure one server; rows are appended as they are done (kept on Ctrl-C)."""
    wanted = [w for w in workloads if name != "ceiling" or w in CEILING_WORKLOADS]
    if not wanted:
        return
    done = len(rows)
    try:
        with started_server(name, workers, opts, seeder) as run:
            server, tag = run.server, f"{name}-w{workers}"
            for workload in wanted:
                row = Row(server=name, workers=workers, workload=workload)
                try:
                    if not server.alive():
                        raise BenchError(f"server exited with code {server.proc.returncode}:\n{server.log_tail()}")
                    res, mon = measure(run, tag, workload, opts)
                    row.rps, row.p50_ms, row.p99_ms = res.rps, res.p50_ms, res.p99_ms
                    row.non2xx, row.socket_errors, row.requests = res.non2xx, res.socket_errors, res.requests
                    row.first_error, row.empty = res.first_error, res.empty
                    row.peak_rss_mib = round(mon.peak_kib / 1024, 1)
                    row.server_cpu, row.other_cpu = round(mon.server_cores, 2), round(mon.other_cores, 2)
                    log(f"{tag} {workload}: {res.rps:.0f} req/s p50 {res.p50_ms:.2f}ms "
                        f"p99 {res.p99_ms:.2f}ms non-2xx {res.non2xx} sockerr {res.socket_errors} "
                        f"rss {row.peak_rss_mib} MiB cpu server {mon.server_cores:.2f} other {mon.other_cores:.2f}")
                    if mon.other_cores > opts.idle_limit:
                        log(f"{tag} {workload}: WARNING other processes used {mon.other_cores:.2f} cores "
                            "during the measurement; the numbers are disturbed")
                    if res.non2xx:
                        log(f"{tag} {workload}: first non-2xx response: {res.first_error}")
                except BenchError as err:
                    row.error = str(err)
                    log(f"{tag} {workload}: FAILED: {err}")
                rows.append(row)
    except BenchError as err:
        log(f"{name}-w{workers}: FAILED: {err}")
        measured = {r.workload for r in rows[done:]}
        rows.extend(Row(server=name, workers=workers, workload=w, error=summarize(str(err)))
                    for w in wanted if w not in measured)


# --------------------------------------------------------------------------- report


def machine_info(opts: Options) -> dict[str, str]:
    info: dict[str, str] = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    info["cpus"] = str(os.cpu_count())
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    info["kernel"] = platform.release()
    try:
        info["postgresql"] = opts.pg.version()
    except BenchError as err:
        info["postgresql"] = f"unavailable ({err})"

    def version_of(argv: list[str]) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            return (proc.stdout or proc.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unavailable"

    info["python"] = version_of([opts.python, "-c", "import sys; print(sys.version.split()[0])"])
    info["node"] = version_of(["node", "--version"])
    info["wrk"] = version_of(["wrk", "-v"]).split(" [")[0]
    pkg = PARSE_DIR / "node_modules" / "parse-server" / "package.json"
    with suppress(OSError, ValueError):
        info["parse_server"] = json.loads(pkg.read_text())["version"]
    return info


def fill_ratios(rows: list[Row]) -> None:
    """Each Bastion row's req/s over Parse Server's for the same workload, workers and round."""
    parse = {(r.round, r.workers, r.workload): r.rps for r in rows if r.server == "parse" and r.rps}
    for r in rows:
        base = parse.get((r.round, r.workers, r.workload))
        if r.server.startswith("bastion") and r.rps is not None and base:
            r.ratio_vs_parse = round(r.rps / base, 2)


def ratio_summary(rows: list[Row]) -> list[tuple[str, int, str, float, float, float, int]]:
    """Per Bastion server, workers and workload: the median, lowest and highest ratio to Parse
    Server over the rounds, and how many rounds gave one. One run's ratio moves with the machine;
    the median of several rounds is the number to quote."""
    ratios: dict[tuple[str, int, str], list[float]] = {}
    for r in rows:
        if r.ratio_vs_parse is not None:
            ratios.setdefault((r.server, r.workers, r.workload), []).append(r.ratio_vs_parse)
    return [(server, workers, workload, round(statistics.median(values), 2), min(values), max(values), len(values))
            for (server, workers, workload), values in ratios.items()]


def print_ratio_summary(rows: list[Row]) -> None:
    summary = ratio_summary(rows)
    if not summary:
        return
    print()
    print("| server | workers | workload | median vs parse | lowest | highest | rounds |")
    print("|--------|---------|----------|-----------------|--------|---------|--------|")
    for server, workers, workload, median, low, high, count in summary:
        print(f"| {server} | {workers} | {workload} | {median:.2f}x | {low:.2f}x | {high:.2f}x | {count} |")


def fmt(v: float | int | None, spec: str = "") -> str:
    return "-" if v is None else format(v, spec)


def print_table(rows: list[Row]) -> None:
    headers = ["server", "workers", "workload", "req/s", "p50 ms", "p99 ms", "non-2xx", "sock err",
               "peak RSS MiB", "srv CPU", "other CPU", "vs parse"]
    table = [[r.server, str(r.workers), r.workload, fmt(r.rps, ".0f"), fmt(r.p50_ms, ".2f"), fmt(r.p99_ms, ".2f"),
              fmt(r.non2xx), fmt(r.socket_errors), fmt(r.peak_rss_mib, ".0f"), fmt(r.server_cpu, ".2f"),
              fmt(r.other_cpu, ".2f"),
              "-" if r.ratio_vs_parse is None else f"{r.ratio_vs_parse:.2f}x"] for r in rows]
    if any(r.round > 1 for r in rows):
        headers.insert(0, "round")
        for r, t in zip(rows, table, strict=True):
            t.insert(0, str(r.round))
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for t in table:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)) + " |")
    notes = [f"FAILED {r.server} w{r.workers} {r.workload}: {summarize(r.error)}" for r in rows if r.error]
    notes += [f"WARNING {r.server} w{r.workers} {r.workload}: {r.non2xx} non-2xx of {r.requests}; "
              f"first: {r.first_error[:200]}" for r in rows if r.non2xx]
    # A few empty answers can be the data; more than 1% means the query may not measure what it should.
    notes += [f"WARNING {r.server} w{r.workers} {r.workload}: {r.empty} of {r.requests} answers had no results"
              for r in rows if r.empty and r.requests and r.empty > r.requests / 100]
    if notes:
        print()
        print("\n".join(notes))


# --------------------------------------------------------------------------- main


def csv_list(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)} (got {value!r})")
        return items
    return parse


def int_list(value: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if not items or any(i < 1 for i in items):
        raise argparse.ArgumentTypeError("workers must be positive integers")
    return items


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def add_load_args(parser: argparse.ArgumentParser, *, duration: float = 10.0) -> None:
    """The options every harness shares: workers, wrk settings, PostgreSQL, quiet-machine checks, JSON."""
    parser.add_argument("--workers", type=int_list, default=[1],
                        help="server processes; comma-separated runs the matrix for each (default: 1)")
    parser.add_argument("--duration", type=float, default=duration,
                        help=f"seconds per workload (default: {duration:g})")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each workload (default: 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default: 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default: 2)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for Bastion and the ceiling app (default: this one)")
    parser.add_argument("--pg-host", default=HOST)
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--startup-timeout", type=float, default=60.0)
    parser.add_argument("--wait-idle", type=float, default=60.0,
                        help="before each workload, wait up to this many seconds for other processes "
                             "to calm down (default: 60; 0 to skip)")
    parser.add_argument("--idle-limit", type=float, default=0.15,
                        help="CPU cores other processes may use for the machine to count as quiet (default: 0.15)")
    parser.add_argument("--retries", type=int, default=2,
                        help="measure a workload again (up to this many times) when other processes "
                             "used more than --idle-limit cores during it; the least disturbed attempt "
                             "is kept (default: 2)")
    parser.add_argument("--rounds", type=positive_int, default=1,
                        help="run the whole matrix this many times and print, per workload, the median, lowest "
                             "and highest ratio to Parse Server (default: 1)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")


def available_servers(parser: argparse.ArgumentParser, args: argparse.Namespace, servers: list[str]) -> list[str]:
    """Refuse a remote PostgreSQL and a missing wrk (exit 2); drop Parse Server when it cannot run."""
    if args.pg_host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("only a PostgreSQL server on this machine (loopback) may be used")
    if shutil.which("wrk") is None:
        print("error: wrk is not installed. On Debian/Ubuntu: apt-get update && apt-get install -y wrk",
              file=sys.stderr)
        raise SystemExit(2)
    if "parse" in servers:
        if shutil.which("node") is None:
            log("node not found: skipping Parse Server")
            servers = [s for s in servers if s != "parse"]
        elif not (PARSE_DIR / "node_modules" / "parse-server").is_dir():
            log("Parse Server is not installed: run `cd bench/parse-server && npm ci`; skipping it")
            servers = [s for s in servers if s != "parse"]
    if not servers:
        print("error: no server to benchmark", file=sys.stderr)
        raise SystemExit(2)
    return servers


def options_from_args(args: argparse.Namespace, seed: int) -> Options:
    OUT_DIR.mkdir(exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=OUT_DIR))
    return Options(python=args.python, duration=args.duration, warmup=args.warmup, connections=args.connections,
                   threads=args.threads, seed=seed, startup_timeout=args.startup_timeout,
                   wait_idle=args.wait_idle, idle_limit=args.idle_limit, retries=args.retries,
                   pg=Postgres(args.pg_host, args.pg_port, args.pg_user, args.python), run_dir=run_dir)


def run_matrix(args: argparse.Namespace, servers: list[str], workloads: list[str], opts: Options, *,
               seeder: Seeder | None, headline: str, settings: dict[str, Any], script: str,
               argv: list[str] | None, after_table: Callable[[list[Row]], None] | None = None) -> int:
    """Measure every worker count x server x workload, print the table (then ``after_table(rows)``,
    and the JSON); the exit code."""
    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    # Also when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rows: list[Row] = []
    info: dict[str, str] = {}
    interrupted = False
    try:
        info = machine_info(opts)
        log("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
        log(f"logs and temp data in {opts.run_dir}")
        for round_no in range(1, args.rounds + 1):
            if args.rounds > 1:
                log(f"round {round_no} of {args.rounds}")
            for workers in args.workers:
                for name in servers:
                    first = len(rows)
                    bench_server(name, workers, workloads, opts, rows, seeder)
                    for row in rows[first:]:
                        row.round = round_no
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted; servers stopped and databases dropped")

    fill_ratios(rows)
    print()
    print(f"wrk: {opts.threads} threads, {opts.connections} connections, {opts.duration:g}s per workload "
          f"(+{opts.warmup:g}s warm-up); {headline}")
    print("srv CPU / other CPU: cores used during the measurement by the server's process tree / by processes "
          "outside the benchmark (noise)")
    print_table(rows)
    if args.rounds > 1:
        print_ratio_summary(rows)
    if after_table is not None:
        after_table(rows)
    if args.json:
        payload = {
            "machine": info,
            "settings": {"duration_s": opts.duration, "warmup_s": opts.warmup, "connections": opts.connections,
                         "threads": opts.threads, **settings, "servers": servers,
                         "wait_idle_s": opts.wait_idle, "idle_limit_cores": opts.idle_limit, "retries": opts.retries,
                         "rounds": args.rounds,
                         "workloads": workloads, "workers": args.workers,
                         "command": " ".join(["python", f"bench/{script}",
                                              *(argv if argv is not None else sys.argv[1:])])},
            "results": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    if interrupted:
        return 130
    return 1 if any(r.error for r in rows) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark Bastion against Parse Server (see bench/README.md).")
    parser.add_argument("--servers", type=csv_list(ALL_SERVERS), default=list(ALL_SERVERS),
                        help=f"comma-separated, from {','.join(ALL_SERVERS)} (default: all)")
    parser.add_argument("--workloads", type=csv_list(ALL_WORKLOADS), default=list(ALL_WORKLOADS),
                        help=f"comma-separated, from {','.join(ALL_WORKLOADS)} (default: all)")
    parser.add_argument("--seed", type=int, default=10000, help="objects created before the load (default: 10000)")
    add_load_args(parser)
    args = parser.parse_args(argv)
    servers = available_servers(parser, args, args.servers)
    opts = options_from_args(args, args.seed)
    return run_matrix(args, servers, args.workloads, opts, seeder=None, headline=f"seed {opts.seed} objects",
                      settings={"seed": opts.seed}, script="run.py", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
