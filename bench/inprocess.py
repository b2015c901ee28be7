"""Bastion's CPU per get, measured in one process without sockets or wrk (quieter than req/s).

Builds the ASGI app (``bastion.app.Bastion``) on a fresh PostgreSQL database, creates one
``BenchItem`` and gets it N times, one at a time (or from ``--clients`` at once), with the headers
bench/wrk/common.lua sends.
Two ways in:

- ``asgi``: the app is called directly with a fake ``receive`` and ``send``;
- ``protocol``: the request bytes go through Bastion's uvicorn protocol (httptools, uvicorn's
  response cycle, the answer's head written) over a fake transport, as a server would run it.

Prints the best CPU time per get over ``--rounds``, then cProfile's calls per get and the functions
with the most own time. Imports only what every Bastion commit since 0161196 has, so it can
measure an older checkout: ``cd <checkout> && PYTHONPATH=$PWD python <this file>``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import uvloop

APP_ID, MASTER_KEY = "bench", "benchmaster"
HEADERS = [(b"host", b"127.0.0.1:1337"), (b"x-parse-application-id", APP_ID.encode()),
           (b"x-parse-master-key", MASTER_KEY.encode()), (b"content-type", b"application/json")]


class FakeTransport:
    """What the protocol writes to, kept; resolves ``answer`` once a whole answer arrived."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.answer: asyncio.Future[bytes] | None = None

    def write(self, data: bytes) -> None:
        self.data += data
        head_end = self.data.find(b"\r\n\r\n")
        if head_end < 0 or self.answer is None:
            return
        head = bytes(self.data[:head_end]).lower()
        length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(self.data) >= head_end + 4 + length:
            self.answer.set_result(bytes(self.data))
            self.data.clear()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1337), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass


def asgi_getter(app: Any, path: str) -> Any:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": HEADERS, "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 1337)}
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"status {message['status']}")

    async def get() -> None:
        await app(dict(scope), receive, send)

    return get


def protocol_getter(app: Any, path: str) -> Any:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from bastion.http.server import CoalescingHttpToolsProtocol

    # As bastion/cli.py's uvicorn.run, less what needs a socket.
    config = Config(app, lifespan="off", log_config=None, access_log=False, server_header=False,
                    date_header=False, proxy_headers=False)
    loop = asyncio.get_running_loop()
    protocol = CoalescingHttpToolsProtocol(config, ServerState(), {}, _loop=loop)
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    request = b"".join([b"GET ", path.encode(), b" HTTP/1.1\r\n",
                        *(name + b": " + value + b"\r\n" for name, value in HEADERS), b"\r\n"])

    async def get() -> None:
        transport.answer = loop.create_future()
        protocol.data_received(request)
        answer = await transport.answer
        if not answer.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(answer[:200].decode(errors="replace"))

    return get


async def measure(args: argparse.Namespace) -> None:
    from bastion.app import Bastion
    from bastion.config import Settings
    from bastion.logs import configure

    db = f"bench_inprocess_{os.getpid()}"
    admin = await asyncpg.connect(host=args.pg_host, port=args.pg_port, user=args.pg_user,
                                  database="postgres")
    await admin.execute(f'CREATE DATABASE "{db}"')
    data_dir = Path(tempfile.mkdtemp(prefix="bench-inprocess-"))
    try:
        settings = Settings(app_id=APP_ID, master_key=MASTER_KEY, data_dir=data_dir, log_level="error",
                            database=f"postgresql://{args.pg_user}@{args.pg_host}:{args.pg_port}/{db}")
        configure(settings.log_level)  # as `bastion serve --log-level error`, the bench's
        app = Bastion(settings)
        await app.startup()
        try:
            await run(app, args)
        finally:
            await app.shutdown()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


async def run(app: Any, args: argparse.Namespace) -> None:
    created: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": orjson.dumps({"n": 1, "s": "x" * 20}), "more_body": False}

    async def keep(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            created.append(message["body"])

    scope = {"type": "http", "method": "POST", "path": "/parse/classes/BenchItem", "query_string": b"",
             "headers": HEADERS, "client": ("127.0.0.1", 40000)}
    await app(scope, receive, keep)
    path = "/parse/classes/BenchItem/" + orjson.loads(created[0])["objectId"]
    # One getter per client (a connection each in protocol mode), as wrk's connections.
    getters = [(asgi_getter if args.mode == "asgi" else protocol_getter)(app, path) for _ in range(args.clients)]

    async def gets(n: int) -> None:
        async def client(get: Any) -> None:
            for _ in range(n // len(getters)):
                await get()
        await asyncio.gather(*(client(get) for get in getters))

    await gets(args.n // 10)  # warm-up: caches, the connection pool, prepared statements
    best = float("inf")
    for _ in range(args.rounds):
        started = time.process_time()
        await gets(args.n)
        best = min(best, time.process_time() - started)
    print(f"{args.mode}, {args.clients} client(s): {args.n} gets, best of {args.rounds}: "
          f"{best / args.n * 1e6:.1f} µs CPU per get")
    if not args.profile:
        return

    profile = cProfile.Profile()
    profile.enable()
    await gets(args.n)
    profile.disable()
    if args.dump:
        profile.dump_stats(args.dump)
    stats = pstats.Stats(profile)
    calls: int = stats.total_calls  # type: ignore[attr-defined]
    print(f"cProfile: {calls} calls, {calls / args.n:.1f} per get")
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(args.sort).print_stats(args.top)
    print(out.getvalue().split("\n\n", 1)[-1].rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("asgi", "protocol"), default="protocol")
    parser.add_argument("--n", type=int, default=3000, help="gets per round (default: 3000)")
    parser.add_argument("--clients", type=int, default=1,
                        help="clients getting at once, each one get at a time (default: 1; wrk has 32)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, the best kept (default: 5)")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (default: tottime)")
    parser.add_argument("--top", type=int, default=25, help="functions listed (default: 25)")
    parser.add_argument("--profile", action=argparse.BooleanOptionalAction, default=True,
                        help="then N more gets under cProfile (default: on)")
    parser.add_argument("--dump", help="also write the cProfile stats to this file (pstats format)")
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pg-user", default="postgres")
    args = parser.parse_args()
    uvloop.run(measure(args))  # the loop `bastion serve` runs


if __name__ == "__main__":
    main()
