"""Subscriptions grouped by query, and indexed so that one write tests only the queries it may match.

A ``QueryGroup`` is one distinct ``where`` of one class, parsed once into the shared IR and matched
once per event whatever the number of its subscribers. A ``ClassIndex`` holds a class's groups: a
group with a top-level equality on a plain column (``{"room": "A", …}``) is filed under that value,
the others are tested by every event of the class. Groups are parsed against the class's schema and
parsed again when its fields change (a constraint on a field the class does not have yet folds to a
constant until the field exists).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from bastion.core.acl import acl_to_perms
from bastion.core.codec import to_canonical
from bastion.core.query import ir
from bastion.core.query.matcher import Matcher, UnsupportedInMemory
from bastion.core.schema import ClassSchema
from bastion.core.types import parse_iso
from bastion.errors import Code, ParseError

if TYPE_CHECKING:
    from bastion.livequery.connection import Subscription

log = logging.getLogger("bastion.livequery")

Parse = Callable[[ClassSchema | None, dict[str, Any]], ir.Node]
_INDEXABLE_TYPES = frozenset({"String", "Number", "Boolean", "Pointer", "Date"})
_UNSUPPORTED = (ir.RelatedTo, ir.RelationHas, ir.InSubQuery, ir.SubQueryExists)
_MATCHER = Matcher()  # no subqueries: subscriptions with them are refused


def where_key(where: dict[str, Any]) -> str:
    """The identity of a ``where``: its JSON with sorted keys."""
    return orjson.dumps(where, option=orjson.OPT_SORT_KEYS).decode()


def value_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key equal for values the matcher calls equal (1 and 1.0, never 1 and True)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, (int, float)):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, datetime):
        return ("d", value)
    return None


def unsupported(node: ir.Node) -> str | None:
    """What in a query the in-memory matcher cannot evaluate (relations, subqueries)."""
    if isinstance(node, _UNSUPPORTED):
        return {ir.RelatedTo: "$relatedTo", ir.RelationHas: "a constraint on a Relation field",
                ir.InSubQuery: "$inQuery/$select", ir.SubQueryExists: "$inQuery/$select"}[type(node)]
    children: Iterable[ir.Node] = ()
    if isinstance(node, (ir.And, ir.Or)):
        children = node.children
    elif isinstance(node, ir.Not):
        children = (node.child,)
    for child in children:
        found = unsupported(child)
        if found:
            return found
    return None


def check_supported(node: ir.Node) -> None:
    found = unsupported(node)
    if found:
        raise ParseError(Code.INVALID_QUERY, f"LiveQuery cannot evaluate {found}.")


def canonical(schema: ClassSchema | None, obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """A REST object (with its ACL) as the canonical record the matcher reads."""
    if obj is None:
        return None
    fields = schema.fields if schema is not None else {}
    record: dict[str, Any] = {"_rperm": None, "_wperm": None}
    for key, value in obj.items():
        if key == "ACL":
            if isinstance(value, dict):
                try:
                    record["_rperm"], record["_wperm"] = acl_to_perms(value)
                except ParseError:
                    record["_rperm"] = record["_wperm"] = []
            continue
        if key in ("createdAt", "updatedAt"):
            try:
                record[key] = parse_iso(value) if isinstance(value, str) else None
            except (ParseError, ValueError):
                record[key] = None
            continue
        ft = fields.get(key)
        if ft is None or ft.type == "Relation":
            record[key] = value
            continue
        try:
            record[key] = to_canonical(ft, value)
        except (ParseError, ValueError, TypeError, KeyError):
            record[key] = value
    return record


class QueryGroup:
    """The subscribers of one ``where`` of one class."""

    __slots__ = ("class_name", "key", "where", "node", "op", "index_key", "subs")

    def __init__(self, class_name: str, key: str, where: dict[str, Any]) -> None:
        self.class_name = class_name
        self.key = key
        self.where = where
        self.node: ir.Node = ir.FALSE
        # As Parse Server: a query of exactly one objectId is a get (its CLP), anything else a find.
        self.op = "get" if len(where) == 1 and isinstance(where.get("objectId"), str) else "find"
        self.index_key: tuple[str, tuple[str, Any]] | None = None
        self.subs: dict[tuple[int, Any], Subscription] = {}

    def parse(self, parse: Parse, schema: ClassSchema | None) -> None:
        try:
            node = parse(schema, self.where)
            check_supported(node)
        except ParseError as exc:
            log.warning("LiveQuery query on %s no longer parses (%s): it matches nothing", self.class_name,
                        exc.message)
            node = ir.FALSE
        self.node = node
        self.index_key = _equality(node)

    def matches(self, record: dict[str, Any] | None) -> bool:
        if record is None:
            return False
        try:
            return _MATCHER.matches(self.node, record)
        except (UnsupportedInMemory, NotImplementedError):
            return False
        except Exception:  # noqa: BLE001 - one odd value must not stop the fan-out
            log.exception("LiveQuery matching failed on %s", self.class_name)
            return False


def _equality(node: ir.Node) -> tuple[str, tuple[str, Any]] | None:
    leaves = node.children if isinstance(node, ir.And) else (node,)
    for leaf in leaves:
        if (isinstance(leaf, ir.Compare) and leaf.op == ir.EQ and not leaf.field.path
                and leaf.field.type in _INDEXABLE_TYPES and leaf.value is not None):
            key = value_key(leaf.value)
            if key is not None:
                return leaf.field.column, key
    return None


class ClassIndex:
    """A class's query groups, by equality value or to scan."""

    def __init__(self, class_name: str) -> None:
        self.class_name = class_name
        self.groups: dict[str, QueryGroup] = {}
        self.scan: set[QueryGroup] = set()
        self.by_value: dict[str, dict[tuple[str, Any], set[QueryGroup]]] = {}
        self.schema: ClassSchema | None = None
        self.fields: dict[str, Any] | None = None

    def __len__(self) -> int:
        return len(self.groups)

    def _file(self, group: QueryGroup) -> None:
        if group.index_key is None:
            self.scan.add(group)
            return
        column, key = group.index_key
        self.by_value.setdefault(column, {}).setdefault(key, set()).add(group)

    def _unfile(self, group: QueryGroup) -> None:
        if group.index_key is None:
            self.scan.discard(group)
            return
        column, key = group.index_key
        values = self.by_value.get(column)
        if values is None:
            return
        bucket = values.get(key)
        if bucket is not None:
            bucket.discard(group)
            if not bucket:
                del values[key]
        if not values:
            del self.by_value[column]

    def group(self, where: dict[str, Any], parse: Parse, schema: ClassSchema | None) -> QueryGroup:
        """The group of ``where``, created (parsed and filed) when new."""
        key = where_key(where)
        group = self.groups.get(key)
        if group is None:
            group = QueryGroup(self.class_name, key, where)
            self.sync_schema(parse, schema)
            group.parse(parse, self.schema)
            self.groups[key] = group
            self._file(group)
        return group

    def drop_if_empty(self, group: QueryGroup) -> None:
        if not group.subs and self.groups.get(group.key) is group:
            del self.groups[group.key]
            self._unfile(group)

    def sync_schema(self, parse: Parse, schema: ClassSchema | None) -> None:
        """Parse the groups again when the class's fields changed since they were parsed."""
        if schema is self.schema and schema is not None:
            return
        fields = dict(schema.fields) if schema is not None else None
        changed = fields != self.fields
        self.schema, self.fields = schema, fields
        if not changed:
            return
        self.scan.clear()
        self.by_value.clear()
        for group in self.groups.values():
            group.parse(parse, schema)
            self._file(group)

    def candidates(self, *records: dict[str, Any] | None) -> set[QueryGroup]:
        """The groups that may match any of ``records``: the scanned ones and those filed under one
        of the records' values."""
        found = set(self.scan)
        for column, values in self.by_value.items():
            for record in records:
                if record is None:
                    continue
                key = value_key(record.get(column))
                if key is not None:
                    bucket = values.get(key)
                    if bucket:
                        found |= bucket
        return found
