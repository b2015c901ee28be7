"""Helpers of the REST API suite (tests/api).

Every test runs against a real server per backend (``server`` in ``tests/conftest.py``) and asserts
what Parse Server 9 on PostgreSQL answers to the same request: status, error code, message and
body. Where Parse Server's answer is surprising, the test says so in a comment.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
OBJECT_ID = re.compile(r"^[A-Za-z0-9]{10}$")


def create(client: httpx.Client, class_name: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an object; its answer (objectId, createdAt and any computed values)."""
    response = client.post(f"/classes/{class_name}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def fetch(client: httpx.Client, class_name: str, object_id: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/classes/{class_name}/{object_id}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def strip_meta(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without objectId, createdAt and updatedAt."""
    return {k: v for k, v in obj.items() if k not in ("objectId", "createdAt", "updatedAt")}


def assert_error(response: httpx.Response, status: int, code: int | None, message: str | None = None) -> None:
    """A Parse error answer: ``{"code", "error"}`` (just ``{"error"}`` when code is None)."""
    assert response.status_code == status, response.text
    body = response.json()
    if code is None:
        assert "code" not in body, body
    else:
        assert body.get("code") == code, body
    if message is not None:
        assert body.get("error") == message, body


def count(client: httpx.Client, class_name: str) -> int:
    """How many objects the class holds.

    The where clause matters against Parse Server: on PostgreSQL it answers an unconstrained count
    with the master key from the planner's estimate (0 for a table never analysed).
    """
    response = client.get(f"/classes/{class_name}", params={
        "count": 1, "limit": 0, "where": '{"objectId": {"$exists": true}}'})
    assert response.status_code == 200, response.text
    return int(response.json()["count"])
