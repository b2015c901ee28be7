"""The one meaning of a Parse query.

``where`` JSON is parsed once (``parse.py``) into these nodes. The SQL compilers and the in-memory
matcher consume them and nothing else, so a query means the same on SQLite, PostgreSQL and in
LiveQuery. Values are held in their canonical Python form (see ``domain/codec.py``): dates as aware
datetimes, pointers as object ids, files as names, objects and arrays as JSON.

Every leaf names a ``Field``: a column, its schema type, and an optional path into an Object column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Field:
    column: str
    type: str  # the schema type of the column: String, Number, Date, Object, Array, Pointer, ...
    path: tuple[str, ...] = ()  # keys into an Object column ("a.b.c" -> column a, path (b, c))

    @property
    def is_json_path(self) -> bool:
        return bool(self.path)

    @property
    def value_type(self) -> str:
        """How values at this field compare: the column type, or ``Json`` inside an Object."""
        return "Json" if self.path else self.type


class Node:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Const(Node):
    value: bool


TRUE = Const(True)
FALSE = Const(False)


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node


# Comparison operators of Compare.
EQ, NE, LT, LTE, GT, GTE = "eq", "ne", "lt", "lte", "gt", "gte"


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """``field <op> value``. ``eq`` with None means the field is null or missing; ``ne`` None, set.

    ``ne`` also matches objects where the field is missing, as in Parse.
    """

    field: Field
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class In(Node):
    """The field's value is one of ``values`` (``$in``); for Array fields, any element is."""

    field: Field
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ArrayContains(Node):
    """An Array field holds ``value`` as one of its elements (equality against an array field)."""

    field: Field
    value: Any


@dataclass(frozen=True, slots=True)
class ContainsAll(Node):
    """An Array field holds every one of ``values`` (``$all``)."""

    field: Field
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ContainedBy(Node):
    """Every element of an Array field is one of ``values`` (``$containedBy``)."""

    field: Field
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Exists(Node):
    field: Field


@dataclass(frozen=True, slots=True)
class Regex(Node):
    field: Field
    pattern: str
    ignore_case: bool = False
    multiline: bool = False
    extended: bool = False


@dataclass(frozen=True, slots=True)
class SubQuery:
    """Objects of another class matching ``where``; access rules are added by whoever compiles it."""

    class_name: str
    where: Node
    key: Field  # the field of the subquery's class whose values are compared


@dataclass(frozen=True, slots=True)
class InSubQuery(Node):
    """``$inQuery``/``$select``: the field's value equals ``sub.key`` of some object of the subquery.

    For ``$inQuery`` the key is the subquery's objectId and the field a Pointer (or an Array holding
    pointers). ``$notInQuery``/``$dontSelect`` wrap this node in Not.
    """

    field: Field
    sub: SubQuery


@dataclass(frozen=True, slots=True)
class SubQueryExists(Node):
    """The subquery matches at least one object."""

    sub: SubQuery


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool = False


def conjoin(nodes: list[Node]) -> Node:
    """AND of nodes, folding constants so the compilers see as little as possible."""
    kept: list[Node] = []
    for node in nodes:
        if isinstance(node, Const):
            if not node.value:
                return FALSE
            continue
        if isinstance(node, And):
            kept.extend(node.children)
        else:
            kept.append(node)
    if not kept:
        return TRUE
    return kept[0] if len(kept) == 1 else And(tuple(kept))


def disjoin(nodes: list[Node]) -> Node:
    kept: list[Node] = []
    for node in nodes:
        if isinstance(node, Const):
            if node.value:
                return TRUE
            continue
        kept.append(node)
    if not kept:
        return FALSE
    return kept[0] if len(kept) == 1 else Or(tuple(kept))


def negate(node: Node) -> Node:
    if isinstance(node, Const):
        return Const(not node.value)
    if isinstance(node, Not):
        return node.child
    return Not(node)
