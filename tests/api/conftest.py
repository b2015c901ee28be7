"""The REST API suite can also run against another server, to check it against Parse Server itself.

``BASTION_API_EXTERNAL="http://127.0.0.1:1338/parse,appId,masterKey,javascriptKey"`` points every
test at that server instead of the Bastion started for the backend (which still starts, unused).
Tests that need a Bastion of their own skip then.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server

EXTERNAL = os.environ.get("BASTION_API_EXTERNAL", "")


@pytest.fixture(scope="session")
def server(server: Server) -> Server:
    if not EXTERNAL:
        return server
    url, app_id, master_key, javascript_key = EXTERNAL.split(",")
    return Server("external", url.rstrip("/"), app_id, master_key, javascript_key, server.process, Path("."))


@pytest.fixture(scope="session")
def own_server() -> None:
    """Skip a test that starts a Bastion of its own when the suite targets an external server."""
    if EXTERNAL:
        pytest.skip("starts its own Bastion")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "differs_from_parse_server(reason): Bastion deliberately answers otherwise than Parse Server "
        "9 on PostgreSQL (a bug there); expected to fail against an external Parse Server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not EXTERNAL:
        return
    for item in items:
        marker = item.get_closest_marker("differs_from_parse_server")
        if marker is not None:
            item.add_marker(pytest.mark.xfail(reason=str(marker.args[0] if marker.args else ""), strict=True))


@pytest.fixture
def as_user(server: Server) -> Iterator[Any]:
    """Clients acting as a session token: ``as_user(token)``; closed after the test."""
    clients: list[httpx.Client] = []

    def make(token: str) -> httpx.Client:
        client = server.client()
        client.headers["X-Parse-Session-Token"] = token
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
