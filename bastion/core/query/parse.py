"""Parse ``where`` JSON into the query IR, validating names, operators, types and limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bastion.core.codec import to_canonical
from bastion.core.js import js_string
from bastion.core.names import DENYLISTED_KEYS, field_name_is_valid
from bastion.core.query import ir
from bastion.core.query.geo_parse import DISTANCE_UNITS, GEO_OPERATORS, geo_constraint
from bastion.core.query.regex_guard import check_regex
from bastion.core.query.relation_parse import related_to, relation_constraint
from bastion.core.query.text_parse import text_constraint
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType, infer_type, is_number, parse_iso
from bastion.errors import Code, ParseError

SchemaLookup = Callable[[str], ClassSchema | None]

COMPARATORS = {"$lt": ir.LT, "$lte": ir.LTE, "$gt": ir.GT, "$gte": ir.GTE, "$ne": ir.NE, "$eq": ir.EQ}
FIELD_OPERATORS = frozenset(
    {
        *COMPARATORS,
        "$in",
        "$nin",
        "$exists",
        "$all",
        "$containedBy",
        "$regex",
        "$options",
        "$inQuery",
        "$notInQuery",
        "$select",
        "$dontSelect",
        "$text",
        *GEO_OPERATORS,
        *DISTANCE_UNITS,
    }
)
# Operators that only modify another one ($regex, $nearSphere); alone they constrain nothing.
MODIFIERS = frozenset({"$options", *DISTANCE_UNITS})
ORDERABLE = frozenset({"String", "Number", "Date", "Json"})


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_or_breadth: int = 100
    max_depth: int = 10
    max_in_values: int = 10_000
    max_regex_length: int = 1_000
    max_keys: int = 2_000  # keys of all objects in a where (constraints and operators)
    max_items: int = 20_000  # items of all lists in a where ($in values, $or clauses, ...)


class _Parser:
    def __init__(self, lookup: SchemaLookup, limits: QueryLimits) -> None:
        self.lookup = lookup
        self.limits = limits
        self._nor = 0  # how many $nor clauses enclose the constraint being parsed
        self._unreduced = False  # a Relation constraint under $nor was met (see query())

    # --- structure ------------------------------------------------------------------------------

    def query(self, schema: ClassSchema | None, class_name: str, where: Any, depth: int) -> ir.Node:
        """The where of one query (the top one or a subquery's)."""
        saved = self._nor, self._unreduced
        self._nor, self._unreduced = 0, False
        try:
            node = self.where(schema, class_name, where, depth)
            # Parse Server does not rewrite Relation constraints under $nor: they reach PostgreSQL
            # as a column that does not exist, and the query answers nothing.
            return ir.FALSE if self._unreduced else node
        finally:
            self._nor, self._unreduced = saved

    def where(self, schema: ClassSchema | None, class_name: str, where: Any, depth: int) -> ir.Node:
        if depth > self.limits.max_depth:
            raise ParseError(Code.INVALID_QUERY, "Query is nested too deeply.")
        if where is None:
            return ir.TRUE
        if not isinstance(where, dict):
            raise ParseError(Code.INVALID_QUERY, "Invalid query, where must be an object.")
        nodes: list[ir.Node] = []
        for key, value in where.items():
            if key in ("$or", "$and", "$nor"):
                nodes.append(self.logical(schema, class_name, key, value, depth))
            elif key == "$relatedTo":
                nodes.append(related_to(where, value, self.lookup))
            elif key.startswith("$"):
                raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key[:100]}")
            else:
                nodes.append(self.constraint(schema, class_name, key, value, depth))
        return ir.conjoin(nodes)

    def logical(self, schema: ClassSchema | None, class_name: str, key: str, value: Any, depth: int) -> ir.Node:
        if not isinstance(value, list) or not value:
            raise ParseError(Code.INVALID_QUERY, f"Bad {key} format - use an array value.")
        if len(value) > self.limits.max_or_breadth:
            raise ParseError(Code.INVALID_QUERY, f"{key} has too many clauses.")
        self._nor += key == "$nor"
        try:
            children = [self.where(schema, class_name, sub, depth + 1) for sub in value]
        finally:
            self._nor -= key == "$nor"
        if key == "$and":
            return ir.conjoin(children)
        if key == "$or":
            return ir.disjoin(children)
        # Parse Server on PostgreSQL writes $nor as SQL NOT (...): a comparison on a missing field
        # is NULL there, and NOT NULL drops the object. The guards make that explicit.
        guards = [ir.Exists(f) for f in dict.fromkeys(f for child in children for f in null_sensitive_fields(child))]
        return ir.conjoin([*guards, ir.negate(ir.disjoin(children))])

    # --- one field ------------------------------------------------------------------------------

    def field(self, schema: ClassSchema | None, key: str) -> ir.Field | None:
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

    def constraint(self, schema: ClassSchema | None, class_name: str, key: str, value: Any, depth: int) -> ir.Node:
        field = self.field(schema, key)
        relation = schema.fields.get(key) if (schema and field is None) else None
        if relation is not None and relation.type == "Relation":
            self._unreduced = self._unreduced or self._nor > 0
            return relation_constraint(class_name, key, value, self.limits.max_in_values,
                                       lambda arg, op: self.relation_subquery(arg, op, depth))
        ft = schema.fields.get(field.column) if (schema and field) else None
        if isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value):
            known = [op for op in value if op in FIELD_OPERATORS and op not in MODIFIERS]
            if not known:
                # Parse Server on PostgreSQL refuses a constraint with no operator it knows (and
                # ignores unknown operators beside known ones).
                raise ParseError(Code.OPERATION_FORBIDDEN,
                                 f"This query type is not supported: {str(list(value))[:100]}")
            nodes = [self.operator(schema, field, ft, op, value[op], value, depth) for op in known]
            if "$options" in value and "$regex" not in value:
                raise ParseError(Code.INVALID_QUERY, "$options needs a $regex")
            node = ir.conjoin(nodes)
        else:
            node = self.equals(field, ft, value)
        return node

    def operator(self, schema: ClassSchema | None, field: ir.Field | None, ft: FieldType | None,
                 op: str, arg: Any, constraints: dict[str, Any], depth: int) -> ir.Node:
        if op not in FIELD_OPERATORS:
            raise ParseError(Code.INVALID_QUERY, f"bad constraint: {op[:50]}")
        if op in COMPARATORS:
            return self.compare(field, ft, COMPARATORS[op], arg)
        if op in ("$in", "$nin"):
            node = self.in_values(field, ft, op, arg)
            if op == "$nin" and not arg:
                return ir.TRUE  # Parse Server drops an empty $nin
            return self.absent_or_not(field, node) if op == "$nin" else node
        if op == "$exists":
            if not isinstance(arg, bool):
                raise ParseError(Code.INVALID_QUERY, "bad $exists, must be a boolean")
            if field is None:
                return ir.Const(not arg)
            return ir.Exists(field) if arg else ir.negate(ir.Exists(field))
        if op in ("$all", "$containedBy"):
            return self.array_set(field, ft, op, arg)
        if op in GEO_OPERATORS:
            return geo_constraint(field, op, arg, constraints)
        if op == "$regex":
            return self.regex(field, arg, constraints.get("$options", ""))
        if op == "$text":
            return text_constraint(field, ft, arg)
        if op in ("$inQuery", "$notInQuery"):
            node = self.in_query(field, ft, op, arg, depth)
            return self.not_in_subquery(field, node, arg, depth) if op == "$notInQuery" else node
        node = self.select(field, ft, op, arg, depth)
        return self.not_in_subquery(field, node, arg.get("query"), depth) if op == "$dontSelect" else node

    @staticmethod
    def absent_or_not(field: ir.Field | None, node: ir.Node) -> ir.Node:
        """Negation as SQL's NOT IN means it: an object without the field matches neither side."""
        if field is None:
            return ir.FALSE
        return ir.conjoin([ir.Exists(field), ir.negate(node)])

    def not_in_subquery(self, field: ir.Field | None, node: ir.Node, sub_arg: Any, depth: int) -> ir.Node:
        """``$notInQuery``/``$dontSelect`` as Parse Server answers them: it runs the subquery first
        and then asks for ``$nin`` its results, so an empty subquery constrains nothing, and
        otherwise objects without the field do not match."""
        _schema, class_name, where = self.sub_where(sub_arg, "$notInQuery", depth)
        empty = ir.negate(ir.SubQueryExists(ir.SubQuery(class_name, where, ir.Field("objectId", "String"))))
        if _schema is None:
            return ir.TRUE
        return ir.disjoin([self.absent_or_not(field, node), empty])

    # --- values ---------------------------------------------------------------------------------

    def value(self, field: ir.Field, ft: FieldType, raw: Any, op: str) -> tuple[bool, Any]:
        """(ok, canonical value) for comparing ``field`` with ``raw``; ok False when types differ."""
        if field.is_json_path:
            return self.json_value(raw, op)
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
            self.check_json(raw)
            return True, raw
        if not got.same_type(FieldType(kind, ft.target_class)) and not (
            got.type == kind and kind == "Pointer"
        ):
            return False, None
        return True, to_canonical(ft, raw)

    def json_value(self, raw: Any, op: str) -> tuple[bool, Any]:
        if isinstance(raw, dict) and "$relativeTime" in raw:
            raise ParseError(Code.INVALID_JSON, "$relativeTime can only be used with Date field")
        self.check_json(raw)
        return True, raw

    def check_json(self, raw: Any) -> None:
        if isinstance(raw, float) and (raw != raw or raw in (float("inf"), float("-inf"))):
            raise ParseError(Code.INVALID_JSON, "Numbers must be finite.")
        if is_number(raw) and isinstance(raw, int) and not -(2**63) <= raw < 2**63:
            raise ParseError(Code.INVALID_JSON, "Number is out of range.")

    # --- operators ------------------------------------------------------------------------------

    def equals(self, field: ir.Field | None, ft: FieldType | None, raw: Any) -> ir.Node:
        if field is None or ft is None:
            self.check_json(raw)
            return ir.Const(raw is None)
        if ft.type == "Array" and not field.is_json_path and not isinstance(raw, list):
            if raw is None:
                return ir.Compare(field, ir.EQ, None)
            self.check_json(raw)
            return ir.ArrayContains(field, raw)
        ok, value = self.value(field, ft, raw, ir.EQ)
        return ir.Compare(field, ir.EQ, value) if ok else ir.FALSE

    def compare(self, field: ir.Field | None, ft: FieldType | None, op: str, raw: Any) -> ir.Node:
        if (isinstance(raw, (dict, list)) and op in (ir.LT, ir.LTE, ir.GT, ir.GTE)
                and not (isinstance(raw, dict) and ("__type" in raw or "$relativeTime" in raw))):
            raise ParseError(Code.INVALID_QUERY, f"bad ${op} value")
        if field is None or ft is None:
            if isinstance(raw, dict) and "$relativeTime" in raw:
                relative_time(raw["$relativeTime"])
            self.check_json(raw)
            # A field the class lacks is null everywhere.
            if op == ir.EQ:
                return ir.Const(raw is None)
            if op == ir.NE:
                return ir.Const(raw is not None)
            return ir.FALSE
        if op == ir.EQ:
            return self.equals(field, ft, raw)
        if op == ir.NE:
            if ft.type == "Array" and not field.is_json_path and raw is not None and not isinstance(raw, list):
                self.check_json(raw)
                return ir.negate(ir.ArrayContains(field, raw))
            ok, value = self.value(field, ft, raw, op)
            return ir.Compare(field, ir.NE, value) if ok else ir.TRUE
        if raw is None:
            return ir.FALSE
        ok, value = self.value(field, ft, raw, op)
        if not ok or field.value_type not in ORDERABLE:
            return ir.FALSE
        if field.is_json_path and not (is_number(value) or isinstance(value, str)):
            raise ParseError(Code.INVALID_QUERY, f"bad ${op} value")
        return ir.Compare(field, op, value)

    def in_values(self, field: ir.Field | None, ft: FieldType | None, op: str, raw: Any) -> ir.Node:
        if not isinstance(raw, list):
            raise ParseError(Code.INVALID_JSON, f"bad {op} value")
        if len(raw) > self.limits.max_in_values:
            raise ParseError(Code.INVALID_QUERY, f"{op} has too many values")
        if field is None or ft is None:
            for item in raw:
                self.check_json(item)
            return ir.Const(None in raw)
        values: list[Any] = []
        for item in raw:
            if isinstance(item, (dict, list)) and not isinstance(item, dict) and ft.type != "Array":
                continue
            if ft.type == "Array" and not field.is_json_path:
                self.check_json(item)
                values.append(item)
                continue
            ok, value = self.value(field, ft, item, ir.EQ)
            if ok:
                values.append(value)
        # As SQL's IN, a null in the list matches nothing (Parse Server on PostgreSQL).
        kept = tuple(v for v in values if v is not None)
        return ir.In(field, kept) if kept else ir.FALSE

    def array_set(self, field: ir.Field | None, ft: FieldType | None, op: str, raw: Any) -> ir.Node:
        if not isinstance(raw, list):
            raise ParseError(Code.INVALID_JSON, f"bad {op} value")
        if len(raw) > self.limits.max_in_values:
            raise ParseError(Code.INVALID_QUERY, f"{op} has too many values")
        for item in raw:
            self.check_json(item)
        prefixes: list[str] | None = None
        if op == "$all" and any(_starts_with_regex(item) for item in raw):
            # As Parse Server on PostgreSQL: $all of the SDKs' startsWith expressions (^\Q…\E) asks
            # for an element starting with each prefix; it takes nothing else beside them.
            if not all(_starts_with_regex(item) for item in raw):
                raise ParseError(Code.INVALID_JSON,
                                 f"All $all values must be of regex type or none: {js_string(raw)[:200]}")
            prefixes = [_starts_with_prefix(item["$regex"]) for item in raw]
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

    def regex(self, field: ir.Field | None, pattern: Any, options: Any) -> ir.Node:
        if not isinstance(pattern, str):
            raise ParseError(Code.INVALID_QUERY, "bad $regex")
        if len(pattern) > self.limits.max_regex_length:
            raise ParseError(Code.INVALID_QUERY, "$regex is too long")
        if not isinstance(options, str) or any(ch not in "imxs" for ch in options):
            raise ParseError(Code.INVALID_QUERY, "Invalid regex options")
        pattern = quote_literal_sections(pattern)
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError):
            raise ParseError(Code.INVALID_QUERY, "Invalid regular expression") from None
        check_regex(pattern, "i" in options, "m" in options, "x" in options)  # no catastrophic backtracking
        if field is None:
            return ir.FALSE
        if field.value_type not in ("String", "Json"):
            return ir.FALSE
        return ir.Regex(field, pattern, "i" in options, "m" in options, "x" in options)

    def sub_where(self, arg: Any, op: str, depth: int) -> tuple[ClassSchema | None, str, ir.Node]:
        if not isinstance(arg, dict):
            raise ParseError(Code.INVALID_QUERY, f"bad {op} value")
        class_name = arg.get("className")
        if not isinstance(class_name, str):
            raise ParseError(Code.INVALID_QUERY, f"bad {op} value: className is required")
        from bastion.core.names import check_class_name

        check_class_name(class_name)
        schema = self.lookup(class_name)
        where = self.query(schema, class_name, arg.get("where") or {}, depth + 1)
        return schema, class_name, where

    def relation_subquery(self, arg: Any, op: str, depth: int) -> ir.SubQuery | None:
        """The objects of ``$inQuery``/``$notInQuery`` on a Relation field (None: no such class)."""
        schema, class_name, where = self.sub_where(arg, op, depth)
        return ir.SubQuery(class_name, where, ir.Field("objectId", "String")) if schema is not None else None

    def in_query(self, field: ir.Field | None, ft: FieldType | None, op: str, arg: Any, depth: int) -> ir.Node:
        schema, class_name, where = self.sub_where(arg, op, depth)
        if field is None or ft is None or schema is None:
            return ir.FALSE
        if ft.type not in ("Pointer", "Array", "Relation") or field.is_json_path:
            raise ParseError(Code.INVALID_QUERY, f"bad {op}: {field.column} is not a pointer")
        if ft.type == "Pointer" and ft.target_class != class_name:
            return ir.FALSE
        return ir.InSubQuery(field, ir.SubQuery(class_name, where, ir.Field("objectId", "String")))

    def select(self, field: ir.Field | None, ft: FieldType | None, op: str, arg: Any, depth: int) -> ir.Node:
        if not isinstance(arg, dict) or not isinstance(arg.get("key"), str) or not isinstance(arg.get("query"), dict):
            raise ParseError(Code.INVALID_QUERY, f"improper usage of {op}")
        extra = set(arg) - {"key", "query"}
        if extra:
            raise ParseError(Code.INVALID_QUERY, f"improper usage of {op}")
        schema, class_name, where = self.sub_where(arg["query"], op, depth)
        if field is None or ft is None or schema is None:
            return ir.FALSE
        key_field = self.field(schema, arg["key"])
        if key_field is None:
            return ir.FALSE
        if not _comparable(field, key_field):
            return ir.FALSE
        return ir.InSubQuery(field, ir.SubQuery(class_name, where, key_field))


