"""Analytics through POST /events/AppOpened and POST /events/:eventName, as Parse Server's
AnalyticsRouter accepts them (any client with the app's keys, the answer ``{}``), handed to cloud
code's ``@cloud.track_event`` (tests/cloud_app/analytics.py stores each as a CloudEvent row).
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import EXTERNAL
from tests.api.helpers import assert_error
from tests.conftest import Server

NOT_PARSE = pytest.mark.skipif(bool(EXTERNAL), reason="runs Bastion's Python cloud code (tests/cloud_app)")


def stored(master: httpx.Client, marker: str) -> list[dict[str, Any]]:
    """The CloudEvent rows whose dimensions carry ``marker``."""
    where = json.dumps({"dimensions.marker": marker})
    response = master.get("/classes/CloudEvent", params={"where": where})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def test_app_opened_and_custom_events_answer_empty_object(api: httpx.Client) -> None:
    for path, body in (("/events/AppOpened", {}), ("/events/AppOpened", {"at": {"__type": "Date",
                                                                                  "iso": "2026-01-02T03:04:05.006Z"}}),
                       ("/events/Search", {"dimensions": {"category": "books"}}), ("/events/Search", {})):
        response = api.post(path, json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {}


def test_any_body_is_accepted(server: Server) -> None:
    with server.client() as api:
        for content in (b"", b"[1, 2]", b'{"dimensions": "not an object", "at": 5}'):
            response = api.post("/events/Anything", content=content, headers={"Content-Type": "application/json"})
            assert response.status_code == 200, (content, response.text)
            assert response.json() == {}


def test_keys_are_required(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as stranger:
        response = stranger.post("/events/AppOpened", json={}, headers={"X-Parse-Application-Id": server.app_id})
        assert response.status_code == 403
        assert response.json() == {"error": "unauthorized"}
        response = stranger.post("/events/Search", json={}, headers={"X-Parse-Application-Id": "nope"})
        assert response.status_code == 403
    with server.client(master=True) as master:
        assert master.post("/events/Search", json={}).json() == {}


def test_invalid_session_token_is_refused(api: httpx.Client) -> None:
    response = api.post("/events/AppOpened", json={}, headers={"X-Parse-Session-Token": "r:" + "0" * 32})
    assert_error(response, 400, 209, "Invalid session token")


def test_other_methods_and_paths_are_not_served(api: httpx.Client) -> None:
    assert api.get("/events/AppOpened").status_code == 404
    assert api.post("/events", json={}).status_code == 404
    assert api.post("/events/a/b", json={}).status_code == 404


@NOT_PARSE
def test_track_event_receives_name_dimensions_at_user_and_installation(
        api: httpx.Client, master: httpx.Client, as_user: Any) -> None:
    marker = secrets.token_hex(6)
    username = "analytics_" + secrets.token_hex(4)
    signed = api.post("/users", json={"username": username, "password": "pw-" + secrets.token_hex(4)}).json()
    user = as_user(signed["sessionToken"])
    installation = "0b5e6c1e-" + secrets.token_hex(4) + "-4e3f-9c1b-6f1a2b3c4d5e"
    response = user.post("/events/Purchase", json={"dimensions": {"marker": marker, "sku": "A1"},
                                                   "at": {"__type": "Date", "iso": "2026-05-06T07:08:09.010Z"}},
                         headers={"X-Parse-Installation-Id": installation})
    assert response.status_code == 200 and response.json() == {}
    [row] = stored(master, marker)
    assert row["name"] == "Purchase"
    assert row["dimensions"] == {"marker": marker, "sku": "A1"}
    assert row["at"] == {"__type": "Date", "iso": "2026-05-06T07:08:09.010Z"}
    assert row["user"] == {"__type": "Pointer", "className": "_User", "objectId": signed["objectId"]}
    assert row["installationId"] == installation
    assert row["master"] is False
    assert row["hasParams"] == ["at", "dimensions"]


@NOT_PARSE
def test_app_opened_reaches_the_handler_for_every_event(api: httpx.Client, master: httpx.Client) -> None:
    marker = secrets.token_hex(6)
    # AppOpened has no dimensions in Parse's SDKs; this one carries the marker to be found again.
    assert api.post("/events/AppOpened", json={"at": "2026-05-06T07:08:09Z",
                                               "dimensions": {"marker": marker}}).json() == {}
    [row] = stored(master, marker)
    assert row["name"] == "AppOpened"
    assert row["at"] == {"__type": "Date", "iso": "2026-05-06T07:08:09.000Z"}
    assert "user" not in row and row.get("installationId") is None
    # The master key's events reach the handler too, marked so.
    marker = secrets.token_hex(6)
    assert master.post("/events/Search%20Books", json={"dimensions": {"marker": marker}}).json() == {}
    [row] = stored(master, marker)
    assert row["name"] == "Search Books" and row["master"] is True and "at" not in row


@NOT_PARSE
def test_a_failing_handler_still_answers_empty_object(api: httpx.Client) -> None:
    for name in ("CloudEventFails", "CloudEventRefused"):
        started = time.monotonic()
        response = api.post(f"/events/{name}", json={"dimensions": {"a": "b"}})
        assert response.status_code == 200, response.text
        assert response.json() == {}
        assert time.monotonic() - started < 5
