"""Files API benchmark: upload and download throughput per backend, and memory on one large file.

For each server (Bastion with files in a local directory, in PostgreSQL, or in S3 on a moto server;
Parse Server 9 with its filesystem adapter) this starts the server on its own fresh PostgreSQL
database (SQLite for bastion-local and bastion-s3), then for each file size:

- uploads ``--count`` files of that size (``POST /parse/files/<name>``, raw body, master key) with
  ``--concurrency`` requests in flight, then downloads each of them once (``GET`` of the URL the
  upload answered, streamed and discarded): MB/s and requests/s for each direction;

and, for Bastion (``--big-mb``, default 1024), uploads one file of that size streamed from a
generator and downloads it again. The summed VmRSS of the server's process tree is sampled every
0.1 s during every row: its peak (the issue's bound is 100 MB). Parse Server keeps its 20 MB upload
limit (``maxUploadSize``) and buffers uploads, so it takes no part in that one.

The client is Python (httpx on asyncio) on the same machine: for small files it may be the
bottleneck; compare servers within one run. Smoke run: ``--quick`` (tiny sizes, a few files).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from run import (
    APP_ID,
    HOST,
    MASTER_KEY,
    OUT_DIR,
    PARSE_DIR,
    REPO_DIR,
    BenchError,
    Postgres,
    ServerProcess,
    free_port,
    log,
    tree_rss_kib,
)

ALL_SERVERS = ("bastion-local", "bastion-pg", "bastion-s3", "parse")
MIB = 1024 * 1024


@dataclass
class Row:
    server: str
    size: str
    direction: str  # upload | download | upload-big | download-big
    count: int
    seconds: float
    mb_per_s: float
    req_per_s: float
    errors: int
    peak_rss_mb: float | None = None


def parse_size(text: str) -> int:
    units = {"B": 1, "KB": 1000, "MB": 1000 * 1000, "KIB": 1024, "MIB": MIB, "GB": 1000 ** 3}
    upper = text.strip().upper()
    for unit in sorted(units, key=len, reverse=True):
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * units[unit])
    return int(upper)


class RssSampler:
    """Peak summed VmRSS (MiB) of a process tree, sampled in a thread while the block runs."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval, self.peak_kib = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, tree_rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_kib / 1024


# --------------------------------------------------------------------------- servers


@dataclass
class Target:
    name: str
    base: str  # http://127.0.0.1:PORT/parse
    process: ServerProcess


def bastion_python() -> str:
    venv = REPO_DIR / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@contextmanager
def moto_server() -> Iterator[str]:
    sys.path.insert(0, str(REPO_DIR))
    from tests.contract.s3_server import moto_s3_server

    with moto_s3_server() as moto:
        yield moto.files_url(moto.new_bucket(), "bench")


@contextmanager
def started(name: str, pg: Postgres, big_bytes: int) -> Iterator[Target]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-files-{name}-"))
    port = free_port()
    db: str | None = None
    process: ServerProcess | None = None
    try:
        with s3_for(name) as s3_url:
            env: dict[str, str] = {}
            if name == "parse":
                db = pg.create_db()
                env = {"BENCH_PORT": str(port), "BENCH_DATABASE_URI": pg.uri(db), "BENCH_APP_ID": APP_ID,
                       "BENCH_MASTER_KEY": MASTER_KEY}
                argv = ["node", str(PARSE_DIR / "server.js")]
                cwd = workdir  # the fs adapter writes ./files
            else:
                argv = [bastion_python(), "-m", "bastion", "serve", "--host", HOST, "--port", str(port),
                        "--app-id", APP_ID, "--master-key", MASTER_KEY, "--data-dir", str(workdir / "data"),
                        "--max-upload-bytes", str(max(big_bytes, 64 * MIB) + MIB), "--log-level", "warning"]
                if name == "bastion-pg":
                    db = pg.create_db()
                    argv += ["--database", pg.uri(db), "--files", "postgres"]
                elif name == "bastion-s3":
                    from tests.contract.s3_server import FAKE_CREDENTIALS

                    env.update(FAKE_CREDENTIALS)
                    argv += ["--files", s3_url or ""]
                cwd = REPO_DIR
            process = ServerProcess(name, argv, env=env, cwd=cwd,
                                    log_path=OUT_DIR / f"files-{name}.log")
            base = f"http://{HOST}:{port}/parse"
            deadline = time.monotonic() + 60
            while True:
                if not process.alive():
                    raise BenchError(f"{name} exited:\n{process.log_tail()}")
                try:
                    if httpx.get(base + "/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"{name} did not become healthy:\n{process.log_tail()}")
                time.sleep(0.2)
            yield Target(name, base, process)
    finally:
        if process is not None:
            process.stop()
        if db:
            pg.drop_db(db)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def s3_for(name: str) -> Iterator[str | None]:
    """A moto server's --files URL for bastion-s3 (stopped after it), None for the others."""
    if name == "bastion-s3":
        with moto_server() as url:
            yield url
    else:
        yield None


# --------------------------------------------------------------------------- measuring


HEADERS = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY}


