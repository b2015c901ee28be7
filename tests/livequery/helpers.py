"""A small LiveQuery client over ``websockets`` and REST helpers, for tests against a real server."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import Server


def ws_url(server: Server, path: str | None = None) -> str:
    base = server.url.replace("http://", "ws://")
    if path is None:
        return base
    return base.rsplit("/", 1)[0] + path


def unique(prefix: str) -> str:
    return prefix + secrets.token_hex(4)


class LQ:
    """One LiveQuery socket: send requests, read messages as JSON."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 1

    @classmethod
    async def open(cls, server: Server, path: str | None = None, **kwargs: Any) -> LQ:
        return cls(await connect(ws_url(server, path), **kwargs))

    async def close(self) -> None:
        await self.ws.close()

    async def send(self, request: Any) -> None:
        await self.ws.send(request if isinstance(request, (str, bytes)) else json.dumps(request))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def nothing(self, timeout: float = 0.4) -> None:
        """Asserts that no message arrives within ``timeout``."""
        try:
            got = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message: {got}")

    async def connect(self, server: Server, **fields: Any) -> dict[str, Any]:
        await self.send({"op": "connect", "applicationId": server.app_id, "javascriptKey": server.javascript_key,
                         **fields})
        return await self.recv()

    async def subscribe(self, class_name: str, where: dict[str, Any] | None = None, *, expect: str = "subscribed",
                        **extra: Any) -> int:
        request_id = self.next_id
        self.next_id += 1
        query: dict[str, Any] = {"className": class_name, "where": where or {}}
        for name in ("keys", "fields", "watch"):
            if name in extra:
                query[name] = extra.pop(name)
        await self.send({"op": "subscribe", "requestId": request_id, "query": query, **extra})
        answer = await self.recv()
        assert answer["op"] == expect, answer
        if expect == "subscribed":
            assert answer["requestId"] == request_id
        return request_id if expect == "subscribed" else answer  # type: ignore[return-value]

    async def event(self, op: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        message = await self.recv(timeout)
        if op is not None:
            assert message["op"] == op, message
        return message


async def connected(server: Server, **fields: Any) -> LQ:
    client = await LQ.open(server)
    answer = await client.connect(server, **fields)
    assert answer["op"] == "connected", answer
    return client


def rest(server: Server, master: bool = False, token: str | None = None) -> httpx.AsyncClient:
    headers = {"X-Parse-Application-Id": server.app_id, "X-Parse-Javascript-Key": server.javascript_key}
    if master:
        headers["X-Parse-Master-Key"] = server.master_key
    if token:
        headers["X-Parse-Session-Token"] = token
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30)


async def sign_up(server: Server, name: str | None = None) -> tuple[str, str]:
    """A new user: (objectId, sessionToken)."""
    async with rest(server) as http:
        answer = await http.post("/users", json={"username": name or unique("u"), "password": "pw-123456",
                                                 "email": unique("e") + "@example.com"})
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return body["objectId"], body["sessionToken"]
