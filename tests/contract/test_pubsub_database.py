"""The databases' own pub/sub between processes (the default without ``--pubsub``): PostgreSQL's
LISTEN/NOTIFY and SQLite's polled ``_PubSub`` table. Two adapters on one database stand for two
processes. Skipped on PostgreSQL, with the reason, when it does not answer."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from bastion.adapters.pubsub.postgres import MAX_INLINE, PostgresPubSub, pg_channel
from bastion.adapters.pubsub.sqlite import KEEP, POLL, SqlitePubSub
from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database, postgres_available
from tests.contract.test_pubsub import eventually


@pytest.fixture(scope="module")
def pg_database_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database for the module; None when PostgreSQL does not answer."""
    if postgres_available():
        yield None
        return
    name = create_pg_database()
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        drop_pg_database(name)


@pytest.fixture
def pg_url(pg_database_url: str | None) -> str:
    if pg_database_url is None:
        pytest.skip(f"PostgreSQL pub/sub tests skipped: {postgres_available()}")
    return pg_database_url


@pytest.fixture
async def pg_pair(pg_url: str) -> AsyncIterator[tuple[PostgresPubSub, PostgresPubSub]]:
    first, second = PostgresPubSub(pg_url), PostgresPubSub(pg_url)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def sqlite_pair() -> AsyncIterator[tuple[SqlitePubSub, SqlitePubSub]]:
    path = Path(tempfile.mkdtemp(prefix="bastion-pubsub-")) / "bastion.db"
    first, second = SqlitePubSub(path), SqlitePubSub(path)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture(params=["postgres", "sqlite"])
async def pair(request: pytest.FixtureRequest, pg_database_url: str | None
               ) -> AsyncIterator[tuple[PostgresPubSub | SqlitePubSub, ...]]:
    if request.param == "postgres":
        url = pg_database_url
        if url is None:
            pytest.skip(f"PostgreSQL pub/sub tests skipped: {postgres_available()}")
        first: PostgresPubSub | SqlitePubSub = PostgresPubSub(url)
        second: PostgresPubSub | SqlitePubSub = PostgresPubSub(url)
    else:
        path = Path(tempfile.mkdtemp(prefix="bastion-pubsub-")) / "bastion.db"
        first, second = SqlitePubSub(path), SqlitePubSub(path)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture
def channel() -> str:
    return "bastion:test-" + secrets.token_hex(6) + ":invalidate"


async def test_messages_cross_processes_in_order(pair: tuple[PostgresPubSub | SqlitePubSub, ...],
                                                 channel: str) -> None:
    a, b = pair
    on_a: list[bytes] = []
    on_b: list[bytes] = []
    await a.subscribe(channel, on_a.append)
    await b.subscribe(channel, on_b.append)
    started = time.monotonic()
    await a.publish(channel, b"first")
    await eventually(lambda: on_b == [b"first"])
    assert time.monotonic() - started < 0.25  # a NOTIFY, or a poll every POLL seconds
    for i in range(40):
        await (a if i % 2 else b).publish(channel, str(i).encode())
    await eventually(lambda: len(on_a) == 41 and len(on_b) == 41)
    assert [m for m in on_a if m != b"first" and int(m) % 2] == [str(i).encode() for i in range(1, 40, 2)]
    assert sorted(on_a[1:], key=int) == sorted(on_b[1:], key=int)


async def test_large_and_binary_messages_arrive_whole(pair: tuple[PostgresPubSub | SqlitePubSub, ...],
                                                      channel: str) -> None:
    a, b = pair
    received: list[bytes] = []
    await b.subscribe(channel, received.append)
    big = b'{"object": "' + b"x" * (3 * MAX_INLINE) + b'"}'
    binary = bytes(range(256))
    for message in (big, binary, b"small"):
        await a.publish(channel, message)
    await eventually(lambda: len(received) == 3)
    assert received == [big, binary, b"small"]


def test_long_channel_names_are_kept_apart() -> None:
    one, two = "bastion:" + "a" * 80 + ":one", "bastion:" + "a" * 80 + ":two"
    assert len(pg_channel(one).encode()) <= 63 and pg_channel(one) != pg_channel(two)
    assert pg_channel("bastion:app:invalidate") == "bastion:app:invalidate"


async def test_postgres_listener_reconnects_and_says_so(pg_pair: tuple[PostgresPubSub, PostgresPubSub],
                                                        pg_url: str, channel: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    a, b = pg_pair
    received: list[bytes] = []
    reconnected: list[bool] = []
    b.reconnected.bind(lambda _event: reconnected.append(True))
    await b.subscribe(channel, received.append)
    listener = b._listener
    assert listener is not None
    admin = await asyncpg.connect(pg_url)
    try:  # as when PostgreSQL restarts: the listening connection is gone
        await admin.execute("SELECT pg_terminate_backend($1)", listener.get_server_pid())
    finally:
        await admin.close()
    await eventually(lambda: reconnected == [True], timeout=10)
    assert b.reconnects == 1
    assert "listening connection was lost" in caplog.text
    await a.publish(channel, b"after")
    await eventually(lambda: received == [b"after"])


async def test_postgres_open_fails_clearly_when_the_database_is_away() -> None:
    adapter = PostgresPubSub("postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(ConnectionError, match="cannot LISTEN on PostgreSQL"):
        await adapter.open()


async def test_sqlite_gap_drops_caches(sqlite_pair: tuple[SqlitePubSub, SqlitePubSub], channel: str) -> None:
    # A process that did not poll for KEEP seconds finds its messages pruned: it says it missed some.
    a, b = sqlite_pair
    reconnected: list[bool] = []
    b.reconnected.bind(lambda _event: reconnected.append(True))
    await b.subscribe(channel, lambda _m: None)
    assert b._task is not None
    b._task.cancel()
    await asyncio.gather(b._task, return_exceptions=True)
    await a.publish(channel, b"missed")
    await asyncio.sleep(5 * POLL)
    with sqlite3.connect(a.path) as conn:  # pruned as KEEP seconds later
        conn.execute('DELETE FROM "_PubSub" WHERE at < ?', (time.time() + KEEP,))
    await a.publish(channel, b"next")
    await asyncio.sleep(5 * POLL)
    b._task = asyncio.get_running_loop().create_task(b._poll_forever())
    await eventually(lambda: reconnected == [True])
