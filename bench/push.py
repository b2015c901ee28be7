"""Push benchmark: Web Push deliveries per second to N installations, and POST /push → last delivery.

Starts the Web Push service stand-in (tests/push_services/webpush.py: it verifies every VAPID JWT
and decrypts every payload, as a browser's push service would) in its own process, and Bastion
(SQLite in a temp data dir, or a fresh PostgreSQL database) in another. Then:

1. the stand-in makes ``--installations`` browser subscriptions (P-256 key pair and auth secret
   each); they are saved as ``web`` installations on channel ``bench`` through ``/parse/batch``;
2. ``--repeat`` times: ``POST /parse/push`` ``{"channels": ["bench"], "data": {...}}`` with the
   master key; the stand-in counts accepted (decrypted) messages and stamps the first and last;
   the driver waits until all arrived and the ``_PushStatus`` says ``succeeded``.

Per push it prints: the time from the POST to the last delivery, deliveries per second over that
span and over the delivery span alone (first to last), the _PushStatus numSent/numFailed, the peak
summed VmRSS of Bastion's process tree and the CPU (cores) used by Bastion and by the stand-in.
Everything runs on this machine: the stand-in's decryption competes with Bastion for the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from run import (
    APP_ID,
    CLK_TCK,
    HOST,
    MASTER_KEY,
    OUT_DIR,
    REPO_DIR,
    BenchError,
    Postgres,
    ServerProcess,
    free_port,
    log,
    scan_procs,
    tree_pids,
    tree_rss_kib,
    wait_healthy,
)

HEADERS = {"X-Parse-Application-Id": APP_ID, "X-Parse-Master-Key": MASTER_KEY, "Content-Type": "application/json"}


@dataclass
class Row:
    database: str
    workers: int
    installations: int
    run: int
    post_ms: float  # the POST /push request itself
    to_last_s: float  # POST sent → last message accepted by the push service
    per_s_overall: float
    per_s_delivery: float  # first → last delivery
    num_sent: int
    num_failed: int
    rejected: int
    peak_rss_mb: float
    bastion_cpu: float  # cores, over POST → last delivery
    standin_cpu: float


def cpu_ticks(root: int) -> int:
    procs = scan_procs()
    return sum(procs[p].cpu_ticks for p in tree_pids(root, procs) if p in procs)


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_kib(self.pid))
            self._stop.wait(0.1)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bastion_python() -> str:
    venv = REPO_DIR / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


async def seed(api: str, tokens: list[str], concurrency: int = 4) -> None:
    """The subscriptions as web installations on channel "bench", 50 per /batch request."""
    chunks = [tokens[i:i + 50] for i in range(0, len(tokens), 50)]
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120, headers=HEADERS) as client:
        async def one(chunk: list[str]) -> None:
            requests = [{"method": "POST", "path": "/parse/installations",
                         "body": {"deviceType": "web", "deviceToken": token, "installationId": str(uuid.uuid4()),
                                  "channels": ["bench"]}} for token in chunk]
            async with gate:
                response = await client.post(f"{api}/batch", json={"requests": requests})
            if response.status_code != 200:
                raise BenchError(f"batch failed: HTTP {response.status_code} {response.text[:300]}")
            errors = [r for r in response.json() if "error" in r]
            if errors:
                raise BenchError(f"installation refused: {errors[0]}")

        await asyncio.gather(*(one(chunk) for chunk in chunks))


def run_one(database: str, args: argparse.Namespace, pg: Postgres | None, run_dir: Path) -> list[Row]:
    rows: list[Row] = []
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-push-{database}-"))
    stand_port, port = free_port(), free_port()
    python = bastion_python()
    stand_in = ServerProcess("webpush-stand-in", [python, "-m", "tests.push_services.webpush", "--port",
                                                  str(stand_port)], cwd=REPO_DIR, log_path=run_dir / "standin.log")
    db_name = None
    server = None
    try:
        stand_url = f"http://{HOST}:{stand_port}"
        deadline = time.monotonic() + 20
        while True:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{stand_url}/_stats", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or not stand_in.alive():
                raise BenchError(f"stand-in did not start:\n{stand_in.log_tail()}")
            time.sleep(0.2)
        argv = [python, "-m", "bastion", "serve", "--host", HOST, "--port", str(port), "--data-dir", str(tmp),
                "--app-id", APP_ID, "--master-key", MASTER_KEY, "--workers", str(args.workers),
                "--vapid-subject", "mailto:bench@example.com"]
        if database == "pg":
            assert pg is not None
            db_name = pg.create_db()
            argv += ["--database", pg.uri(db_name)]
        server = ServerProcess(f"bastion-{database}", argv, cwd=REPO_DIR, log_path=run_dir / f"bastion-{database}.log")
        api = f"http://{HOST}:{port}/parse"
        wait_healthy(server, f"{api}/health", 60)

        started = time.monotonic()
        tokens = httpx.post(f"{stand_url}/_subscriptions?n={args.installations}", timeout=300).json()
        asyncio.run(seed(api, tokens))
        log(f"{database}: {len(tokens)} web installations saved in {time.monotonic() - started:.1f}s")

        client = httpx.Client(timeout=120, headers=HEADERS)
        for run in range(1, args.repeat + 1):
            httpx.post(f"{stand_url}/_reset", timeout=10)
            cpu_b, cpu_s = cpu_ticks(server.pid), cpu_ticks(stand_in.pid)
            with Sampler(server.pid) as sampler:
                sent_at = time.time()
                response = client.post(f"{api}/push", json={
                    "channels": ["bench"], "data": {"alert": f"bench push {run}", "title": "Bastion",
                                                    "uri": "https://example.com/news/1", "n": run}})
                post_ms = (time.time() - sent_at) * 1000
                if response.status_code != 200:
                    raise BenchError(f"POST /push: HTTP {response.status_code} {response.text[:300]}")
                status_id = response.headers["x-parse-push-status-id"]
                deadline = time.monotonic() + args.timeout
                while True:
                    stats = httpx.get(f"{stand_url}/_stats", timeout=10).json()
                    status = client.get(f"{api}/classes/_PushStatus/{status_id}").json()
                    if stats["delivered"] >= args.installations and status.get("status") in ("succeeded", "failed"):
                        break
                    if time.monotonic() > deadline:
                        raise BenchError(f"push {run}: {stats['delivered']} delivered, status {status} "
                                         f"after {args.timeout}s")
                    time.sleep(0.05)
            cpu_b, cpu_s = cpu_ticks(server.pid) - cpu_b, cpu_ticks(stand_in.pid) - cpu_s
            to_last = stats["last"] - sent_at
            span = max(1e-6, stats["last"] - stats["first"])
            row = Row(database, args.workers, args.installations, run, round(post_ms, 1), round(to_last, 2),
                      round(stats["delivered"] / to_last), round(stats["delivered"] / span),
                      int(status.get("numSent", 0)), int(status.get("numFailed", 0)), stats["rejected"],
                      round(sampler.peak / 1024, 1), round(cpu_b / CLK_TCK / to_last, 2),
                      round(cpu_s / CLK_TCK / to_last, 2))
            log(json.dumps(asdict(row)))
            if stats["rejected"]:
                log(f"WARNING: the stand-in refused {stats['rejected']} requests: {stats['reasons']}")
            rows.append(row)
        client.close()
    finally:
        if server is not None:
            server.stop()
        stand_in.stop()
        if db_name and pg is not None:
            pg.drop_db(db_name)
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--installations", type=int, default=10_000)
    parser.add_argument("--databases", default="sqlite,pg", help="comma-separated: sqlite, pg")
    parser.add_argument("--workers", type=int, default=1, help="Bastion server processes")
    parser.add_argument("--repeat", type=int, default=2, help="pushes per database")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 installations, one push")
    args = parser.parse_args()
    if args.quick:
        args.installations, args.repeat = 300, 1
    run_dir = OUT_DIR / time.strftime("push-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    pg = Postgres(args.pg_host, args.pg_port, args.pg_user, bastion_python())
    rows: list[Row] = []
    for database in [d.strip() for d in args.databases.split(",") if d.strip()]:
        rows += run_one(database, args, pg if database == "pg" else None, run_dir)
    header = ("db", "workers", "installs", "run", "POST ms", "to last s", "/s overall", "/s delivery", "sent",
              "failed", "refused", "peak RSS MB", "Bastion CPU", "stand-in CPU")
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(value) for value in asdict(row).values()) + " |")
    (run_dir / "results.json").write_text(json.dumps([asdict(row) for row in rows], indent=2))
    log(f"results in {run_dir}")


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent)
    main()