def null_sensitive_fields(node: ir.Node) -> list[ir.Field]:
    """Fields whose absence makes ``node`` NULL (rather than FALSE) in SQL's three-valued logic."""
    if isinstance(node, (ir.And, ir.Or)):
        return [f for child in node.children for f in null_sensitive_fields(child)]
    if isinstance(node, ir.Compare):
        return [node.field] if node.value is not None and node.op != ir.NE else []
    if isinstance(node, (ir.In, ir.Regex, ir.GeoNear, ir.GeoWithinBox, ir.GeoWithinPolygon, ir.PolygonContains)):
        return [node.field]
    if isinstance(node, ir.TextSearch):  # to_tsvector(NULL) @@ q is NULL
        return [node.field]
    return []


def _comparable(left: ir.Field, right: ir.Field) -> bool:
    text_like = {"String", "Pointer", "File"}
    lt, rt = left.value_type, right.value_type
    if lt == "Array" or lt == "Json" or rt == "Json":
        return lt in ("Array", "Json") or rt == "Json"
    if lt in text_like and rt in text_like:
        return True
    return lt == rt


_QUOTED = re.compile(r"\\Q(.*?)(?:\\E|\Z)", re.DOTALL)


def escape_regex_literal(text: str) -> str:
    # Backslash before every character but letters, digits, "_" and spaces: a literal in Python
    # and PostgreSQL regular expressions alike (a backslash before a letter or digit is an escape).
    return "".join(ch if ch.isalnum() or ch in "_ " else "\\" + ch for ch in text)


