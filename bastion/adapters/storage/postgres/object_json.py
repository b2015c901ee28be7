"""PostgreSQL writes the REST JSON of plain objects itself.

For the common read (a class's own fields, no include, nothing for Python to change afterwards)
the statement selects each object already encoded as Parse's REST JSON, so that Python splices
text instead of decoding rows into canonical values and encoding them again. The encoding here must
stay exactly what ``domain/read.py``'s ``RecordEncoder`` produces; ``tests/contract`` compares them.

Types without a faithful SQL spelling (File URLs, Polygon, Bytes) are not covered: callers then use
the ordinary path. The ACL is built in Python from ``_rperm``/``_wperm``, selected beside the JSON.
"""

from __future__ import annotations

import orjson

from bastion.adapters.storage.sql import quote

# Longer argument lists go to nested concat_ws calls: PostgreSQL functions take at most 100.
_MAX_ARGS = 90
# to_char's pattern for a JSON string of the instant: \" is a literal double quote (an E'' literal,
# so that its backslashes mean the same whatever standard_conforming_strings says).
_ISO_JSON = "E'\\\\\"YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\\\\\"'"


def _sql_text(text: str) -> str:
    """A SQL literal of JSON text built from validated names (no NUL, quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def _key(column: str) -> str:
    return orjson.dumps(column).decode() + ":"


def _date_json(col: str) -> str:
    """The instant as a JSON string ("2026-01-02T03:04:05.678Z"); NULL when the column is."""
    # The clamp spells -infinity/infinity (what the driver stores for datetime.min/max) as the
    # driver reads them back: the first and the last moment Python has. Finite values, nearly all,
    # skip it; LEAST and GREATEST ignore NULL, so NULL must not reach them.
    clamped = (f"GREATEST(LEAST({col}, '9999-12-31 23:59:59.999999+00'::timestamptz), "
               f"'0001-01-01 00:00:00+00'::timestamptz)")
    return (f"CASE WHEN isfinite({col}) THEN to_char({col} AT TIME ZONE 'UTC', {_ISO_JSON}) "
            f"WHEN {col} IS NOT NULL THEN to_char({clamped} AT TIME ZONE 'UTC', {_ISO_JSON}) END")


def value_json(kind: str, col: str, target_class: str | None) -> str | None:
    """SQL for one column's REST JSON text (NULL when the column is), or None if not expressible."""
    if kind == "String" or kind == "Boolean":
        return f"to_json({col})::text"
    if kind == "Number":
        return f"to_json({col} + 0)::text"  # + 0 turns -0 into 0, as JavaScript prints it
    if kind in ("Object", "Array"):
        return f"NULLIF({col}, 'null'::jsonb)::text"
    if kind == "Date":
        return f"""('{{"__type":"Date","iso":' || {_date_json(col)} || '}}')"""
    if kind == "Pointer" and target_class:
        head = _sql_text('{"__type":"Pointer","className":' + orjson.dumps(target_class).decode() + ',"objectId":')
        return f"({head} || to_json({col})::text || '}}')"
    if kind == "GeoPoint":
        return (f"""('{{"__type":"GeoPoint","latitude":' || to_json(({col})[1])::text"""
                f""" || ',"longitude":' || to_json(({col})[0])::text || '}}')""")
    return None


def object_json(columns: list[tuple[str, str, str | None]], relations: list[tuple[str, str]]) -> str | None:
    """SQL building one object's REST JSON text from ``(column, kind, target class)`` entries, with
    constant Relation entries after them; None when some column has no SQL spelling here."""
    parts: list[str] = []
    for column, kind, target in columns:
        col = quote(column)
        if column in ("createdAt", "updatedAt"):
            expr = _date_json(col)
        else:
            value = value_json(kind, col, target)
            if value is None:
                return None
            expr = value
        parts.append(f"({_sql_text(_key(column))} || {expr})")  # NULL when the value is: skipped
    for name, target in relations:
        parts.append(_sql_text(_key(name) + orjson.dumps({"__type": "Relation", "className": target}).decode()))
    return "'{' || " + _joined(parts) + " || '}'"


def _joined(parts: list[str]) -> str:
    if len(parts) <= _MAX_ARGS:
        return "concat_ws(','" + "".join(", " + p for p in parts) + ")"
    chunks = [parts[i:i + _MAX_ARGS] for i in range(0, len(parts), _MAX_ARGS)]
    # An all-NULL chunk gives '' from concat_ws; NULLIF keeps it from adding a stray comma.
    return _joined([f"NULLIF({_joined(chunk)}, '')" for chunk in chunks])
