"""Installations over REST (/installations and /classes/_Installation), as Parse Server 9 answers.

Parse Server's RestWrite.handleInstallation decides where an installation write goes: to a new
object, or to the installation that has the same installationId or device token, deleting the other
installations that held the token. Every answer here was checked against Parse Server 9.10 on
PostgreSQL (``BASTION_API_EXTERNAL``).
"""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.helpers import ISO_DATE, OBJECT_ID, assert_error
from tests.conftest import Server, running_server

ROUTES = ("/installations", "/classes/_Installation")


def iid() -> str:
    return "Inst-" + secrets.token_hex(6).upper()


def token() -> str:
    return "tok-" + secrets.token_hex(8)


def post(client: httpx.Client, body: dict[str, Any], route: str = "/installations", **headers: str) -> httpx.Response:
    return client.post(route, json=body, headers=headers)


def created(client: httpx.Client, body: dict[str, Any], route: str = "/installations", **headers: str) -> str:
    response = post(client, body, route, **headers)
    assert response.status_code == 201, response.text
    return str(response.json()["objectId"])


def by(master: httpx.Client, where: dict[str, Any]) -> list[dict[str, Any]]:
    response = master.get("/installations", params={"where": _json(where), "order": "createdAt"})
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


@pytest.mark.parametrize("route", ROUTES)
def test_client_creates_and_gets_an_installation(api: httpx.Client, server: Server, route: str) -> None:
    given = iid()
    response = post(api, {"deviceType": "ios", "installationId": given, "channels": ["news", ""], "badge": 2,
                          "timeZone": "Europe/Paris", "appIdentifier": "com.example.app"}, route)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"objectId", "createdAt"}
    assert OBJECT_ID.match(body["objectId"]) and ISO_DATE.match(body["createdAt"])
    # Parse Server's Location names the class route, whichever route created it.
    assert response.headers["location"] == f"{server.url}/classes/_Installation/{body['objectId']}"
    for read_route in ROUTES:
        got = api.get(f"{read_route}/{body['objectId']}")
        assert got.status_code == 200, got.text
        obj = got.json()
        assert obj["installationId"] == given.lower()  # stored lower-cased
        assert obj["channels"] == ["news", ""] and obj["badge"] == 2 and obj["deviceType"] == "ios"
        assert "ACL" not in obj  # no default ACL: public, as in Parse Server


def test_a_create_with_a_known_installation_id_updates_it(api: httpx.Client, master: httpx.Client) -> None:
    given = iid()
    object_id = created(api, {"deviceType": "android", "installationId": given})
    response = post(api, {"deviceType": "android", "installationId": given.lower(), "appVersion": "2.0"})
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"updatedAt"}
    # deviceType may be left out once the installation exists.
    response = post(api, {"installationId": given, "badge": 7}, "/classes/_Installation")
    assert response.status_code == 200, response.text
    [obj] = by(master, {"installationId": given.lower()})
    assert obj["objectId"] == object_id and obj["appVersion"] == "2.0" and obj["badge"] == 7


def test_ids_are_required(api: httpx.Client) -> None:
    assert_error(post(api, {"deviceType": "ios"}), 400, 135,
                 "at least one ID field (deviceToken, installationId) must be specified in this operation")
    assert_error(post(api, {"installationId": iid()}), 400, 135, "deviceType must be specified in this operation")
    assert_error(post(api, {"deviceToken": token()}), 400, 135, "deviceType must be specified in this operation")
    assert_error(post(api, {"deviceType": "ios", "installationId": iid(), "objectId": "abcdefghij"}), 400, 105,
                 "objectId is an invalid field name.")


def test_clients_may_not_find_or_delete(api: httpx.Client, master: httpx.Client) -> None:
    object_id = created(api, {"deviceType": "ios", "installationId": iid()})
    for route in ROUTES:
        assert_error(api.get(route), 400, 119, "Permission denied")
        assert_error(api.get(route, params={"count": 1, "limit": 0}), 400, 119, "Permission denied")
        assert_error(api.delete(f"{route}/{object_id}"), 400, 119, "Permission denied")
    response = master.get("/installations", params={"where": _json({"objectId": object_id}), "count": 1})
    assert response.status_code == 200 and response.json()["count"] == 1
    response = master.delete(f"/classes/_Installation/{object_id}")
    assert response.status_code == 200 and response.json() == {}
    assert_error(api.get(f"/installations/{object_id}"), 404, 101, "Object not found.")


