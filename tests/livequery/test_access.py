"""Who sees what, at the time of each event: ACLs (users and roles, resolved again when roles or
sessions change), class-level permissions with pointer permissions, protected fields, and _User's
secrets."""

from __future__ import annotations

import asyncio

from tests.conftest import Server
from tests.livequery.helpers import connected, rest, sign_up, unique


def acl(*readers: str) -> dict[str, dict[str, bool]]:
    return {reader: {"read": True, "write": True} for reader in readers}


async def test_acl_decides_who_gets_an_event(server: Server) -> None:
    class_name = unique("Acl")
    alice, alice_token = await sign_up(server)
    bob, bob_token = await sign_up(server)
    public = await connected(server)
    a = await connected(server, sessionToken=alice_token)
    b = await connected(server)  # the session is the subscription's own
    for client in (public, a):
        await client.subscribe(class_name)
    await b.subscribe(class_name, sessionToken=bob_token)
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json={"n": 1, "ACL": acl(alice)})
        assert (await a.event("create"))["object"]["n"] == 1
        await http.post(f"/classes/{class_name}", json={"n": 2, "ACL": acl(bob)})
        assert (await b.event("create"))["object"]["n"] == 2
        await http.post(f"/classes/{class_name}", json={"n": 3})  # no ACL: public
        for client in (public, a, b):
            assert (await client.event("create"))["object"]["n"] == 3
    for client in (public, a, b):
        await client.nothing()
        await client.close()


async def test_losing_and_gaining_access_is_leave_and_enter(server: Server) -> None:
    class_name = unique("Acl")
    alice, alice_token = await sign_up(server)
    a = await connected(server, sessionToken=alice_token)
    await a.subscribe(class_name)
    async with rest(server, master=True) as http:
        oid = (await http.post(f"/classes/{class_name}", json={"n": 1, "ACL": acl(alice)})).json()["objectId"]
        await a.event("create")
        # The same save takes the access and changes n: the leave shows the last state alice could read.
        await http.put(f"/classes/{class_name}/{oid}", json={"n": 2, "ACL": acl("someone-else")})
        event = await a.event("leave")
        assert event["object"]["n"] == 1 and event["original"]["n"] == 1
        await http.put(f"/classes/{class_name}/{oid}", json={"n": 3})
        await a.nothing()
        await http.put(f"/classes/{class_name}/{oid}", json={"n": 4, "ACL": acl(alice)})
        event = await a.event("enter")
        assert event["object"]["n"] == 4 and "original" not in event  # alice could not read it before
        await http.delete(f"/classes/{class_name}/{oid}")
        await a.event("delete")
    await a.close()


async def test_roles_grant_access_and_removal_takes_it_back(server: Server) -> None:
    class_name = unique("Acl")
    role_name = unique("Staff")
    alice, alice_token = await sign_up(server)
    pointer = {"__type": "Pointer", "className": "_User", "objectId": alice}
    async with rest(server, master=True) as http:
        answer = await http.post("/roles", json={"name": role_name, "ACL": {"*": {"read": True}},
                                                 "users": {"__op": "AddRelation", "objects": [pointer]}})
        role_id = answer.json()["objectId"]
        a = await connected(server, sessionToken=alice_token)
        await a.subscribe(class_name)
        await http.post(f"/classes/{class_name}", json={"n": 1, "ACL": acl("role:" + role_name)})
        assert (await a.event("create"))["object"]["n"] == 1
        await http.put(f"/roles/{role_id}", json={"users": {"__op": "RemoveRelation", "objects": [pointer]}})
        await http.post(f"/classes/{class_name}", json={"n": 2, "ACL": acl("role:" + role_name)})
        await a.nothing()
        await http.put(f"/roles/{role_id}", json={"users": {"__op": "AddRelation", "objects": [pointer]}})
        await http.post(f"/classes/{class_name}", json={"n": 3, "ACL": acl("role:" + role_name)})
        assert (await a.event("create"))["object"]["n"] == 3
    await a.close()


async def test_a_revoked_session_stops_private_events(server: Server) -> None:
    class_name = unique("Acl")
    alice, alice_token = await sign_up(server)
    a = await connected(server, sessionToken=alice_token)
    await a.subscribe(class_name)
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json={"n": 1, "ACL": acl(alice)})
        await a.event("create")
        async with rest(server, token=alice_token) as mine:
            assert (await mine.post("/logout")).status_code == 200
        await asyncio.sleep(0.2)
        await http.post(f"/classes/{class_name}", json={"n": 2, "ACL": acl(alice)})
        await a.nothing()
        await http.post(f"/classes/{class_name}", json={"n": 3})
        assert (await a.event("create"))["object"]["n"] == 3  # public objects still come
    await a.close()


