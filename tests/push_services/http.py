"""Minimal HTTP/1.1 (keep-alive, Content-Length bodies) and HTTP/2 (h2, prior knowledge) servers
on asyncio streams, for the push-service stand-ins. A handler takes a Request and returns
(status, headers, body)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import h2.config
import h2.connection
import h2.events
import h2.exceptions


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


Answer = tuple[int, dict[str, str], bytes]
Handler = Callable[[Request], Answer]

_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 410: "Gone", 413: "Payload Too Large", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass
class Server:
    handler: Handler
    http2: bool = False
    host: str = "127.0.0.1"
    port: int = 0
    _server: asyncio.base_events.Server | None = None
    _connections: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        serve = self._serve_h2 if self.http2 else self._serve_h1
        self._server = await asyncio.start_server(serve, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def _serve_h1(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _version = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                try:
                    status, extra, payload = self.handler(Request(method, target, headers, body))
                except Exception as error:  # a bug in the stand-in shows as a 500 with its text
                    status, extra, payload = 500, {}, f"stand-in error: {error!r}".encode()
                head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"Content-Length: {len(payload)}"]
                head += [f"{name}: {value}" for name, value in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _serve_h2(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=config)
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = ({k.lower(): v for k, v in event.headers}, bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        request = Request(headers.get(":method", ""), headers.get(":path", ""), headers, bytes(body))
                        try:
                            status, extra, payload = self.handler(request)
                        except Exception as error:
                            status, extra, payload = 500, {}, f"stand-in error: {error!r}".encode()
                        response = [(":status", str(status)), ("content-length", str(len(payload)))]
                        response += [(name.lower(), value) for name, value in extra.items()]
                        conn.send_headers(event.stream_id, response, end_stream=not payload)
                        if payload:
                            conn.send_data(event.stream_id, payload, end_stream=True)
                    elif isinstance(event, h2.events.StreamReset):
                        streams.pop(event.stream_id, None)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        writer.write(conn.data_to_send())
                        return
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError):
            return
        finally:
            self._connections.discard(writer)
            writer.close()


def parse_form(body: bytes) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(body.decode()))


@dataclass(slots=True)
class Fault:
    status: int
    reason: str = ""
    retry_after: float | None = None
    times: int | None = None  # None: every time


class Faults:
    """Error answers chosen per token: ``fail(token, 410)``, ``fail(token, 429, times=1, retry_after=2)``."""

    def __init__(self) -> None:
        self._by_token: dict[str, Fault] = {}

    def fail(self, token: str, status: int, reason: str = "", *, retry_after: float | None = None,
             times: int | None = None) -> None:
        self._by_token[token] = Fault(status, reason, retry_after, times)

    def clear(self) -> None:
        self._by_token.clear()

    def take(self, token: str) -> Fault | None:
        fault = self._by_token.get(token)
        if fault is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self._by_token[token]
        return fault

    @staticmethod
    def headers(fault: Fault) -> dict[str, str]:
        return {"Retry-After": str(int(fault.retry_after))} if fault.retry_after is not None else {}


class StandIn:
    """``url``, ``start`` and ``stop`` of a stand-in service: a dataclass with ``host``, ``port``,
    ``_server`` and a ``handle(request)`` mixes this in (``http2`` for services that speak it)."""

    http2: ClassVar[bool] = False
    host: str
    port: int
    _server: Server | None

    def handle(self, request: Request) -> Answer:
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self._server = Server(self.handle, http2=self.http2, host=self.host, port=self.port)
        await self._server.start()
        self.port = self._server.port
        return self.url

    async def stop(self) -> None:
        if self._server:
            await self._server.stop()
