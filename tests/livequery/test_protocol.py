"""The LiveQuery protocol as Parse Server speaks it: connect, subscribe, update, unsubscribe, errors
(tv4's messages for malformed requests), and frames no client should send."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import Server
from tests.livequery.helpers import LQ, connected, rest, unique


async def test_connect_answers_a_client_id(server: Server) -> None:
    client = await LQ.open(server)
    answer = await client.connect(server, installationId="inst-1")
    assert answer["op"] == "connected"
    assert isinstance(answer["clientId"], str) and answer["clientId"]
    assert answer["installationId"] == "inst-1"
    await client.close()


@pytest.mark.parametrize("fields", [{"applicationId": "wrong"}, {"javascriptKey": "wrong"}])
async def test_connect_with_wrong_keys_is_refused(server: Server, fields: dict[str, str]) -> None:
    client = await LQ.open(server)
    answer = await client.connect(server, **fields)
    assert answer == {"op": "error", "error": "Key in request is not valid", "code": 4, "reconnect": True,
                      "requestId": None}
    # Not connected: a subscription is refused as Parse Server refuses it.
    await client.send({"op": "subscribe", "requestId": 1, "query": {"className": "A", "where": {}}})
    assert (await client.recv())["code"] == 2
    await client.close()


async def test_master_key_connects_without_the_javascript_key(server: Server) -> None:
    client = await LQ.open(server)
    await client.send({"op": "connect", "applicationId": server.app_id, "masterKey": server.master_key})
    assert (await client.recv())["op"] == "connected"
    await client.close()


async def test_websocket_at_root_and_mount_path_only(server: Server) -> None:
    client = await LQ.open(server, "/")
    assert (await client.connect(server))["op"] == "connected"
    await client.close()
    client = await LQ.open(server, "/parse/")
    assert (await client.connect(server))["op"] == "connected"
    await client.close()
    with pytest.raises(InvalidStatus):
        await LQ.open(server, "/elsewhere")


@pytest.mark.parametrize(("request_body", "message"), [
    ({}, "Missing required property: op"),
    ({"op": "foo"}, 'No enum match for: "foo"'),
    ({"op": 1}, "Invalid type: number (expected string)"),
    ({"op": "connect"}, "Missing required property: applicationId"),
    ({"op": "connect", "applicationId": "a", "x": 1}, "Additional properties not allowed"),
    ({"op": "subscribe", "requestId": "1", "query": {}}, "Invalid type: string (expected number)"),
    ({"op": "subscribe", "requestId": 1, "query": {"className": "A"}}, "Missing required property: where"),
    ({"op": "subscribe", "requestId": 1, "query": {"className": "A", "where": {}, "keys": []}},
     "Array is too short (0), minimum 1"),
    ({"op": "subscribe", "requestId": 1, "query": {"className": "A", "where": {}, "watch": ["a", "a"]}},
     "Array items are not unique (indices 0 and 1)"),
    ({"op": "subscribe", "requestId": 1, "query": {"className": "A", "where": []}},
     "Invalid type: array (expected object)"),
    ({"op": "unsubscribe"}, "Missing required property: requestId"),
    ([1], "Invalid type: array (expected object)"),
    (None, "Invalid type: null (expected object)"),
])
async def test_malformed_requests_get_tv4_errors(server: Server, request_body: object, message: str) -> None:
    client = await connected(server)
    await client.send(json.dumps(request_body))
    assert await client.recv() == {"op": "error", "error": message, "code": 1, "reconnect": True,
                                   "requestId": None}
    # The socket lives on.
    await client.subscribe(unique("Proto"))
    await client.close()


async def test_frames_that_are_not_json_get_an_error(server: Server) -> None:
    client = await connected(server)
    for frame in ("not json", "{", b"\xff\xfe"):
        await client.send(frame)
        answer = await client.recv()
        assert answer["op"] == "error" and answer["code"] == 1 and answer["reconnect"] is False
    await client.subscribe(unique("Proto"))
    await client.close()


async def test_a_huge_frame_is_refused(server: Server) -> None:
    client = await connected(server)
    # The server may close the connection while the client is still sending the frame: the send
    # itself can then raise. When the close frame arrived first, it says 1009 (message too big).
    with pytest.raises(ConnectionClosed) as closed:
        await client.send(json.dumps({"op": "subscribe", "requestId": 1,
                                      "query": {"className": "A", "where": {"x": "y" * (2 << 20)}}}))
        while True:
            await client.recv()
    assert closed.value.rcvd is None or closed.value.rcvd.code == 1009
    # The server still serves others.
    other = await connected(server)
    await other.close()


async def test_subscribe_update_unsubscribe(server: Server) -> None:
    class_name = unique("Proto")
    client = await connected(server)
    request_id = await client.subscribe(class_name, {"n": 1})
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json={"n": 1})
        assert (await client.event("create"))["object"]["n"] == 1
        # update: the same request id, another query; no answer but "subscribed".
        await client.send({"op": "update", "requestId": request_id,
                           "query": {"className": class_name, "where": {"n": 2}}})
        assert (await client.recv())["op"] == "subscribed"
        await http.post(f"/classes/{class_name}", json={"n": 1})
        await http.post(f"/classes/{class_name}", json={"n": 2})
        assert (await client.event("create"))["object"]["n"] == 2
        await client.send({"op": "unsubscribe", "requestId": request_id})
        answer = await client.recv()
        assert answer["op"] == "unsubscribed" and answer["requestId"] == request_id
        await http.post(f"/classes/{class_name}", json={"n": 2})
        await client.nothing()
    await client.close()


async def test_unsubscribe_errors(server: Server) -> None:
    client = await LQ.open(server)
    await client.send({"op": "unsubscribe", "requestId": 1})
    assert await client.recv() == {
        "op": "error", "code": 2, "reconnect": True, "requestId": None,
        "error": "Can not find this client, make sure you connect to server before unsubscribing"}
    answer = await client.connect(server)
    await client.send({"op": "unsubscribe", "requestId": 7})
    assert await client.recv() == {
        "op": "error", "code": 2, "reconnect": True, "requestId": None,
        "error": f"Cannot find subscription with clientId {answer['clientId']} subscriptionId 7. Make sure you "
                 "subscribe to live query server before unsubscribing."}
    await client.close()


async def test_bad_queries_are_refused_with_their_request_id(server: Server) -> None:
    client = await connected(server)
    answer = await client.subscribe(unique("Proto"), {"n": {"$regex": "(a+)+"}}, expect="error")
    assert answer["code"] == 102 and answer["requestId"] == 1 and answer["reconnect"] is False
    answer = await client.subscribe("_Installation", {}, expect="error")
    assert answer["code"] == 119
    answer = await client.subscribe("Bad-Name", {}, expect="error")
    assert answer["code"] == 103
    await client.close()


async def test_resubscribing_a_request_id_replaces_it(server: Server) -> None:
    class_name = unique("Proto")
    client = await connected(server)
    await client.send({"op": "subscribe", "requestId": 1, "query": {"className": class_name, "where": {"n": 1}}})
    assert (await client.recv())["op"] == "subscribed"
    await client.send({"op": "subscribe", "requestId": 1, "query": {"className": class_name, "where": {"n": 2}}})
    assert (await client.recv())["op"] == "subscribed"
    async with rest(server, master=True) as http:
        await http.post(f"/classes/{class_name}", json={"n": 1})
        await http.post(f"/classes/{class_name}", json={"n": 2})
    assert (await client.event("create"))["object"]["n"] == 2
    await client.nothing()
    await client.close()
