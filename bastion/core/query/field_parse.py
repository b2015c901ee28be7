"""One field's constraint in a ``where``: the key as an IR field, values made canonical for its type,
and the operators on the field alone (equality, comparisons, ``$in``/``$nin``, ``$exists``, ``$all`` and
``$containedBy``)."""

from __future__ import annotations

from typing import Any

from bastion.core.codec import to_canonical
from bastion.core.js import js_string
from bastion.core.names import DENYLISTED_KEYS, field_name_is_valid
from bastion.core.query import ir
from bastion.core.query.regex_parse import starts_with_prefix, starts_with_regex
from bastion.core.query.relative_time import relative_time
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType, infer_type, is_number, parse_iso
from bastion.errors import Code, ParseError

COMPARATORS = {"$lt": ir.LT, "$lte": ir.LTE, "$gt": ir.GT, "$gte": ir.GTE, "$ne": ir.NE, "$eq": ir.EQ}
ORDERABLE = frozenset({"String", "Number", "Date", "Json"})


def parse_field(key: Any, schema: ClassSchema | None) -> ir.Field | None:
    """The field a where key names; None when the class has no such field (it is always null)."""
    if not isinstance(key, str) or len(key) > 256:
        raise ParseError(Code.INVALID_KEY_NAME, "Invalid key name.")
    head, dot, rest = key.partition(".")
    if head in ("_rperm", "_wperm"):
        raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {head}")
    if not field_name_is_valid(head) and head not in ("objectId", "createdAt", "updatedAt"):
        raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key[:100]}")
    path: tuple[str, ...] = ()
    if dot:  # "obj." names no key; "obj.__proto__" is refused in every identifier, not only in JSON
        path = tuple(rest.split("."))
        for part in path:
            if (not part or part.startswith("$") or len(part) > 128 or part in DENYLISTED_KEYS
                    or any(c in part for c in '"\\\'\x00')):
                raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key[:100]}")
    ft = schema.fields.get(head) if schema else None
    if ft is None:
        return None
    if path and ft.type != "Object":
        raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key[:100]}")
    if ft.type == "ACL":
        raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key[:100]}")
    if ft.type == "Relation":
        return None  # a relation has no column: only $relatedTo reaches it
    return ir.Field(head, ft.type, path)


def absent_or_not(field: ir.Field | None, node: ir.Node) -> ir.Node:
    """Negation as SQL's NOT IN means it: an object without the field matches neither side."""
    if field is None:
        return ir.FALSE
    return ir.conjoin([ir.Exists(field), ir.negate(node)])


def exists(field: ir.Field | None, arg: Any) -> ir.Node:
    """``$exists``: true or false."""
    if not isinstance(arg, bool):
        raise ParseError(Code.INVALID_QUERY, "bad $exists, must be a boolean")
    if field is None:
        return ir.Const(not arg)
    return ir.Exists(field) if arg else ir.negate(ir.Exists(field))


def canonical_value(field: ir.Field, ft: FieldType, raw: Any, op: str) -> tuple[bool, Any]:
    """(ok, canonical value) for comparing ``field`` with ``raw``; ok False when types differ."""
    if field.is_json_path:
        return _json_value(raw, op)
    if isinstance(raw, dict) and "$relativeTime" in raw:
        if op not in (ir.LT, ir.LTE, ir.GT, ir.GTE):
            raise ParseError(
                Code.INVALID_JSON, "$relativeTime can only be used with the $lt, $lte, $gt, and $gte operators"
            )
        if ft.type != "Date":
            raise ParseError(Code.INVALID_JSON, "$relativeTime can only be used with Date field")
        return True, relative_time(raw["$relativeTime"])
    kind = ft.type
    if kind == "Date" and isinstance(raw, str):
        return True, parse_iso(raw)
    if kind == "Pointer" and isinstance(raw, str):
        return True, raw
    if kind == "Pointer" and isinstance(raw, dict) and raw.get("__type") == "Pointer":
        if ft.target_class and raw.get("className") != ft.target_class:
            return False, None
        return True, to_canonical(ft, raw)
    if kind == "File" and isinstance(raw, str):
        return True, raw
    if isinstance(raw, dict) and "__op" in raw:
        raise ParseError(Code.INVALID_QUERY, "Cannot use an operation as a query value.")
    got = infer_type(raw)
    if got is None:
        return True, None
    if kind == "Array" or kind == "Object":
        check_json(raw)
        return True, raw
    if not got.same_type(FieldType(kind, ft.target_class)) and not (
        got.type == kind and kind == "Pointer"
    ):
        return False, None
    return True, to_canonical(ft, raw)


def _json_value(raw: Any, op: str) -> tuple[bool, Any]:
    if isinstance(raw, dict) and "$relativeTime" in raw:
        raise ParseError(Code.INVALID_JSON, "$relativeTime can only be used with Date field")
    check_json(raw)
    return True, raw


def check_json(raw: Any) -> None:
    """Refuses (107) a number JSON cannot carry: not finite, or beyond 64 bits."""
    if isinstance(raw, float) and (raw != raw or raw in (float("inf"), float("-inf"))):
        raise ParseError(Code.INVALID_JSON, "Numbers must be finite.")
    if is_number(raw) and isinstance(raw, int) and not -(2**63) <= raw < 2**63:
        raise ParseError(Code.INVALID_JSON, "Number is out of range.")


