"""Parse ``where`` JSON into the query IR: its boolean structure (``$and``, ``$or``, ``$nor``), each
field's operators handed to the module that reads them, subqueries, and the limits on its size.

field_parse.py reads one field's constraint, regex_parse.py ``$regex``, geo_parse.py, text_parse.py and
relation_parse.py their operators; this module also reads ``order``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bastion.core.names import check_class_name
from bastion.core.query import ir
from bastion.core.query.field_parse import (
    COMPARATORS,
    absent_or_not,
    array_set,
    compare,
    equals,
    exists,
    in_values,
    parse_field,
)
from bastion.core.query.geo_parse import DISTANCE_UNITS, GEO_OPERATORS, geo_constraint
from bastion.core.query.regex_parse import regex_constraint
from bastion.core.query.relation_parse import related_to, relation_constraint
from bastion.core.query.text_parse import text_constraint
from bastion.core.schema import ClassSchema
from bastion.core.types import FieldType
from bastion.errors import Code, ParseError

__all__ = [
    "FIELD_OPERATORS",
    "MODIFIERS",
    "QueryLimits",
    "SchemaLookup",
    "null_sensitive_fields",
    "parse_field",
    "parse_order",
    "parse_where",
]

SchemaLookup = Callable[[str], ClassSchema | None]

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

    # --- one field's constraint: its operators, each read by its own module ---------------------

    def constraint(self, schema: ClassSchema | None, class_name: str, key: str, value: Any, depth: int) -> ir.Node:
        field = parse_field(key, schema)
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
            node = equals(field, ft, value)
        return node

    def operator(self, schema: ClassSchema | None, field: ir.Field | None, ft: FieldType | None,
                 op: str, arg: Any, constraints: dict[str, Any], depth: int) -> ir.Node:
        if op not in FIELD_OPERATORS:
            raise ParseError(Code.INVALID_QUERY, f"bad constraint: {op[:50]}")
        if op in COMPARATORS:
            return compare(field, ft, COMPARATORS[op], arg)
        if op in ("$in", "$nin"):
            node = in_values(field, ft, op, arg, self.limits.max_in_values)
            if op == "$nin" and not arg:
                return ir.TRUE  # Parse Server drops an empty $nin
            return absent_or_not(field, node) if op == "$nin" else node
        if op == "$exists":
            return exists(field, arg)
        if op in ("$all", "$containedBy"):
            return array_set(field, ft, op, arg, self.limits.max_in_values)
        if op in GEO_OPERATORS:
            return geo_constraint(field, op, arg, constraints)
        if op == "$regex":
            return regex_constraint(field, arg, constraints.get("$options", ""), self.limits.max_regex_length)
        if op == "$text":
            return text_constraint(field, ft, arg)
        if op in ("$inQuery", "$notInQuery"):
            node = self.in_query(field, ft, op, arg, depth)
            return self.not_in_subquery(field, node, arg, depth) if op == "$notInQuery" else node
        node = self.select(field, ft, op, arg, depth)
        return self.not_in_subquery(field, node, arg.get("query"), depth) if op == "$dontSelect" else node

    # --- subqueries -----------------------------------------------------------------------------

    def not_in_subquery(self, field: ir.Field | None, node: ir.Node, sub_arg: Any, depth: int) -> ir.Node:
        """``$notInQuery``/``$dontSelect`` as Parse Server answers them: it runs the subquery first
        and then asks for ``$nin`` its results, so an empty subquery constrains nothing, and
        otherwise objects without the field do not match."""
        _schema, class_name, where = self.sub_where(sub_arg, "$notInQuery", depth)
        empty = ir.negate(ir.SubQueryExists(ir.SubQuery(class_name, where, ir.Field("objectId", "String"))))
        if _schema is None:
            return ir.TRUE
        return ir.disjoin([absent_or_not(field, node), empty])

    def sub_where(self, arg: Any, op: str, depth: int) -> tuple[ClassSchema | None, str, ir.Node]:
        if not isinstance(arg, dict):
            raise ParseError(Code.INVALID_QUERY, f"bad {op} value")
        class_name = arg.get("className")
        if not isinstance(class_name, str):
            raise ParseError(Code.INVALID_QUERY, f"bad {op} value: className is required")
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
        key_field = parse_field(arg["key"], schema)
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
    for name, descending in directions.items():
        if descending is None:
            if search is not None:
                keys.append(ir.ScoreOrder(search))
            continue
        field = parse_field(name, schema)
        if field is None:
            continue
        keys.append(ir.OrderKey(field, descending))
    return keys