def _starts_with_regex(item: Any) -> bool:
    """Parse Server's isStartsWithRegex: ``{"$regex": "^\\Q…\\E…"}``, as the SDKs' startsWith writes it."""
    pattern = item.get("$regex") if isinstance(item, dict) else None
    return isinstance(pattern, str) and pattern.startswith("^") and _QUOTED.search(pattern) is not None


def _starts_with_prefix(pattern: str) -> str:
    """The literal text a ``^\\Q…\\E`` expression starts with (quoted sections unquoted, the rest
    taken as written, as Parse Server's literalizeRegexPart does)."""
    return _QUOTED.sub(lambda m: m.group(1), pattern[1:])


def quote_literal_sections(pattern: str) -> str:
    """A ``$regex`` with the SDKs' ``\\Q…\\E`` literal sections read as Parse Server on PostgreSQL
    reads them (processRegexPattern): a ``^`` or else a ``$`` at the ends stays, and of the rest,
    the text from the first ``\\Q`` to a ``\\E`` that ends it (or to its end, when none does) is
    literal, the part before it read the same way; with no such section, a stray ``\\E`` and ``\\Q``
    (the first of each not after a backslash, and one at the start) are dropped."""
    if "\\Q" not in pattern and "\\E" not in pattern:
        return pattern
    if pattern.startswith("^"):
        return "^" + _literalize(pattern[1:])
    if pattern.endswith("$"):
        return _literalize(pattern[:-1]) + "$"
    return _literalize(pattern)