def equals(field: ir.Field | None, ft: FieldType | None, raw: Any) -> ir.Node:
    """``{"key": value}``: equality, or membership for an Array field."""
    if field is None or ft is None:
        check_json(raw)
        return ir.Const(raw is None)
    if ft.type == "Array" and not field.is_json_path and not isinstance(raw, list):
        if raw is None:
            return ir.Compare(field, ir.EQ, None)
        check_json(raw)
        return ir.ArrayContains(field, raw)
    ok, value = canonical_value(field, ft, raw, ir.EQ)
    return ir.Compare(field, ir.EQ, value) if ok else ir.FALSE


def compare(field: ir.Field | None, ft: FieldType | None, op: str, raw: Any) -> ir.Node:
    """``$lt``, ``$lte``, ``$gt``, ``$gte``, ``$ne``, ``$eq`` (``op`` is the IR's comparator)."""
    if (isinstance(raw, (dict, list)) and op in (ir.LT, ir.LTE, ir.GT, ir.GTE)
            and not (isinstance(raw, dict) and ("__type" in raw or "$relativeTime" in raw))):
        raise ParseError(Code.INVALID_QUERY, f"bad ${op} value")
    if field is None or ft is None:
        if isinstance(raw, dict) and "$relativeTime" in raw:
            relative_time(raw["$relativeTime"])
        check_json(raw)
        # A field the class lacks is null everywhere.
        if op == ir.EQ:
            return ir.Const(raw is None)
        if op == ir.NE:
            return ir.Const(raw is not None)
        return ir.FALSE
    if op == ir.EQ:
        return equals(field, ft, raw)
    if op == ir.NE:
        if ft.type == "Array" and not field.is_json_path and raw is not None and not isinstance(raw, list):
            check_json(raw)
            return ir.negate(ir.ArrayContains(field, raw))
        ok, value = canonical_value(field, ft, raw, op)
        return ir.Compare(field, ir.NE, value) if ok else ir.TRUE
    if raw is None:
        return ir.FALSE
    ok, value = canonical_value(field, ft, raw, op)
    if not ok or field.value_type not in ORDERABLE:
        return ir.FALSE
    if field.is_json_path and not (is_number(value) or isinstance(value, str)):
        raise ParseError(Code.INVALID_QUERY, f"bad ${op} value")
    return ir.Compare(field, op, value)


def in_values(field: ir.Field | None, ft: FieldType | None, op: str, raw: Any, max_values: int) -> ir.Node:
    """The values of ``$in`` (or of ``$nin``, which the caller negates)."""
    if not isinstance(raw, list):
        raise ParseError(Code.INVALID_JSON, f"bad {op} value")
    if len(raw) > max_values:
        raise ParseError(Code.INVALID_QUERY, f"{op} has too many values")
    if field is None or ft is None:
        for item in raw:
            check_json(item)
        return ir.Const(None in raw)
    values: list[Any] = []
    for item in raw:
        if isinstance(item, (dict, list)) and not isinstance(item, dict) and ft.type != "Array":
            continue
        if ft.type == "Array" and not field.is_json_path:
            check_json(item)
            values.append(item)
            continue
        ok, value = canonical_value(field, ft, item, ir.EQ)
        if ok:
            values.append(value)
    # As SQL's IN, a null in the list matches nothing (Parse Server on PostgreSQL).
    kept = tuple(v for v in values if v is not None)
    return ir.In(field, kept) if kept else ir.FALSE


def array_set(field: ir.Field | None, ft: FieldType | None, op: str, raw: Any, max_values: int) -> ir.Node:
    """``$all`` or ``$containedBy`` on an Array field."""
    if not isinstance(raw, list):
        raise ParseError(Code.INVALID_JSON, f"bad {op} value")
    if len(raw) > max_values:
        raise ParseError(Code.INVALID_QUERY, f"{op} has too many values")
    for item in raw:
        check_json(item)
    prefixes: list[str] | None = None
    if op == "$all" and any(starts_with_regex(item) for item in raw):
        # As Parse Server on PostgreSQL: $all of the SDKs' startsWith expressions (^\Q…\E) asks
        # for an element starting with each prefix; it takes nothing else beside them.
        if not all(starts_with_regex(item) for item in raw):
            raise ParseError(Code.INVALID_JSON,
                             f"All $all values must be of regex type or none: {js_string(raw)[:200]}")
        prefixes = [starts_with_prefix(item["$regex"]) for item in raw]
    if field is None or ft is None:
        # As in Parse Server on PostgreSQL, a null array matches neither.
        return ir.FALSE
    if ft.type != "Array" or field.is_json_path:
        if op == "$all":
            raise ParseError(Code.INVALID_QUERY, f"bad $all: {field.column} is not an array")
        raise ParseError(Code.INVALID_QUERY, f"bad $containedBy: {field.column} is not an array")
    if op == "$all" and not raw:
        return ir.FALSE  # Parse Server (array_contains_all) and MongoDB: an empty $all matches nothing
    if prefixes is not None:
        return ir.conjoin([ir.ArrayStartsWith(field, prefix) for prefix in prefixes])
    values = tuple(raw)
    return ir.ContainsAll(field, values) if op == "$all" else ir.ContainedBy(field, values)
