#!/usr/bin/env python3
"""Cloud code benchmark: no-op triggers and cloud functions, Bastion against Parse Server 9.

Bastion runs with ``bench/cloud/main.py`` as its cloud code, Parse Server with
``bench/parse-server/cloud/main.js`` (the same no-ops in JS), each on a fresh PostgreSQL database
with the same worker count.  Workloads:

- ``create_plain``: POST /classes/BenchPlain, a class without triggers;
- ``create_triggers``: POST /classes/BenchCloud, which has a no-op beforeSave and afterSave;
- ``function``: POST /functions/noop, answering ``{"ok": true}``;
- ``function_params``: POST /functions/echo ``{"text": ...}``, answering the text.

Under the table it prints the cost of the two triggers on each server (``create_triggers`` against
``create_plain``).  Start-up, measurement and the table come from ``run.py``.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from run import (
    APP_ID,
    BENCH_DIR,
    MASTER_KEY,
    PARSE_DIR,
    REPO_DIR,
    BenchError,
    Row,
    SeedTarget,
    add_load_args,
    available_servers,
    csv_list,
    http_json,
    log,
    options_from_args,
    run_matrix,
    seed_object,
)

SERVERS = ("bastion-pg", "parse")
WORKLOADS = ("create_plain", "create_triggers", "function", "function_params")
BASTION_CLOUD = BENCH_DIR / "cloud" / "main.py"
PARSE_CLOUD = PARSE_DIR / "cloud" / "main.js"
# The class without triggers and the class with the no-op beforeSave/afterSave; same fields.
PLAIN, TRIGGERED = "BenchPlain", "BenchCloud"
FIELDS = {"n": {"type": "Number"}, "name": {"type": "String"}, "tags": {"type": "Array"}}
RANGE = 10_000  # values of "n" in the created objects


def seed(target: SeedTarget) -> list[str]:
    """Create both classes, and check that the cloud code answers as the workloads expect."""
    base = f"{target.base}/parse"

    def expect(what: str, status: int, body: Any, ok: bool) -> None:
        if not ok:
            raise BenchError(f"{what} -> {status} {str(body)[:300]}")

    for name in (PLAIN, TRIGGERED):
        status, body = http_json("POST", f"{base}/schemas/{name}", {"className": name, "fields": FIELDS})
        expect(f"POST /schemas/{name}", status, body, 200 <= status < 300)
        status, body = http_json("POST", f"{base}/classes/{name}", seed_object(1))
        expect(f"POST /classes/{name}", status, body, status == 201 and isinstance(body, dict) and "objectId" in body)
    status, body = http_json("POST", f"{base}/functions/noop", {})
    expect("POST /functions/noop (is the cloud code loaded?)", status, body,
           status == 200 and body == {"result": {"ok": True}})
    status, body = http_json("POST", f"{base}/functions/echo", {"text": "check"})
    expect("POST /functions/echo", status, body, status == 200 and body == {"result": "check"})
    log(f"{target.tag}: created {PLAIN} and {TRIGGERED}; the cloud functions answer")
    return [f"appid={APP_ID}", f"masterkey={MASTER_KEY}", f"range={RANGE}"]


def trigger_overhead(rows: list[Row]) -> None:
    """One line per server and worker count: create_triggers against create_plain."""
    by_key = {(r.server, r.workers, r.workload): r for r in rows}
    lines = []
    for r in rows:
        if r.workload != "create_plain":
            continue
        trig = by_key.get((r.server, r.workers, "create_triggers"))
        if not (trig and r.rps and trig.rps and r.p50_ms is not None and trig.p50_ms is not None):
            continue
        # With the server saturated, 1/throughput is the server time one request takes.
        extra_us = (1 / trig.rps - 1 / r.rps) * 1e6
        lines.append(f"  {r.server} w{r.workers}: {r.rps:.0f} -> {trig.rps:.0f} req/s "
                     f"({(trig.rps / r.rps - 1) * 100:+.1f} %, {extra_us:+.0f} us per request), "
                     f"p50 {r.p50_ms:.2f} -> {trig.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} -> {trig.p99_ms:.2f} ms")
    if lines:
        print()
        print("no-op beforeSave + afterSave (create_triggers against create_plain on the same server):")
        print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Cloud code benchmark (no-op triggers, functions): Bastion against Parse Server "
                    "(see bench/README.md).")
    parser.add_argument("--servers", type=csv_list(SERVERS), default=list(SERVERS),
                        help=f"comma-separated, from {','.join(SERVERS)} (default: all)")
    parser.add_argument("--workloads", type=csv_list(WORKLOADS), default=list(WORKLOADS),
                        help=f"comma-separated, from {','.join(WORKLOADS)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 s per workload, no warm-up, no waiting or retries")
    add_load_args(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.wait_idle, args.retries = 2.0, 0.0, 0.0, 0
    servers = available_servers(parser, args, args.servers)
    # The servers inherit this environment: Bastion reads BASTION_CLOUD as --cloud, server.js BENCH_CLOUD.
    os.environ["BASTION_CLOUD"] = str(BASTION_CLOUD)
    os.environ["BENCH_CLOUD"] = str(PARSE_CLOUD)
    log(f"cloud code: {BASTION_CLOUD.relative_to(REPO_DIR)} (Bastion), "
        f"{PARSE_CLOUD.relative_to(REPO_DIR)} (Parse Server)")
    opts = options_from_args(args, seed=0)
    return run_matrix(args, servers, args.workloads, opts, seeder=seed,
                      headline=f"cloud code loaded; {PLAIN} without triggers, {TRIGGERED} with no-op ones",
                      settings={"quick": args.quick}, script="cloud.py", argv=argv,
                      after_table=trigger_overhead)


if __name__ == "__main__":
    sys.exit(main())