def test_ids_and_device_type_may_not_change(api: httpx.Client) -> None:
    object_id = created(api, {"deviceType": "ios", "installationId": iid(), "deviceToken": token()})
    path = f"/installations/{object_id}"
    assert_error(api.put(path, json={"deviceType": "android"}), 400, 136,
                 "deviceType may not be changed in this operation")
    assert_error(api.put(path, json={"installationId": iid()}), 400, 136,
                 "installationId may not be changed in this operation")
    response = api.put(path, json={"deviceType": "ios", "appName": "same type"})
    assert response.status_code == 200, response.text
    # Without an installationId on either side, the token is what identifies the device.
    bare = created(api, {"deviceType": "android", "deviceToken": token()})
    assert_error(api.put(f"/installations/{bare}", json={"deviceToken": token()}), 400, 136,
                 "deviceToken may not be changed in this operation")
    assert_error(api.put("/installations/nosuchobj1", json={"deviceType": "ios"}), 404, 101,
                 "Object not found for update.")
    assert_error(api.put("/installations/nosuchobj1", json={"appName": "x"}), 404, 101, "Object not found.")


def test_updates_take_operations_and_check_types(api: httpx.Client) -> None:
    object_id = created(api, {"deviceType": "ios", "installationId": iid(), "badge": 1})
    path = f"/installations/{object_id}"
    response = api.put(path, json={"badge": {"__op": "Increment", "amount": 2},
                                   "channels": {"__op": "AddUnique", "objects": ["a", "b"]}})
    assert response.status_code == 200, response.text
    assert response.json()["badge"] == 3 and response.json()["channels"] == ["a", "b"]
    assert_error(api.put(path, json={"badge": "x"}), 400, 111,
                 "schema mismatch for _Installation.badge; expected Number but got String")
    assert_error(post(api, {"deviceType": "ios", "installationId": iid(), "channels": "news"}), 400, 111,
                 "schema mismatch for _Installation.channels; expected Array but got String")
    assert_error(post(api, {"deviceType": 7, "installationId": iid()}), 400, 111,
                 "schema mismatch for _Installation.deviceType; expected String but got Number")


def test_channel_names_are_not_checked(api: httpx.Client) -> None:
    # Parse Server 9 checks no channel names (parse.com's 112 rule is gone): any strings are kept.
    object_id = created(api, {"deviceType": "web", "installationId": iid(), "channels": ["a b", "x-1", "é"]})
    assert api.get(f"/installations/{object_id}").json()["channels"] == ["a b", "x-1", "é"]


@pytest.mark.differs_from_parse_server("Parse Server answers 500 (it lower-cases a number)")
def test_a_non_string_installation_id_is_a_type_error(api: httpx.Client) -> None:
    assert_error(post(api, {"deviceType": "ios", "installationId": 12}), 400, 111,
                 "schema mismatch for _Installation.installationId; expected String but got Number")


def test_apns_tokens_are_lower_cased(api: httpx.Client, master: httpx.Client) -> None:
    hex_token = secrets.token_hex(32).upper()
    object_id = created(api, {"deviceType": "ios", "deviceToken": hex_token})
    assert api.get(f"/installations/{object_id}").json()["deviceToken"] == hex_token.lower()
    other = "Web-" + secrets.token_hex(10)  # not 64 characters: kept as given
    object_id = created(api, {"deviceType": "web", "deviceToken": other})
    assert api.get(f"/installations/{object_id}").json()["deviceToken"] == other


def test_device_token_matching_and_takeover(api: httpx.Client, master: httpx.Client) -> None:
    tok = token()
    first = created(api, {"deviceType": "android", "deviceToken": tok})
    # The same token again: the installation holding it is updated.
    response = post(api, {"deviceType": "android", "deviceToken": tok, "appName": "b"})
    assert response.status_code == 200 and set(response.json()) == {"updatedAt"}
    # With an installationId: the token's installation (which had none) takes it.
    id1 = iid()
    assert post(api, {"deviceType": "android", "deviceToken": tok, "installationId": id1}).status_code == 200
    [obj] = by(master, {"deviceToken": tok})
    assert obj["objectId"] == first and obj["installationId"] == id1.lower() and obj["appName"] == "b"
    # Another installationId with the same token: a new installation, and the old one is deleted.
    id2 = iid()
    second = created(api, {"deviceType": "android", "deviceToken": tok, "installationId": id2})
    assert [o["objectId"] for o in by(master, {"deviceToken": tok})] == [second]
    assert_error(api.get(f"/installations/{first}"), 404, 101, "Object not found.")


