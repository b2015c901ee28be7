"""Holes Parse Server has had (its published advisories), each tested shut.

Class-level permission holes (a protected field used as a query oracle, pointer permissions) are in
test_clp.py; authData linking in test_auth_data.py; timing of logins in test_users.py.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from tests.api.helpers import assert_error, create


def sign_up(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    body = {"username": "sec_" + secrets.token_hex(4), "password": "pw-123", **extra}
    response = api.post("/users", json=body)
    assert response.status_code == 201, response.text
    return {**response.json(), **body}


def pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


def test_password_hashes_are_never_readable_or_queryable(api: httpx.Client, master: httpx.Client,
                                                         as_user: Any) -> None:
    user = sign_up(api)
    client = as_user(user["sessionToken"])
    for response in (client.get("/users/me"), master.get(f"/users/{user['objectId']}"),
                     api.post("/login", json={"username": user["username"], "password": "pw-123"}),
                     master.get("/classes/_User", params={"where": f'{{"objectId":"{user["objectId"]}"}}'})):
        text = response.text
        assert "_hashed_password" not in text and "$argon2" not in text and '"password"' not in text, text
    # The hash lives in a column no query may name, for any caller.
    for caller in (client, master):
        assert_error(caller.get("/classes/_User", params={"where": '{"_hashed_password": {"$exists": true}}'}),
                     400, 105)
        assert_error(caller.get("/classes/_User", params={"order": "_hashed_password"}), 400, 105)
    # "password" is a schema field that never holds the hash: a regex on it matches nothing.
    found = master.get("/classes/_User", params={"where": '{"password": {"$regex": "^\\\\$"}}'}).json()
    assert found["results"] == []


def test_regex_on_session_tokens_reveals_only_ones_own(api: httpx.Client, as_user: Any) -> None:
    alice, bob = sign_up(api), sign_up(api)
    found = as_user(bob["sessionToken"]).get("/classes/_Session", params={
        "where": '{"sessionToken": {"$regex": "^r:"}}'}).json()["results"]
    tokens = {s["sessionToken"] for s in found}
    assert bob["sessionToken"] in tokens and alice["sessionToken"] not in tokens
    assert_error(api.get("/classes/_Session", params={"where": '{"sessionToken": {"$regex": "^r:"}}'}), 400, 209)


def test_sessions_of_others_cannot_be_reached_through_pointers(api: httpx.Client, master: httpx.Client,
                                                                as_user: Any, class_name: str) -> None:
    alice, bob = sign_up(api), sign_up(api)
    alice_session = as_user(alice["sessionToken"]).get("/sessions/me").json()
    # A public object pointing at alice's session: bob includes it, and queries through it.
    doc = create(master, class_name, {"s": pointer("_Session", alice_session["objectId"])})
    bob_client = as_user(bob["sessionToken"])
    got = bob_client.get(f"/classes/{class_name}/{doc['objectId']}", params={"include": "s"}).json()
    assert "sessionToken" not in str(got)
    where = '{"s": {"$inQuery": {"className": "_Session", "where": {}}}}'
    assert bob_client.get(f"/classes/{class_name}", params={"where": where}).json()["results"] == []
    where = '{"user": {"$select": {"query": {"className": "_Session", "where": {}}, "key": "user"}}}'
    sessions = bob_client.get("/classes/_Session", params={"where": where}).json()["results"]
    assert {s["user"]["objectId"] for s in sessions} == {bob["objectId"]}
    assert alice["sessionToken"] not in str(sessions)


@pytest.mark.parametrize("name", ["_SCHEMA", "_Join:users:_Role", "_GlobalConfig", "_Hooks", "_JoinTable",
                                  "_Installation", "_PushStatus"])
def test_internal_classes_are_closed_to_clients(api: httpx.Client, as_user: Any, name: str) -> None:
    user = sign_up(api)
    for client in (api, as_user(user["sessionToken"])):
        response = client.get(f"/classes/{name}")
        assert response.status_code in (400, 403), response.text
        response = client.post(f"/classes/{name}", json={"x": 1})
        assert response.status_code in (400, 403), response.text
        where = f'{{"p": {{"$inQuery": {{"className": "{name}", "where": {{}}}}}}}}'
        response = client.get("/classes/_User", params={"where": where})
        assert response.status_code in (200, 400, 403), response.text
        if response.status_code == 200:
            assert response.json()["results"] == []


def test_roles_cannot_be_joined_or_forged_by_clients(api: httpx.Client, master: httpx.Client, as_user: Any,
                                                     class_name: str) -> None:
    user = sign_up(api)
    client = as_user(user["sessionToken"])
    name = "admins_" + secrets.token_hex(3)
    role = create(master, "_Role", {"name": name, "ACL": {"*": {"read": True}}})
    secret = create(master, class_name, {"v": 1, "ACL": {f"role:{name}": {"read": True}}})
    join = {"users": {"__op": "AddRelation", "objects": [pointer("_User", user["objectId"])]}}
    assert_error(client.put(f"/classes/_Role/{role['objectId']}", json=join), 404, 101)
    # A client-chosen objectId (the "role escalation" advisory) is refused outright.
    forged = client.post("/classes/_Role", json={"objectId": role["objectId"], "name": name + "x",
                                                 "ACL": {"*": {"read": True}}})
    assert_error(forged, 400, 105, "objectId is an invalid field name.")
    # A role of the same name is refused by the unique index.
    assert client.post("/classes/_Role", json={"name": name, "ACL": {"*": {"read": True}}}).status_code == 400
    assert_error(client.get(f"/classes/{class_name}/{secret['objectId']}"), 404, 101)


def test_redirect_class_name_for_key_reads_only_what_the_caller_may(api: httpx.Client, master: httpx.Client,
                                                                     as_user: Any, class_name: str) -> None:
    alice, bob = sign_up(api), sign_up(api)
    target = class_name + "T"
    hidden = create(master, target, {"v": "alice's", "ACL": {alice["objectId"]: {"read": True}}})
    shown = create(master, target, {"v": "public"})
    owner = create(master, class_name, {"rel": {"__op": "AddRelation", "objects": [
        pointer(target, hidden["objectId"]), pointer(target, shown["objectId"])]}})
    where = f'{{"$relatedTo": {{"object": {{"__type": "Pointer", "className": "{class_name}", ' \
            f'"objectId": "{owner["objectId"]}"}}, "key": "rel"}}}}'
    got = as_user(bob["sessionToken"]).get(f"/classes/{class_name}", params={
        "redirectClassNameForKey": "rel", "where": where}).json()["results"]
    assert [o["v"] for o in got] == ["public"]
    # Not a relation field: nothing is redirected to another class.
    create(master, class_name, {"notrel": pointer(target, hidden["objectId"])})
    got = as_user(bob["sessionToken"]).get(f"/classes/{class_name}", params={
        "redirectClassNameForKey": "notrel"}).json()["results"]
    assert all("v" not in o for o in got)


@pytest.mark.parametrize("body", [
    {"__proto__": {"isAdmin": True}},
    {"profile": {"constructor": {"prototype": {"x": 1}}}},
    {"list": [{"__proto__": {"x": 1}}]},
])
def test_prototype_keys_are_refused_in_user_bodies(api: httpx.Client, as_user: Any, body: dict[str, Any]) -> None:
    response = api.post("/users", json={"username": "p_" + secrets.token_hex(4), "password": "x", **body})
    assert response.status_code == 400 and response.json()["code"] in (105, 107), response.text
    user = sign_up(api)
    response = as_user(user["sessionToken"]).put(f"/users/{user['objectId']}", json=body)
    assert response.status_code == 400 and response.json()["code"] in (105, 107), response.text


def test_login_and_me_never_return_secrets_of_the_user(api: httpx.Client, as_user: Any) -> None:
    user = sign_up(api, email="s_" + secrets.token_hex(3) + "@example.com")
    for response in (api.post("/login", json={"username": user["username"], "password": "pw-123"}),
                     as_user(user["sessionToken"]).get("/users/me"),
                     api.get("/verifyPassword", params={"username": user["username"], "password": "pw-123"})):
        body = response.json()
        assert not any(k.startswith("_") for k in body), body
        assert "password" not in body
