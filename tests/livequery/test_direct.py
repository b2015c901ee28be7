"""The direct write path of LiveQuery's fan-out (``bastion/livequery/direct.py``): frames written
straight to uvicorn's transport arrive intact and in order with messages that took the queue, a
client that stops reading is still closed with 1013, and anything unexpected takes the ASGI path.

The server runs in this process (the ``local`` fixture of test_robustness), to reach its sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from bastion.core.auth import Auth, CallInfo
from bastion.livequery import connection as lq_connection
from bastion.livequery import direct as lq_direct
from bastion.livequery import endpoint as lq_endpoint
from bastion.livequery.access import Decision
from bastion.livequery.connection import Connection
from bastion.livequery.direct import DirectWriter, direct_writer, text_frame
from bastion.livequery.protocol import event_ident, event_tail
from tests.livequery import test_robustness
from tests.livequery.helpers import LQ, connected
from tests.livequery.test_robustness import Local, event_payload

local = test_robustness.local  # the fixture: a server in this process

# Payload sizes of every length class of a frame header: 7-bit, 16-bit and 64-bit lengths.
SIZES = [8, 50, 125, 126, 127, 1000, 65535, 65536, 70_000, 300_000]


def payload(n: int, size: int) -> bytes:
    """A JSON string of exactly ``size`` bytes (non-ASCII included when there is room) naming ``n``."""
    head = f"{n}:".encode()
    body = head + "é".encode() * 2 if size >= len(head) + 6 else head
    return b'"' + body + b"x" * (size - len(body) - 2) + b'"'


class Refusing:
    """Wraps a connection's DirectWriter: refuses every ``every``-th write (as a full buffer would),
    so the messages after it queue; counts what went direct."""

    def __init__(self, inner: DirectWriter, every: int) -> None:
        self.inner = inner
        self.every = every
        self.calls = 0
        self.direct = 0

    def write(self, data: bytes) -> bool:
        self.calls += 1
        if self.every and self.calls % self.every == 0:
            return False
        done = self.inner.write(data)
        self.direct += done
        return done


async def server_conn(local: Local) -> tuple[LQ, Connection]:
    client = await connected(local)  # type: ignore[arg-type]
    conns = list(local.app.services.livequery.connections.values())
    assert len(conns) == 1
    return client, conns[0]


def test_text_frame_headers() -> None:
    assert text_frame(b"") == b"\x81\x00"
    assert text_frame(b"a" * 125)[:2] == b"\x81\x7d"
    assert text_frame(b"a" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"a" * 65535)[:4] == b"\x81\x7e\xff\xff"
    assert text_frame(b"a" * 65536)[:10] == b"\x81\x7f" + (65536).to_bytes(8, "big")
    for size in SIZES:
        frame = text_frame(payload(1, size))
        assert frame.endswith(payload(1, size)) and len(frame) == size + (2 if size < 126 else 4 if size < 65536
                                                                         else 10)


@pytest.mark.parametrize("installation_id", [None, "inst-é\"1"])
@pytest.mark.parametrize("request_id", [1, 2.5, 7.0])
@pytest.mark.parametrize("original", [None, {"n": 1}])
def test_event_bytes_are_parse_servers_message(installation_id: str | None, request_id: Any,
                                               original: dict[str, Any] | None) -> None:
    obj = {"objectId": "a", "s": "ü\n\"", "n": [1, 2.5, None]}
    decision = Decision("update", obj, original, Auth())
    built = decision.head + event_ident("cid", installation_id, request_id) + event_tail(obj, original)
    expected: dict[str, Any] = {"op": "update", "clientId": "cid"}
    if installation_id is not None:
        expected["installationId"] = installation_id
    expected["requestId"] = request_id
    expected["object"] = obj
    if original is not None:
        expected["original"] = original
    assert built == orjson.dumps(expected)


async def test_direct_and_queued_frames_of_every_size_arrive_intact_and_in_order(local: Local) -> None:
    client, conn = await server_conn(local)
    assert isinstance(conn.direct, DirectWriter)  # uvicorn's default WebSocket protocol is recognised
    refusing = Refusing(conn.direct, every=4)
    conn.direct = refusing  # type: ignore[assignment]
    sent = [payload(n, SIZES[(n * 7) % len(SIZES)]) for n in range(200)]
    received: list[bytes] = []

    async def read() -> None:
        while len(received) < len(sent):
            text = await asyncio.wait_for(client.ws.recv(), 10)
            received.append(text.encode() if isinstance(text, str) else text)

    reader = asyncio.get_running_loop().create_task(read())
    for n, data in enumerate(sent):
        assert conn.push(data)
        if n % 10 == 9:
            await asyncio.sleep(0)  # let the write loop drain part of the queue between bursts
    await asyncio.wait_for(reader, 30)
    assert received == sent
    assert 0 < refusing.direct < len(sent)  # both paths were taken
    # Back to idle: the next message goes direct again.
    for _ in range(50):
        if not conn.queue and not conn.sending:
            break
        await asyncio.sleep(0.01)
    refusing.every = 0
    before = refusing.direct
    assert conn.push(payload(999, 10))
    assert refusing.direct == before + 1
    assert (await client.ws.recv()).encode() == payload(999, 10)
    await client.close()


async def test_events_go_direct_to_every_subscriber(local: Local) -> None:
    lq = local.app.services.livequery
    clients = [await connected(local) for _ in range(5)]  # type: ignore[arg-type]
    for client in clients:
        await client.subscribe("Direct")
    counters = []
    for conn in lq.connections.values():
        assert conn.direct is not None
        counters.append(Refusing(conn.direct, every=0))
        conn.direct = counters[-1]  # type: ignore[assignment]
    for n in range(20):
        await lq.on_message(event_payload("Direct", n, size=(0, 200, 70_000)[n % 3]))
    for client in clients:
        for n in range(20):
            assert (await client.event("create"))["object"]["n"] == n
        await client.close()
    assert sum(c.direct for c in counters) >= 5 * 13  # all but (perhaps) some behind a full buffer


async def test_a_client_that_stops_reading_is_still_closed_with_1013(
        local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lq_connection, "MAX_QUEUED_MESSAGES", 50)
    from websockets.asyncio.client import connect

    slow = LQ(await connect(local.url.replace("http", "ws"), max_queue=1))
    await slow.connect(local)  # type: ignore[arg-type]
    conn = next(iter(local.app.services.livequery.connections.values()))
    assert conn.direct is not None
    counting = Refusing(conn.direct, every=0)
    conn.direct = counting  # type: ignore[assignment]
    pushed = 0
    for n in range(2000):
        if not conn.push(payload(n, 100_000)):
            break
        pushed += 1
        await asyncio.sleep(0)
    assert conn.closing and conn.close_code == 1013
    assert 0 < counting.direct < pushed  # went direct until the transport's buffer filled, then queued
    messages: list[Any] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            messages.append(json.loads(await asyncio.wait_for(slow.ws.recv(), 10)))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    assert messages[-1]["op"] == "error" and "too slow" in messages[-1]["error"]
    assert [int(m.split(":")[0]) for m in messages[:-1]] == list(range(len(messages) - 1))  # in order


async def test_without_a_transport_every_message_takes_the_asgi_path(
        local: Local, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lq_endpoint, "direct_writer", lambda send: None)
    client, conn = await server_conn(local)
    assert conn.direct is None
    await client.subscribe("Fallback")
    for n in range(5):
        await local.app.services.livequery.on_message(event_payload("Fallback", n, size=(0, 70_000)[n % 2]))
    for n in range(5):
        assert (await client.event("create"))["object"]["n"] == n
    await client.close()


def test_the_adapter_refuses_what_it_does_not_know() -> None:
    async def plain_send(message: dict[str, Any]) -> None:
        return None

    assert direct_writer(plain_send) is None  # a test client, or middleware wrapping send
    assert direct_writer(None) is None

    class Other:
        async def send(self, message: dict[str, Any]) -> None:
            return None

    assert direct_writer(Other().send) is None  # another implementation

    proto_class = lq_direct.WebSocketsSansIOProtocol
    proto = proto_class.__new__(proto_class)  # no transport, no handshake
    proto.transport = None  # type: ignore[assignment]
    proto.conn = lq_direct.ServerProtocol()
    assert direct_writer(proto.send) is None


async def test_the_writer_stops_when_the_socket_closes(local: Local) -> None:
    client, conn = await server_conn(local)
    writer = conn.direct
    assert writer is not None
    assert writer.write(b'"a"')
    assert json.loads(await client.ws.recv()) == "a"
    conn.fail(None, 1000)
    for _ in range(100):
        if writer._proto.close_sent:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert not writer.write(b'"b"')  # after the close frame nothing more goes out
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(client.ws.recv(), 5)


async def test_a_message_being_sent_is_not_overtaken() -> None:
    """While the write loop waits to send a message (uvicorn's send waiting for ``writable``), a
    new one queues behind it instead of going direct."""
    wire: list[bytes] = []
    release = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        await release.wait()  # a paused transport
        if message["type"] == "websocket.send":
            wire.append(message["text"].encode())

    class Writer:
        refuse = True

        def write(self, data: bytes) -> bool:
            if self.refuse:
                return False
            wire.append(data)
            return True

    writer = Writer()
    conn = Connection(1, send, CallInfo({}, None, {}), writer)  # type: ignore[arg-type]
    loop_task = asyncio.get_running_loop().create_task(conn.write_loop())
    assert conn.push(b'"a"')  # refused: queued
    await asyncio.sleep(0.01)
    assert conn.sending and not conn.queue  # the write loop holds it
    writer.refuse = False
    assert conn.push(b'"b"')
    assert conn.queue and wire == []  # queued behind "a"
    release.set()
    await asyncio.sleep(0.01)
    assert wire == [b'"a"', b'"b"'] and not conn.sending
    assert conn.push(b'"c"') and wire[-1] == b'"c"'  # idle again: direct
    conn.fail(None, 1000)
    await asyncio.wait_for(loop_task, 1)
