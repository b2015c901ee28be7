"""Values between their REST JSON form and their canonical form.

The canonical form is what storage adapters persist and what the query IR and matcher compare:
Date -> aware datetime, Pointer -> objectId, File -> name, GeoPoint -> (latitude, longitude),
Polygon -> [[lat, lng], ...], Bytes -> base64 text; String, Number, Boolean, Object and Array stay
JSON. ACLs become the ``_rperm``/``_wperm`` lists (see ``acl.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bastion.core.types import (
    FieldType,
    check_bytes,
    check_geopoint,
    check_number,
    check_polygon,
    close_polygon,
    encode_date,
    format_iso,
    parse_iso,
)
from bastion.errors import Code, ParseError

FileUrl = Callable[[str], str]

MAX_SAFE_INTEGER = 2**53


def to_canonical(ft: FieldType, value: Any) -> Any:
    """A REST value of a known field type in canonical form (the type was already checked)."""
    if value is None:
        return None
    kind = ft.type
    if kind in ("String", "Boolean", "Object", "Array"):
        return value
    if kind == "Number":
        return check_number(value)
    if kind == "Date":
        return parse_iso(value["iso"] if isinstance(value, dict) else value)
    if kind == "Pointer":
        if isinstance(value, str):
            return value
        object_id = value.get("objectId")
        if not isinstance(object_id, str) or not object_id:
            raise ParseError(Code.INVALID_POINTER, "Pointer must carry a string objectId")
        return object_id
    if kind == "File":
        return value["name"] if isinstance(value, dict) else value
    if kind == "GeoPoint":
        return check_geopoint(value)
    if kind == "Polygon":
        return close_polygon(check_polygon(value))
    if kind == "Bytes":
        return check_bytes(value)
    raise ParseError(Code.INCORRECT_TYPE, f"cannot store a value of type {kind}")


def number_out(value: float | int) -> float | int:
    """Parse's numbers are JavaScript doubles: 3.0 goes out as 3."""
    if isinstance(value, float) and value.is_integer() and abs(value) < MAX_SAFE_INTEGER:
        return int(value)
    return value


def to_rest(ft: FieldType, value: Any, file_url: FileUrl) -> Any:
    """A canonical value as REST JSON."""
    if value is None:
        return None
    kind = ft.type
    if kind in ("String", "Boolean", "Object", "Array"):
        return value
    if kind == "Number":
        return number_out(value)
    if kind == "Date":
        return encode_date(value)
    if kind == "Pointer":
        return {"__type": "Pointer", "className": ft.target_class, "objectId": value}
    if kind == "File":
        return {"__type": "File", "name": value, "url": file_url(value)}
    if kind == "GeoPoint":
        # JavaScript prints 14.0 as 14, and so does Parse Server.
        return {"__type": "GeoPoint", "latitude": number_out(value[0]), "longitude": number_out(value[1])}
    if kind == "Polygon":
        return {"__type": "Polygon", "coordinates": [[number_out(c) for c in p] for p in value]}
    if kind == "Bytes":
        return {"__type": "Bytes", "base64": value}
    return value


def value_encoder(ft: FieldType, file_url: FileUrl) -> Callable[[Any], Any] | None:
    """``to_rest`` for one field type, chosen once: None where the canonical value is already REST
    JSON (callers skip None values themselves)."""
    kind = ft.type
    if kind in ("String", "Boolean", "Object", "Array"):
        return None
    if kind == "Number":
        return number_out
    if kind == "Date":
        return encode_date
    if kind == "Pointer":
        target = ft.target_class
        return lambda value: {"__type": "Pointer", "className": target, "objectId": value}
    return lambda value: to_rest(ft, value, file_url)


def iso_or_none(value: datetime | None) -> str | None:
    return format_iso(value) if value is not None else None
