"""/config: Parse Config parameters, with masterKeyOnly ones hidden from clients.

The configuration is global to the server, so each test uses parameter names of its own.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import assert_error
from tests.conftest import Server


@pytest.fixture
def prefix(class_name: str) -> str:
    return "p" + class_name


def put(master: httpx.Client, body: dict[str, object]) -> None:
    response = master.put("/config", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"result": True}


def test_put_and_get(master: httpx.Client, api: httpx.Client, prefix: str) -> None:
    values = {f"{prefix}n": 1, f"{prefix}s": "text", f"{prefix}o": {"a": [1, {"b": None}]},
              f"{prefix}d": {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}, f"{prefix}b": False}
    put(master, {"params": values})
    for client in (api, master):
        body = client.get("/config").json()
        assert {k: v for k, v in body["params"].items() if k.startswith(prefix)} == values
        # Every parameter written has a masterKeyOnly flag, false unless given.
        assert {k: v for k, v in body["masterKeyOnly"].items() if k.startswith(prefix)} == dict.fromkeys(values, False)
    # A PUT changes the parameters it names and keeps the others.
    put(master, {"params": {f"{prefix}n": 2}})
    params = api.get("/config").json()["params"]
    assert params[f"{prefix}n"] == 2 and params[f"{prefix}s"] == "text"


def test_delete_a_parameter(master: httpx.Client, prefix: str) -> None:
    put(master, {"params": {f"{prefix}keep": 1, f"{prefix}drop": 2}})
    put(master, {"params": {f"{prefix}drop": {"__op": "Delete"}}})
    body = master.get("/config").json()
    assert f"{prefix}drop" not in body["params"] and body["params"][f"{prefix}keep"] == 1
    # Parse Server leaves the deleted parameter's flag behind.
    assert body["masterKeyOnly"][f"{prefix}drop"] is False


def test_master_key_only_parameters_are_hidden_from_clients(master: httpx.Client, api: httpx.Client,
                                                            prefix: str) -> None:
    put(master, {"params": {f"{prefix}public": "p", f"{prefix}secret": "s"},
                 "masterKeyOnly": {f"{prefix}secret": True, f"{prefix}unknown": True}})
    client_view = api.get("/config").json()
    assert client_view["params"][f"{prefix}public"] == "p"
    assert f"{prefix}secret" not in client_view["params"]
    assert f"{prefix}secret" not in client_view["masterKeyOnly"]
    assert client_view["masterKeyOnly"][f"{prefix}public"] is False
    master_view = master.get("/config").json()
    assert master_view["params"][f"{prefix}secret"] == "s"
    assert master_view["masterKeyOnly"][f"{prefix}secret"] is True
    # A flag for a parameter the PUT does not write is ignored.
    assert f"{prefix}unknown" not in master_view["masterKeyOnly"]
    # Writing the parameter again without its flag makes it public again (Parse Server resets it).
    put(master, {"params": {f"{prefix}secret": "s2"}})
    assert api.get("/config").json()["params"][f"{prefix}secret"] == "s2"


def test_clients_may_not_write(server: Server, api: httpx.Client, master: httpx.Client, prefix: str) -> None:
    response = api.put("/config", json={"params": {f"{prefix}x": 1}})
    assert response.status_code == 403
    assert response.json() == {"error": "Permission denied"}
    assert f"{prefix}x" not in master.get("/config").json()["params"]


def test_config_needs_the_application_id(server: Server) -> None:
    response = httpx.get(f"{server.url}/config")
    assert_error(response, 403, None, "unauthorized")
