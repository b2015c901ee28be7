"""The LiveQuery wire protocol: what clients may send (Parse Server's RequestSchema, checked as its
tv4 validator checks it, with tv4's messages) and the messages the server sends.

Client operations: ``connect``, ``subscribe``, ``update``, ``unsubscribe``. Server messages:
``connected``, ``subscribed``, ``unsubscribed``, ``error`` and the events ``create``, ``enter``,
``update``, ``leave``, ``delete``. Every message is one JSON text frame.
"""

from __future__ import annotations

from typing import Any

import orjson

from bastion.core.js import json_type

# Error codes of the protocol itself (Parse Server's LiveQuery); other errors carry Parse's codes.
SCHEMA_ERROR = 1
NOT_CONNECTED = 2
UNKNOWN_OP = 3
INVALID_KEYS = 4

_STRING = {"type": "string"}
_NAMES = {"type": "array", "items": _STRING, "minItems": 1, "uniqueItems": True}
_QUERY = {
    "type": "object",
    # ``fields`` is the older SDKs' name of ``keys`` (iOS, Android); Parse Server 9 refuses it.
    "properties": {"className": _STRING, "where": {"type": "object"}, "keys": _NAMES, "fields": _NAMES,
                   "watch": _NAMES},
    "required": ["where", "className"],
    "additionalProperties": False,
}
_SUBSCRIBE = {
    "type": "object",
    "properties": {"op": None, "requestId": {"type": "number"}, "query": _QUERY, "sessionToken": _STRING},
    "required": ["op", "requestId", "query"],
    "additionalProperties": False,
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "general": {"type": "object", "properties": {"op": {"type": "string", "enum": [
        "connect", "subscribe", "unsubscribe", "update"]}}, "required": ["op"]},
    "connect": {
        "type": "object",
        "properties": {"op": None, "applicationId": _STRING, "javascriptKey": _STRING, "masterKey": _STRING,
                       "clientKey": _STRING, "windowsKey": _STRING, "restAPIKey": _STRING,
                       "sessionToken": _STRING, "installationId": _STRING},
        "required": ["op", "applicationId"],
        "additionalProperties": False,
    },
    "subscribe": _SUBSCRIBE,
    "update": _SUBSCRIBE,
    "unsubscribe": {
        "type": "object",
        "properties": {"op": None, "requestId": {"type": "number"}},
        "required": ["op", "requestId"],
        "additionalProperties": False,
    },
}


def _js(value: Any) -> str:
    return orjson.dumps(value).decode()


def schema_error(value: Any, schema: dict[str, Any] | None) -> str | None:
    """tv4's first error message for ``value`` against ``schema`` (None when it is valid): the type,
    then enum, then arrays (length, uniqueness, items), then objects (required properties in the
    schema's order, then each property in the data's order)."""
    if not isinstance(schema, dict):
        return None  # tv4 ignores a schema that is no object (RequestSchema's `op: 'connect'`)
    expected = schema.get("type")
    actual = json_type(value)
    if expected is not None and actual != expected:
        return f"Invalid type: {actual} (expected {expected})"
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        return f"No enum match for: {_js(value)}"
    if actual == "array":
        minimum = schema.get("minItems")
        if minimum is not None and len(value) < minimum:
            return f"Array is too short ({len(value)}), minimum {minimum}"
        if schema.get("uniqueItems"):
            for i in range(len(value)):
                for j in range(i + 1, len(value)):
                    if _js(value[i]) == _js(value[j]):
                        return f"Array items are not unique (indices {i} and {j})"
        items = schema.get("items")
        for item in value:
            error = schema_error(item, items)
            if error:
                return error
    if actual == "object":
        for name in schema.get("required", ()):
            if name not in value:
                return f"Missing required property: {name}"
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                error = schema_error(item, properties[key])
                if error:
                    return error
            elif schema.get("additionalProperties") is False:
                return "Additional properties not allowed"
    return None


def request_error(request: Any) -> str | None:
    """Why a decoded frame is no valid request (the general schema, then its operation's)."""
    error = schema_error(request, SCHEMAS["general"])
    if error:
        return error
    return schema_error(request, SCHEMAS[request["op"]])


# --- server messages ---------------------------------------------------------------------------


def error_message(code: int, error: str, reconnect: bool = True, request_id: Any = None) -> bytes:
    return orjson.dumps({"op": "error", "error": error, "code": code, "reconnect": reconnect,
                         "requestId": request_id})


def message(op: str, client_id: str, installation_id: str | None, request_id: Any = None) -> bytes:
    """``connected``, ``subscribed`` and ``unsubscribed``, as Parse Server's Client sends them."""
    out: dict[str, Any] = {"op": op, "clientId": client_id}
    if installation_id is not None:
        out["installationId"] = installation_id
    if request_id is not None:
        out["requestId"] = request_id
    return orjson.dumps(out)


# An event (create, enter, update, leave, delete) is ``{"op", "clientId", ["installationId"],
# "requestId", "object", ["original"]}``, built from three parts so that a fan-out encodes each
# once: the head once per event, the ident once per subscription, the tail once per event and keys.


def event_head(op: str) -> bytes:
    return b'{"op":' + orjson.dumps(op) + b","


def event_ident(client_id: str, installation_id: str | None, request_id: Any) -> bytes:
    """The middle of an event: its clientId, installationId and requestId."""
    fields: dict[str, Any] = {"clientId": client_id}
    if installation_id is not None:
        fields["installationId"] = installation_id
    fields["requestId"] = request_id
    return orjson.dumps(fields)[1:-1]


def event_tail(obj: dict[str, Any], original: dict[str, Any] | None) -> bytes:
    """The end of an event: its object and original."""
    if original is None:
        return b',"object":' + orjson.dumps(obj) + b"}"
    return b',"object":' + orjson.dumps(obj) + b',"original":' + orjson.dumps(original) + b"}"