async def upload_many(client: httpx.AsyncClient, base: str, payload: bytes, count: int,
                      concurrency: int) -> tuple[float, list[str], int]:
    urls: list[str] = []
    errors = 0
    queue = iter(range(count))

    async def worker() -> None:
        nonlocal errors
        for index in queue:
            answer = await client.post(f"{base}/files/bench{index}.bin", content=payload,
                                       headers={**HEADERS, "Content-Type": "application/octet-stream"})
            if answer.status_code == 201:
                urls.append(answer.json()["url"])
            else:
                errors += 1
                if errors == 1:
                    log(f"upload answered {answer.status_code}: {answer.text[:300]}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, urls, errors


async def download_many(client: httpx.AsyncClient, urls: list[str], size: int,
                        concurrency: int) -> tuple[float, int]:
    errors = 0
    queue = iter(urls)

    async def worker() -> None:
        nonlocal errors
        for url in queue:
            received = 0
            async with client.stream("GET", url, headers=HEADERS) as answer:
                async for chunk in answer.aiter_raw():
                    received += len(chunk)
            if answer.status_code != 200 or received != size:
                errors += 1
                if errors == 1:
                    log(f"download answered {answer.status_code} with {received} of {size} bytes")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start, errors


def row(server: str, size_label: str, direction: str, count: int, seconds: float, size: int,
        errors: int, peak: float | None = None) -> Row:
    done = count - errors
    return Row(server, size_label, direction, count, round(seconds, 3),
               round(done * size / MIB / seconds, 2) if seconds else 0.0,
               round(done / seconds, 1) if seconds else 0.0, errors, None if peak is None else round(peak, 1))


async def measure_sizes(target: Target, sizes: list[tuple[str, int]], count: int, concurrency: int) -> list[Row]:
    rows: list[Row] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        for label, size in sizes:
            payload = secrets.token_bytes(size)
            n = count if size < 5 * MIB else max(1, count // 10)  # fewer big files: same order of time
            with RssSampler(target.process.pid) as sampler:
                seconds, urls, errors = await upload_many(client, target.base, payload, n, concurrency)
            rows.append(row(target.name, label, "upload", n, seconds, size, errors, sampler.peak_mb))
            with RssSampler(target.process.pid) as sampler:
                seconds, errors = await download_many(client, urls, size, concurrency)
            rows.append(row(target.name, label, "download", len(urls), seconds, size, errors, sampler.peak_mb))
            log(f"{target.name} {label}: {rows[-2].mb_per_s} MB/s up, {rows[-1].mb_per_s} MB/s down")
    return rows


async def measure_big(target: Target, size: int) -> list[Row]:
    piece = secrets.token_bytes(MIB)

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        while sent < size:
            part = piece[: min(MIB, size - sent)]
            sent += len(part)
            yield part

    label = f"{size / MIB:.0f}MiB"
    rows: list[Row] = []
    async with httpx.AsyncClient(timeout=1800) as client:
        with RssSampler(target.process.pid) as sampler:
            start = time.perf_counter()
            answer = await client.post(f"{target.base}/files/big.bin", content=body(),
                                       headers={**HEADERS, "Content-Type": "application/octet-stream"})
            seconds = time.perf_counter() - start
        ok = answer.status_code == 201
        if not ok:
            log(f"big upload answered {answer.status_code}: {answer.text[:300]}")
        rows.append(row(target.name, label, "upload-big", 1, seconds, size, 0 if ok else 1, sampler.peak_mb))
        if ok:
            seconds, errors = 0.0, 1
            with RssSampler(target.process.pid) as sampler:
                start = time.perf_counter()
                _, errors = await download_many(client, [answer.json()["url"]], size, 1)
                seconds = time.perf_counter() - start
            rows.append(row(target.name, label, "download-big", 1, seconds, size, errors, sampler.peak_mb))
    log(f"{target.name} {label}: peak RSS {rows[0].peak_rss_mb} MB up"
        + (f", {rows[1].peak_rss_mb} MB down" if len(rows) > 1 else ""))
    return rows


def print_table(rows: list[Row]) -> None:
    header = f"{'server':<14} {'size':>8} {'direction':<13} {'n':>5} {'MB/s':>9} {'req/s':>9} {'err':>4} {'peak RSS MB':>12}"
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = "" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.1f}"
        print(f"{r.server:<14} {r.size:>8} {r.direction:<13} {r.count:>5} {r.mb_per_s:>9.2f} "
              f"{r.req_per_s:>9.1f} {r.errors:>4} {peak:>12}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(ALL_SERVERS),
                        help=f"comma-separated, from {', '.join(ALL_SERVERS)}")
    parser.add_argument("--sizes", default="10KB,10MB", help="file sizes, e.g. 10KB,10MB")
    parser.add_argument("--count", type=int, default=500, help="files per size (a tenth of it for sizes of 5 MiB+)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--big-mb", type=int, default=1024, help="the large file for the memory check (0: skip)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1KB and 64KB, 10 files, a 16 MiB big file")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.count, args.big_mb = "1KB,64KB", 10, 16
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = set(servers) - set(ALL_SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    if "parse" in servers and (not shutil.which("node") or not (PARSE_DIR / "node_modules").exists()):
        log("parse: node or bench/parse-server/node_modules missing; skipped")
        servers.remove("parse")
    sizes = [(label.strip(), parse_size(label)) for label in args.sizes.split(",") if label.strip()]
    pg = Postgres(args.pg_host, args.pg_port, args.pg_user, bastion_python())
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    for name in servers:
        log(f"{name}: starting")
        try:
            with started(name, pg, args.big_mb * MIB) as target:
                rows += asyncio.run(measure_sizes(target, sizes, args.count, args.concurrency))
                if args.big_mb and name != "parse":
                    rows += asyncio.run(measure_big(target, args.big_mb * MIB))
        except BenchError as error:
            log(f"{name}: {error}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
