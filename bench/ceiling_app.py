"""The "Python ceiling": the smallest sensible Starlette + asyncpg app.

One route, ``GET /item/{id}``, reads one row by primary key and returns it as
JSON shaped like a Parse object.  It runs on the same stack Bastion uses
(uvicorn with uvloop and httptools, asyncpg, orjson) with nothing else on the
request path, so its throughput is roughly the most a Python server can reach
on this machine for a primary-key read.  Bastion's ``get`` numbers are best
read against it.

Usage (bench/run.py does this)::

    python bench/ceiling_app.py --port P --database postgresql://... \
        --workers N --seed 10000 --ids-file ids.txt

Before starting the server the main process creates and fills the table
``bench_item`` and writes the ids, one per line, to ``--ids-file``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DSN_ENV = "BENCH_CEILING_DSN"
POOL_SIZE_ENV = "BENCH_CEILING_POOL"

SELECT_SQL = 'SELECT id, created_at, updated_at, n, name, tags FROM bench_item WHERE id = $1'

_pool: asyncpg.Pool | None = None


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Pool reset hook that does nothing: the app never changes session state."""


def _number(v: float) -> float | int:
    return int(v) if v.is_integer() else v


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


async def get_item(request: Request) -> Response:
    assert _pool is not None
    async with _pool.acquire() as conn:
        row = await conn.fetchrow(SELECT_SQL, request.path_params["id"])
    if row is None:
        return Response(b'{"code":101,"error":"Object not found."}', status_code=404,
                        media_type="application/json")
    body: dict[str, Any] = {
        "objectId": row["id"],
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
        "n": _number(row["n"]),
        "name": row["name"],
        "tags": orjson.loads(row["tags"]),
    }
    return Response(orjson.dumps(body), media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    global _pool
    size = int(os.environ.get(POOL_SIZE_ENV, "10"))
    _pool = await asyncpg.create_pool(os.environ[DSN_ENV], min_size=size, max_size=size, reset=_no_reset)
    try:
        yield
    finally:
        await _pool.close()
        _pool = None


app = Starlette(
    routes=[Route("/item/{id}", get_item), Route("/health", health)],
    lifespan=lifespan,
)


def _random_id(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(10))


async def seed(dsn: str, count: int, ids_file: str) -> None:
    """Create ``bench_item`` and fill it with ``count`` rows like the REST seed."""
    rng = random.Random(12345)
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        oid = _random_id(rng)
        if oid not in seen:
            seen.add(oid)
            ids.append(oid)
    now = datetime.now(UTC)
    rows = [
        (oid, now, now, float(i), f"item-{i}", orjson.dumps([f"t{i % 10}", f"g{i % 7}"]).decode())
        for i, oid in enumerate(ids)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_item ("
            " id text PRIMARY KEY, created_at timestamptz, updated_at timestamptz,"
            " n double precision, name text, tags jsonb)"
        )
        await conn.execute("CREATE INDEX IF NOT EXISTS bench_item_n ON bench_item (n)")
        await conn.execute("TRUNCATE bench_item")
        await conn.copy_records_to_table(
            "bench_item", records=rows, columns=["id", "created_at", "updated_at", "n", "name", "tags"]
        )
        await conn.execute("ANALYZE bench_item")
    finally:
        await conn.close()
    with open(ids_file, "w", encoding="utf-8") as fh:
        fh.write("\n".join(ids) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True, help="PostgreSQL URI")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--pool-size", type=int, default=10, help="asyncpg pool size per worker")
    parser.add_argument("--seed", type=int, default=0, help="rows to create before serving")
    parser.add_argument("--ids-file", help="where to write the seeded ids")
    args = parser.parse_args(argv)

    if args.seed:
        if not args.ids_file:
            parser.error("--seed needs --ids-file")
        asyncio.run(seed(args.database, args.seed, args.ids_file))

    os.environ[DSN_ENV] = args.database
    os.environ[POOL_SIZE_ENV] = str(args.pool_size)
    here = os.path.dirname(os.path.abspath(__file__))
    uvicorn.run(
        "ceiling_app:app",
        app_dir=here,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