async def test_class_level_permissions(server: Server) -> None:
    closed, pointed = unique("Clp"), unique("Clp")
    alice, alice_token = await sign_up(server)
    bob, bob_token = await sign_up(server)
    async with rest(server, master=True) as http:
        await http.post(f"/schemas/{closed}", json={"className": closed, "classLevelPermissions": {
            "find": {}, "get": {}, "count": {}, "create": {"*": True}, "update": {"*": True},
            "delete": {"*": True}, "addField": {"*": True}, "protectedFields": {}}})
        await http.post(f"/schemas/{pointed}", json={"className": pointed, "fields": {
            "owner": {"type": "Pointer", "targetClass": "_User"}}, "classLevelPermissions": {
            "find": {"pointerFields": ["owner"]}, "get": {"pointerFields": ["owner"]}, "count": {},
            "create": {"*": True}, "update": {"*": True}, "delete": {"*": True}, "addField": {"*": True},
            "protectedFields": {}}})
        public = await connected(server)
        answer = await public.subscribe(closed, expect="error")
        assert answer["code"] == 119 and answer["error"] == "Permission denied" and answer["requestId"] == 1
        master = await connected(server, masterKey=server.master_key)
        await master.subscribe(closed)
        await http.post(f"/classes/{closed}", json={"n": 1})
        await master.event("create")

        a = await connected(server, sessionToken=alice_token)
        b = await connected(server, sessionToken=bob_token)
        await a.subscribe(pointed)
        await b.subscribe(pointed)
        owner = {"__type": "Pointer", "className": "_User", "objectId": alice}
        oid = (await http.post(f"/classes/{pointed}", json={"owner": owner, "n": 1})).json()["objectId"]
        assert (await a.event("create"))["object"]["n"] == 1
        await b.nothing()
        # The owner changes: alice's events stop, bob's start.
        await http.put(f"/classes/{pointed}/{oid}", json={"owner": {**owner, "objectId": bob}, "n": 2})
        assert (await b.event("update"))["object"]["n"] == 2
        await a.nothing()
    for client in (public, master, a, b):
        await client.close()


async def test_protected_fields_are_hidden_and_not_queryable(server: Server) -> None:
    class_name = unique("Prot")
    async with rest(server, master=True) as http:
        await http.post(f"/schemas/{class_name}", json={"className": class_name, "fields": {
            "secret": {"type": "String"}, "n": {"type": "Number"}}, "classLevelPermissions": {
            "find": {"*": True}, "get": {"*": True}, "count": {"*": True}, "create": {"*": True},
            "update": {"*": True}, "delete": {"*": True}, "addField": {"*": True},
            "protectedFields": {"*": ["secret"]}}})
        public = await connected(server)
        assert (await public.subscribe(class_name, {"secret": "x"}, expect="error"))["code"] == 119
        assert (await public.subscribe(class_name, {"$or": [{"secret": "x"}]}, expect="error"))["code"] == 119
        assert (await public.subscribe(class_name, {}, watch=["secret"], expect="error"))["code"] == 119
        await public.subscribe(class_name, {})
        master = await connected(server, masterKey=server.master_key)
        await master.subscribe(class_name, {"secret": "x"})
        oid = (await http.post(f"/classes/{class_name}", json={"secret": "x", "n": 1})).json()["objectId"]
        event = await public.event("create")
        assert event["object"]["n"] == 1 and "secret" not in event["object"]
        assert (await master.event("create"))["object"]["secret"] == "x"
        await http.put(f"/classes/{class_name}/{oid}", json={"n": 2})
        event = await public.event("update")
        assert "secret" not in event["object"] and "secret" not in event["original"]
    await public.close()
    await master.close()


async def test_user_events_never_carry_secrets(server: Server) -> None:
    master = await connected(server, masterKey=server.master_key)
    await master.subscribe("_User", {"username": {"$regex": "^lqsecret"}})
    name = unique("lqsecret")
    alice, alice_token = await sign_up(server, name)
    event = await master.event("create")
    obj = event["object"]
    assert obj["objectId"] == alice and obj["username"] == name
    for secret in ("password", "sessionToken", "_hashed_password", "_email_verify_token"):
        assert secret not in obj
    # Alice watches herself: her email, no token or password.
    a = await connected(server, sessionToken=alice_token)
    await a.subscribe("_User", {"objectId": alice})
    public = await connected(server)
    await public.subscribe("_User", {"objectId": alice})
    async with rest(server, token=alice_token) as mine:
        answer = await mine.put(f"/users/{alice}", json={"nick": "al", "ACL": {"*": {"read": True},
                                                                              alice: {"read": True, "write": True}}})
        assert answer.status_code == 200, answer.text
        await mine.put(f"/users/{alice}", json={"password": "another-pw-1"})
    event = await a.event("update")
    assert event["object"]["nick"] == "al" and "email" in event["object"]
    assert "sessionToken" not in event["object"] and "password" not in event["object"]
    event = await public.event("enter")  # the ACL became public: enter, without the email
    assert event["object"]["nick"] == "al" and "email" not in event["object"]
    for client in (a, public, master):
        message = await client.event("update")  # the password change
        assert "password" not in message["object"] and "_hashed_password" not in message["object"]
        await client.close()