# JavaScript's "." (no s flag) stops at line terminators, and its "$" (no m flag) is the very end.
_QUOTED_TO_E_AT_END = re.compile(r"\\Q(?!\\E)([^\n\r\u2028\u2029]*)\\E\Z")
_QUOTED_TO_END = re.compile(r"\\Q(?!\\E)([^\n\r\u2028\u2029]*)\Z")
_STRAY_E = re.compile(r"([^\\])\\E")
_STRAY_Q = re.compile(r"([^\\])\\Q")


def _literalize(text: str) -> str:
    for section in (_QUOTED_TO_E_AT_END, _QUOTED_TO_END):
        found = section.search(text)
        if found:
            return _literalize(text[:found.start()]) + escape_regex_literal(found.group(1))
    text = _STRAY_E.sub(r"\1", text, count=1)
    text = _STRAY_Q.sub(r"\1", text, count=1)
    return text.removeprefix("\\E").removeprefix("\\Q")


_UNITS = {
    **dict.fromkeys(("yr", "yrs", "year", "years"), 365 * 86400),
    **dict.fromkeys(("mo", "mos", "month", "months"), 30 * 86400),
    **dict.fromkeys(("wk", "wks", "week", "weeks"), 7 * 86400),
    **dict.fromkeys(("d", "day", "days"), 86400),
    **dict.fromkeys(("hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
}


def relative_time(text: Any, now: datetime | None = None) -> datetime:
    """Parse's ``$relativeTime``: "in 2 days", "3 hours ago", "now"."""
    now = now or datetime.now(UTC)

    def bad(info: str) -> ParseError:
        return ParseError(Code.INVALID_JSON, f"bad $relativeTime ({str(text)[:80]}) value. {info}")

    if not isinstance(text, str) or len(text) > 200:
        raise bad("Time should be a string")
    parts = text.lower().split()
    if parts == ["now"]:
        return now
    future, past = bool(parts) and parts[0] == "in", bool(parts) and parts[-1] == "ago"
    if not future and not past:
        raise bad("Time should either start with 'in' or end with 'ago'")
    if future and past:
        raise bad("Time cannot have both 'in' and 'ago'")
    parts = parts[1:] if future else parts[:-1]
    if len(parts) % 2 != 0 or not parts:
        raise bad("Invalid time string. Dangling unit or number.")
    seconds = 0
    for number, unit in zip(parts[0::2], parts[1::2], strict=True):
        if not re.fullmatch(r"-?\d{1,9}", number):
            raise bad(f"'{number}' is not an integer.")
        if unit not in _UNITS:
            raise bad(f"Invalid interval: '{unit}'")
        seconds += int(number) * _UNITS[unit]
    try:
        delta = timedelta(seconds=seconds)
        return now + delta if future else now - delta
    except OverflowError:
        raise bad("Date is out of range.") from None


_OBJECT_ID = ir.Field("objectId", "String")


def parse_where(where: Any, schema: ClassSchema | None, class_name: str, lookup: SchemaLookup,
                limits: QueryLimits | None = None) -> ir.Node:
    """The IR of a ``where`` for ``class_name`` (whose schema may not exist yet)."""
    if type(where) is dict and len(where) == 1:
        object_id = where.get("objectId")
        if type(object_id) is str:  # a get by id, the commonest query: no parsing needed
            return ir.Compare(_OBJECT_ID, "eq", object_id)
    limits = limits or QueryLimits()
    _check_size(where, limits)
    return _Parser(lookup, limits).query(schema, class_name, where, 0)


def _check_size(where: Any, limits: QueryLimits) -> None:
    """Refuse (102) a where with more keys or list items in all than the limits allow: SQL engines
    plan a large OR in quadratic time, so width and depth limits alone do not bound the work."""
    keys = items = 0
    stack = [where]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            keys += len(value)
            stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
        elif isinstance(value, list):
            items += len(value)
            stack.extend(v for v in value if isinstance(v, (dict, list)))
        if keys > limits.max_keys or items > limits.max_items:
            raise ParseError(Code.INVALID_QUERY, "The query is too large.")


def parse_field(key: Any, schema: ClassSchema | None) -> ir.Field | None:
    """The field a key names (``obj.a.b``), validated as in a where; None when the class lacks it."""
    return _Parser(lambda _name: None, QueryLimits()).field(schema, key)


# Parse.com's names for the two dates, which Parse Server still accepts in ``order``.
_SORT_ALIASES = {"_created_at": "createdAt", "_updated_at": "updatedAt"}
_SCORE = "score"  # the key Parse Server files ``$score`` under, shared with a field named score


def parse_order(order: Any, schema: ClassSchema | None, search: ir.TextSearch | None = None) -> list[ir.Order]:
    """``order=score,-name`` as order keys; unknown fields are skipped (they are null everywhere).

    The keys are read as Parse Server reads them, into a map from name to direction: a name given
    twice keeps its first place and its last direction, and ``_created_at``/``_updated_at`` become
    ``createdAt``/``updatedAt``, taking the place of those when they are given too, else moving last.
    ``$score`` (or ``-$score``: Parse Server sorts best match first either way) orders by the rank of
    ``search``, the query's first ``$text``; without one it is skipped too."""
    if order is None or order == "":
        return []
    if not isinstance(order, str):
        raise ParseError(Code.INVALID_QUERY, "order must be a string")
    directions: dict[str, bool | None] = {}  # name -> descending; None: the $score rank
    for part in order.split(","):
        part = part.strip()
        if not part:
            continue
        if part in ("$score", "-$score"):
            directions[_SCORE] = None
        elif part.startswith("-"):
            directions[part[1:]] = True
        else:
            directions[part] = False
    for alias, name in _SORT_ALIASES.items():
        if alias in directions:
            directions[name] = directions.pop(alias)
    keys: list[ir.Order] = []
    parser = _Parser(lambda _name: None, QueryLimits())
    for name, descending in directions.items():
        if descending is None:
            if search is not None:
                keys.append(ir.ScoreOrder(search))
            continue
        field = parser.field(schema, name)
        if field is None:
            continue
        keys.append(ir.OrderKey(field, descending))
    return keys
