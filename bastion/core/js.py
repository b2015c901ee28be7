"""Values as JavaScript spells them: Parse Server builds its messages with JavaScript's String()
and typeof, and Bastion's messages must read the same."""

from __future__ import annotations

from typing import Any


def js_string(value: Any) -> str:
    """``String(value)``: true/false/null, 100 (not 100.0), "[object Object]", arrays joined by commas."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return str(value)


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, as JSON-schema validators name it ("number", "array", …)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