def test_an_installation_id_merges_into_the_token_holder(api: httpx.Client, master: httpx.Client) -> None:
    given, tok = iid(), token()
    by_id = created(api, {"deviceType": "android", "installationId": given})
    by_token = created(api, {"deviceType": "android", "deviceToken": tok})
    response = post(api, {"deviceType": "android", "deviceToken": tok, "installationId": given, "appName": "m"})
    assert response.status_code == 200, response.text
    # Parse's default merge priority: the row holding the token survives, the other is deleted.
    found = by(master, {"$or": [{"deviceToken": tok}, {"installationId": given.lower()}]})
    assert [(o["objectId"], o["installationId"], o["deviceToken"], o["appName"]) for o in found] == [
        (by_token, given.lower(), tok, "m")]
    assert_error(api.get(f"/installations/{by_id}"), 404, 101, "Object not found.")


def test_a_token_moves_to_the_installation_that_claims_it(api: httpx.Client, master: httpx.Client) -> None:
    id5, id6, tok5, tok6 = iid(), iid(), token(), token()
    created(api, {"deviceType": "android", "deviceToken": tok5, "installationId": id5})
    six = created(api, {"deviceType": "android", "deviceToken": tok6, "installationId": id6})
    assert post(api, {"deviceType": "android", "deviceToken": tok5, "installationId": id6}).status_code == 200
    found = by(master, {"$or": [{"deviceToken": tok5}, {"installationId": {"$in": [id5.lower(), id6.lower()]}}]})
    assert [(o["objectId"], o["deviceToken"]) for o in found] == [(six, tok5)]
    # The token now names an installation with an id: a client whose header names another one
    # (and whose body names none) cannot tell which it means.
    assert_error(post(api, {"deviceType": "android", "deviceToken": tok5}, **{"X-Parse-Installation-Id": iid()}),
                 400, 132, "Must specify installationId when deviceToken matches multiple Installation objects")
    # Without any installationId the single holder is updated.
    assert post(api, {"deviceType": "android", "deviceToken": tok5, "appName": "z"}).status_code == 200
    assert by(master, {"deviceToken": tok5})[0]["appName"] == "z"


def test_an_update_by_object_id_leaves_other_token_holders(api: httpx.Client, master: httpx.Client) -> None:
    tok = token()
    holder = created(api, {"deviceType": "android", "deviceToken": tok, "installationId": iid()})
    other = created(api, {"deviceType": "android", "installationId": iid()})
    response = api.put(f"/installations/{other}", json={"deviceToken": tok})
    assert response.status_code == 200, response.text
    # Parse Server cannot tell which to keep here, so both keep the token.
    assert sorted(o["objectId"] for o in by(master, {"deviceToken": tok})) == sorted([holder, other])


def test_the_installation_header(api: httpx.Client, master: httpx.Client) -> None:
    given = iid()
    object_id = created(api, {"deviceType": "ios", "installationId": given})
    # A client's X-Parse-Installation-Id finds its installation when the body names none.
    response = post(api, {"appVersion": "9"}, **{"X-Parse-Installation-Id": given})
    assert response.status_code == 200, response.text
    assert api.get(f"/installations/{object_id}").json()["appVersion"] == "9"
    # The header alone is enough to create one; Parse Server does not store it as installationId.
    header_only = created(api, {"deviceType": "ios"}, **{"X-Parse-Installation-Id": iid()})
    assert "installationId" not in api.get(f"/installations/{header_only}").json()
    # The master key's header is not used to match (nor is deviceType asked for then: Parse Server
    # has nothing to look up, and creates).
    response = post(master, {"appVersion": "10"}, **{"X-Parse-Installation-Id": given})
    assert response.status_code == 201, response.text
    assert response.json()["objectId"] != object_id


