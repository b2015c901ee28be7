"""Values between Python and PostgreSQL: the U+0000 escape of text, the jsonb and json codecs set on
every connection, and the decoders of column types asyncpg does not return as Parse values.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import orjson

# --- U+0000, which PostgreSQL cannot store: an order-preserving escape ----------------------------


def encode_text(text: str) -> str:
    if "\x00" in text or "\x01" in text:
        return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01")
    return text


# What the connection's text codec does to a value, done to array elements (which bypass it).
ARRAY_ENCODERS: dict[str, Callable[[Any], Any]] = {"text": encode_text}


def decode_text(text: str) -> str:
    # Left to right, the two replacements meet the escapes exactly where encode_text put them;
    # a lone U+0001 (from another writer) is left as it is.
    if "\x01" in text:
        return text.replace("\x01\x01", "\x00").replace("\x01\x02", "\x01")
    return text


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {fn(k): _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_strings(v, fn) for v in value]
    return value


# --- decoding ------------------------------------------------------------------------------------


def _decode_date(value: datetime) -> datetime:
    # Parse keeps milliseconds; a database written elsewhere may hold microseconds.
    return value.replace(microsecond=value.microsecond // 1000 * 1000) if value.microsecond % 1000 else value


def _decode_geopoint(value: Any) -> tuple[float, float]:
    return (value[1], value[0])


def _decode_polygon(value: Any) -> list[list[float]]:
    return [[point[1], point[0]] for point in value.points]


def _decode_bytes(value: Any) -> Any:
    return value.get("base64") if isinstance(value, dict) else value


def decode_perms(value: list[str]) -> list[str]:
    return [decode_text(entry) for entry in value]


DECODERS: dict[str, Callable[[Any], Any]] = {
    "Date": _decode_date,
    "GeoPoint": _decode_geopoint,
    "Polygon": _decode_polygon,
    "Bytes": _decode_bytes,
    "Perms": decode_perms,
}


def _json_dumps(value: Any) -> bytes:
    text = orjson.dumps(value)
    if b"\\u0000" in text or b"\\u0001" in text:  # rare: escape, then serialise again
        text = orjson.dumps(_map_strings(value, encode_text))
    return text


def _json_loads(data: str) -> Any:
    value = orjson.loads(data)
    return _map_strings(value, decode_text) if "\\u0001" in data else value


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + _json_dumps(value)  # binary jsonb: a version byte, then the text


def _jsonb_decode(data: bytes) -> Any:
    value = orjson.loads(memoryview(data)[1:])
    # PostgreSQL writes U+0001 as \u0001 in JSON text; only then can an escape be inside.
    return _map_strings(value, decode_text) if data.find(b"\\u0001", 1) >= 0 else value


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode,
                              schema="pg_catalog", format="binary")
    await conn.set_type_codec("json", encoder=lambda v: _json_dumps(v).decode(), decoder=_json_loads,
                              schema="pg_catalog", format="text")
    for text_type in ("text", "varchar"):
        await conn.set_type_codec(text_type, encoder=encode_text, decoder=decode_text,
                                  schema="pg_catalog", format="text")
