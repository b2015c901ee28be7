"""The pub/sub contract (bastion/ports/pubsub.py), on the in-process adapter, on Redis and on the
databases' own channels (PostgreSQL LISTEN/NOTIFY, SQLite's polled table; more of them in
test_pubsub_database.py).

Redis runs at BASTION_TEST_REDIS (default 127.0.0.1:6379); its parameters skip, with the reason,
when nothing answers there. Redis pub/sub channels are server-wide whatever the database number, so
every test uses channels of its own (a random suffix): parallel runs never see each other's messages.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bastion.adapters.pubsub import MemoryPubSub, PubSub, open_pubsub
from bastion.adapters.pubsub.postgres import PostgresPubSub
from bastion.adapters.pubsub.redis import RedisPubSub, safe_url
from bastion.adapters.pubsub.sqlite import SqlitePubSub
from tests.conftest import PG_ADMIN_URL, create_pg_database, drop_pg_database, postgres_available

REDIS_URL = os.environ.get("BASTION_TEST_REDIS", "redis://127.0.0.1:6379/0")


def redis_unavailable() -> str | None:
    """None when Redis answers PING at REDIS_URL, else the reason it does not."""
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            sock.settimeout(1)
            answer = sock.recv(64)
    except OSError as exc:
        return f"no Redis at {safe_url(REDIS_URL)} ({exc})"
    if not answer.startswith((b"+PONG", b"-NOAUTH")):
        return f"Redis at {safe_url(REDIS_URL)} answered {answer[:40]!r}"
    return None


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def database_urls() -> Iterator[dict[str, str | None]]:
    """A PostgreSQL database (None when PostgreSQL does not answer) and a SQLite file, for the module."""
    folder = Path(tempfile.mkdtemp(prefix="bastion-pubsub-"))
    urls: dict[str, str | None] = {"sqlite": f"sqlite:///{folder / 'bastion.db'}", "postgres": None}
    name = None if postgres_available() else create_pg_database()
    if name is not None:
        urls["postgres"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield urls
    finally:
        if name is not None:
            drop_pg_database(name)


@pytest.fixture(params=["memory", "redis", "postgres", "sqlite"])
async def adapter(request: pytest.FixtureRequest, database_urls: dict[str, str | None]) -> AsyncIterator[PubSub]:
    if request.param == "redis":
        reason = redis_unavailable()
        if reason:
            pytest.skip(f"Redis pub/sub tests skipped: {reason}")
        pubsub: PubSub = open_pubsub(REDIS_URL)
    elif request.param in ("postgres", "sqlite"):
        url = database_urls[request.param]
        if url is None:
            pytest.skip(f"PostgreSQL pub/sub tests skipped: {postgres_available()}")
        pubsub = open_pubsub(None, url)
    else:
        pubsub = open_pubsub(None)
    await pubsub.open()
    try:
        yield pubsub
    finally:
        await pubsub.close()


@pytest.fixture
def channel() -> str:
    return "bastion:test-" + secrets.token_hex(6) + ":events"


async def test_open_pubsub_names_the_adapter() -> None:
    assert isinstance(open_pubsub(None), MemoryPubSub)
    assert isinstance(open_pubsub("memory"), MemoryPubSub)
    assert isinstance(open_pubsub("redis://127.0.0.1:6379/3"), RedisPubSub)
    # Unset, the database's own channel; ``memory`` keeps one process to itself.
    assert isinstance(open_pubsub(None, "postgresql://127.0.0.1/x"), PostgresPubSub)
    assert isinstance(open_pubsub(None, "sqlite:///bastion.db"), SqlitePubSub)
    assert isinstance(open_pubsub("memory", "postgresql://127.0.0.1/x"), MemoryPubSub)
    with pytest.raises(ValueError, match="unsupported --pubsub URL"):
        open_pubsub("amqp://somewhere")


async def test_messages_arrive_in_publication_order(adapter: PubSub, channel: str) -> None:
    received: list[bytes] = []
    await adapter.subscribe(channel, received.append)
    sent = [f"m{i}".encode() for i in range(200)]
    for message in sent:
        await adapter.publish(channel, message)
    await eventually(lambda: len(received) >= len(sent))
    assert received == sent


async def test_every_handler_of_a_channel_gets_each_message_once(adapter: PubSub, channel: str) -> None:
    first: list[bytes] = []
    second: list[bytes] = []
    elsewhere: list[bytes] = []

    async def async_handler(message: bytes) -> None:
        await asyncio.sleep(0)
        second.append(message)

    await adapter.subscribe(channel, first.append)
    await adapter.subscribe(channel, async_handler)
    await adapter.subscribe(channel + ":other", elsewhere.append)
    await adapter.publish(channel, b"\x00binary\xff")
    await adapter.publish(channel + ":other", b"x")
    await eventually(lambda: len(first) == 1 and len(second) == 1 and len(elsewhere) == 1)
    await asyncio.sleep(0.05)
    assert first == second == [b"\x00binary\xff"]
    assert elsewhere == [b"x"]


async def test_unsubscribe_stops_one_handler(adapter: PubSub, channel: str) -> None:
    kept: list[bytes] = []
    dropped: list[bytes] = []
    await adapter.subscribe(channel, kept.append)
    await adapter.subscribe(channel, dropped.append)
    await adapter.publish(channel, b"1")
    await eventually(lambda: len(kept) == 1 and len(dropped) == 1)
    await adapter.unsubscribe(channel, dropped.append)
    await adapter.publish(channel, b"2")
    await eventually(lambda: len(kept) == 2)
    await adapter.unsubscribe(channel, kept.append)
    await adapter.unsubscribe(channel, kept.append)  # twice: nothing happens
    await adapter.publish(channel, b"3")
    await adapter.subscribe(channel, kept.append)  # the channel again, after its last handler left
    await adapter.publish(channel, b"4")
    await eventually(lambda: len(kept) == 3)
    await asyncio.sleep(0.05)
    assert kept == [b"1", b"2", b"4"]
    assert dropped == [b"1"]


async def test_a_failing_handler_stops_nothing(adapter: PubSub, channel: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    received: list[bytes] = []

    def broken(message: bytes) -> None:
        raise RuntimeError("handler bug")

    await adapter.subscribe(channel, broken)
    await adapter.subscribe(channel, received.append)
    for message in (b"a", b"b"):
        await adapter.publish(channel, message)
    await eventually(lambda: len(received) == 2)
    assert received == [b"a", b"b"]
    assert "handler bug" in caplog.text


async def test_publish_after_close_is_a_no_op(adapter: PubSub, channel: str) -> None:
    received: list[bytes] = []
    await adapter.subscribe(channel, received.append)
    await adapter.close()
    await adapter.publish(channel, b"late")
    await adapter.close()  # twice: fine
    await asyncio.sleep(0.05)
    assert received == []


# --- Redis only ------------------------------------------------------------------------------------


@pytest.fixture
async def redis_pair() -> AsyncIterator[tuple[RedisPubSub, RedisPubSub]]:
    reason = redis_unavailable()
    if reason:
        pytest.skip(f"Redis pub/sub tests skipped: {reason}")
    first, second = RedisPubSub(REDIS_URL), RedisPubSub(REDIS_URL)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_redis_messages_cross_processes(redis_pair: tuple[RedisPubSub, RedisPubSub], channel: str) -> None:
    a, b = redis_pair
    on_a: list[bytes] = []
    on_b: list[bytes] = []
    await a.subscribe(channel, on_a.append)
    await b.subscribe(channel, on_b.append)
    for i in range(50):
        await (a if i % 2 else b).publish(channel, str(i).encode())
    await eventually(lambda: len(on_a) == 50 and len(on_b) == 50)
    # One publisher's messages keep their order everywhere.
    odd = [m for m in on_a if int(m) % 2]
    assert odd == [str(i).encode() for i in range(1, 50, 2)]
    assert sorted(on_a, key=int) == sorted(on_b, key=int)


async def _kill_subscriber(adapter: RedisPubSub) -> None:
    from redis.asyncio import Redis

    admin = Redis.from_url(REDIS_URL)
    try:
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == f"{adapter.client_name}-sub"]
        assert ids, "the subscribed connection is not in CLIENT LIST"
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
    finally:
        await admin.aclose()


async def test_redis_reader_reconnects_after_the_connection_is_killed(
        redis_pair: tuple[RedisPubSub, RedisPubSub], channel: str, caplog: pytest.LogCaptureFixture) -> None:
    a, b = redis_pair
    received: list[bytes] = []
    reconnected: list[bool] = []
    b.reconnected.bind(lambda _event: reconnected.append(True))
    await b.subscribe(channel, received.append)
    await a.publish(channel, b"before")
    await eventually(lambda: received == [b"before"])
    await _kill_subscriber(b)  # as when Redis restarts: the subscribed connection is gone
    await eventually(lambda: reconnected == [True], timeout=10)
    assert b.reconnects == 1
    assert "connection lost" in caplog.text and "were lost" in caplog.text
    # Subscribed again to the same channels; messages flow in order once more.
    received.clear()
    for i in range(20):
        await a.publish(channel, str(i).encode())
    await eventually(lambda: len(received) == 20)
    assert received == [str(i).encode() for i in range(20)]
    # A channel subscribed after the reconnection works too.
    late: list[bytes] = []
    await b.subscribe(channel + ":late", late.append)
    await a.publish(channel + ":late", b"x")
    await eventually(lambda: late == [b"x"])


async def test_redis_open_fails_clearly_when_redis_is_away() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed
    adapter = RedisPubSub(f"redis://:secret-password@127.0.0.1:{port}/0")
    with pytest.raises(ConnectionError) as info:
        await adapter.open()
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "secret-password" not in str(info.value)
    await adapter.close()


def test_safe_url_drops_the_password() -> None:
    assert safe_url("redis://:pw@host:6380/2") == "redis://host:6380/2"
    assert safe_url("redis://user:pw@host/0") == "redis://host/0"
    assert safe_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


async def test_redis_database_numbers_separate_channels(channel: str) -> None:
    """Redis pub/sub ignores database numbers; the adapter does not: /1 and /2 never meet."""
    from bastion.adapters.pubsub.redis import RedisPubSub

    reason = redis_unavailable()
    if reason:
        pytest.skip(reason)
    first, second = RedisPubSub(REDIS_URL.rsplit("/", 1)[0] + "/1"), RedisPubSub(REDIS_URL.rsplit("/", 1)[0] + "/2")
    await first.open()
    await second.open()
    try:
        got_first: list[bytes] = []
        got_second: list[bytes] = []
        await first.subscribe(channel, got_first.append)
        await second.subscribe(channel, got_second.append)
        await first.publish(channel, b"to one")
        await second.publish(channel, b"to two")
        for _ in range(100):
            if got_first and got_second:
                break
            await asyncio.sleep(0.02)
        assert (got_first, got_second) == ([b"to one"], [b"to two"])
    finally:
        await first.close()
        await second.close()