def test_acls_apply_to_installation_writes(api: httpx.Client, master: httpx.Client) -> None:
    object_id = created(api, {"deviceType": "ios", "installationId": iid(), "ACL": {}})
    assert_error(api.get(f"/installations/{object_id}"), 404, 101, "Object not found.")
    assert_error(api.put(f"/installations/{object_id}", json={"badge": 1}), 404, 101, "Object not found.")
    assert master.get(f"/installations/{object_id}").status_code == 200


def test_sessions_carry_the_installation_id(server: Server, master: httpx.Client) -> None:
    name, device, other = "inst_" + secrets.token_hex(4), iid(), iid()
    with server.client(**{"X-Parse-Installation-Id": device}) as on_device:
        response = on_device.post("/users", json={"username": name, "password": "pw"})
        assert response.status_code == 201, response.text
        user_id, first = response.json()["objectId"], response.json()["sessionToken"]
        second = on_device.get("/login", params={"username": name, "password": "pw"}).json()["sessionToken"]
    with server.client(**{"X-Parse-Installation-Id": other}) as elsewhere:
        third = elsewhere.get("/login", params={"username": name, "password": "pw"}).json()["sessionToken"]
    response = master.get("/classes/_Session", params={"where": _json(
        {"user": {"__type": "Pointer", "className": "_User", "objectId": user_id}})})
    sessions = {s["sessionToken"]: s.get("installationId") for s in response.json()["results"]}
    # A new session of the user on the same installation ends the older one (the header is kept as sent).
    assert sessions == {second: device, third: other}
    assert first not in sessions


def test_clients_may_not_query_installations_through_subqueries(api: httpx.Client) -> None:
    created(api, {"deviceType": "web", "installationId": iid(), "deviceToken": token()})
    selects = {"$select": {"query": {"className": "_Installation", "where": {}}, "key": "deviceToken"}}
    assert_error(api.get("/classes/_User", params={"where": _json({"username": selects})}), 400, 119,
                 "Permission denied")
    in_query = {"$inQuery": {"className": "_Installation", "where": {}}}
    assert_error(api.get("/classes/_User", params={"where": _json({"objectId": in_query})}), 400, 119,
                 "Permission denied")


INSTALLATION_CLOUD = textwrap.dedent('''
    from bastion import cloud


    @cloud.before_save(cloud.Installation)
    def stamp(request):
        request.object.set("sawOriginal", request.original is not None)


    @cloud.define("saveTwice")
    async def save_twice(request):
        given = request.params["installationId"]
        first = cloud.Installation({"deviceType": "ios", "installationId": given})
        await first.save(use_master_key=True)
        second = cloud.Installation({"installationId": given.lower(), "appName": "again"})
        await second.save(use_master_key=True)
        try:
            await cloud.Installation({"deviceType": "ios"}).save(use_master_key=True)
            missing = None
        except cloud.Error as exc:
            missing = exc.code
        return {"first": first.id, "second": second.id, "missing": missing}
''')


@pytest.fixture(scope="module")
def cloud_server(server: Server, own_server: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cloud_file = tmp_path_factory.mktemp("instcloud") / "main.py"
    cloud_file.write_text(INSTALLATION_CLOUD)
    with running_server(server.backend, ["--cloud", str(cloud_file)]) as srv:
        yield srv


def test_cloud_code_saves_installations_by_the_same_rules(cloud_server: Server) -> None:
    given = iid()
    with cloud_server.client() as api, cloud_server.client(master=True) as master:
        response = api.post("/functions/saveTwice", json={"installationId": given})
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert result["first"] == result["second"] and result["missing"] == 135
        [obj] = by(master, {"installationId": given.lower()})
        # The second save matched the first installation, so its trigger ran as an update.
        assert obj["appName"] == "again" and obj["sawOriginal"] is True
        # A REST create that becomes an update is one for triggers too.
        other = iid()
        object_id = created(api, {"deviceType": "web", "installationId": other})
        assert api.get(f"/installations/{object_id}").json()["sawOriginal"] is False
        assert post(api, {"installationId": other, "badge": 1}).status_code == 200
        assert api.get(f"/installations/{object_id}").json()["sawOriginal"] is True
