"""/config: Parse Config parameters, with masterKeyOnly ones hidden from clients.

The configuration is global to the server, so each test uses parameter names of its own.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import ISO_DATE, assert_error
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


# --- /classes/_GlobalConfig ----------------------------------------------------------------------


def test_global_config_as_a_class(master: httpx.Client, api: httpx.Client, prefix: str) -> None:
    """Parse Server lets the master key see the config's one row (objectId "1") as an object of
    _GlobalConfig: found, got, its columns replaced by an update, deleted; never created."""
    put(master, {"params": {f"{prefix}a": 1, f"{prefix}s": "x"}, "masterKeyOnly": {f"{prefix}s": True}})
    stored = master.get("/config").json()
    row = {"objectId": "1", "params": stored["params"], "masterKeyOnly": stored["masterKeyOnly"]}
    assert master.get("/classes/_GlobalConfig").json() == {"results": [row]}
    assert master.get("/classes/_GlobalConfig/1").json() == row
    found = master.get("/classes/_GlobalConfig", params={"where": f'{{"params.{prefix}a": 1}}', "count": 1})
    assert found.json() == {"results": [row], "count": 1}
    assert master.get("/classes/_GlobalConfig", params={"where": '{"params.none": 1}'}).json() == {"results": []}
    assert_error(master.get("/classes/_GlobalConfig/2"), 404, 101, "Object not found.")
    assert_error(master.post("/classes/_GlobalConfig", json={"params": {}}), 400, 103,
                 "invalid className: _GlobalConfig")
    assert_error(master.put("/classes/_GlobalConfig/1", json={"other": 1}), 400, 107, "Could not add field other")
    assert_error(master.put("/classes/_GlobalConfig/1", json={"params": "x"}), 400, 111,
                 "schema mismatch for _GlobalConfig.params; expected Object but got String")
    assert_error(master.put("/classes/_GlobalConfig/2", json={"params": {}}), 404, 101, "Object not found.")
    # An update replaces the column it names (the parameters are all the ones given).
    response = master.put("/classes/_GlobalConfig/1", json={"params": {f"{prefix}z": 3}})
    assert response.status_code == 200 and ISO_DATE.match(response.json()["updatedAt"])
    assert master.get("/config").json() == {"params": {f"{prefix}z": 3}, "masterKeyOnly": row["masterKeyOnly"]}
    assert_error(master.delete("/classes/_GlobalConfig/2"), 404, 101, "Object not found.")
    assert master.delete("/classes/_GlobalConfig/1").json() == {}
    assert master.get("/config").json() == {"params": {}}
    assert master.get("/classes/_GlobalConfig").json() == {"results": []}
    assert_error(master.delete("/classes/_GlobalConfig/1"), 404, 101, "Object not found.")


def test_global_config_class_is_the_master_keys_alone(api: httpx.Client, master: httpx.Client, prefix: str) -> None:
    put(master, {"params": {f"{prefix}a": 1}})
    for method, path in (("GET", "/classes/_GlobalConfig"), ("GET", "/classes/_GlobalConfig/1"),
                         ("POST", "/classes/_GlobalConfig"), ("PUT", "/classes/_GlobalConfig/1"),
                         ("DELETE", "/classes/_GlobalConfig/1")):
        response = api.request(method, path, json={"params": {}} if method in ("POST", "PUT") else None)
        assert_error(response, 400, 119, "Permission denied")
    assert master.get("/config").json()["params"][f"{prefix}a"] == 1
