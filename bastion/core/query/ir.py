"""The one meaning of a Parse query.

``where`` JSON is parsed once (``parse.py``) into these nodes. The SQL compilers and the in-memory
matcher consume them and nothing else, so a query means the same on SQLite, PostgreSQL and in
LiveQuery. Values are held in their canonical Python form (see ``core/codec.py``): dates as aware
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
class ArrayStartsWith(Node):
    """An Array field holds a string element that starts with ``prefix`` (one value of an ``$all``
    of the SDKs' ``^\\Q…\\E`` regular expressions: ``containsAllStartingWith``)."""

    field: Field
    prefix: str


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
class RelatedTo(Node):
    """``$relatedTo``: the object is in relation ``key`` of object ``owning_id`` of ``owning_class``.

    Compiles to membership in the ``_Join:<key>:<owning_class>`` table. The matcher cannot see join
    tables, so it refuses this node (LiveQuery and triggers never receive it).
    """

    owning_class: str
    owning_id: str
    key: str


@dataclass(frozen=True, slots=True)
class RelationHas(Node):
    """Equality and ``$in`` on a Relation field: the object's relation ``key`` (a field of
    ``class_name``, the queried class) holds one of ``related_ids`` or, with ``$inQuery``, one of the
    objects of ``sub`` (Parse Server's reduceInRelation).

    ``$ne``/``$nin``/``$notInQuery`` wrap this node in Not. Like RelatedTo, only SQL can evaluate it.
    """

    class_name: str
    key: str
    related_ids: tuple[str, ...]
    sub: SubQuery | None = None  # its key is the subquery's objectId


# --- geo: points are (latitude, longitude) in degrees, distances in radians on the unit sphere ----


@dataclass(frozen=True, slots=True)
class GeoNear(Node):
    """``$nearSphere`` (ordering aside, see DistanceOrder) and ``$geoWithin.$centerSphere``: the
    GeoPoint lies within ``max_distance`` radians of ``point`` (any distance when None)."""

    field: Field
    point: tuple[float, float]
    max_distance: float | None = None


@dataclass(frozen=True, slots=True)
class GeoWithinBox(Node):
    """``$within.$box``: the GeoPoint lies in the box from ``south_west`` to ``north_east`` (the
    parser orders the corners, as PostgreSQL's box does), edges included."""

    field: Field
    south_west: tuple[float, float]
    north_east: tuple[float, float]


@dataclass(frozen=True, slots=True)
class GeoWithinPolygon(Node):
    """``$geoWithin.$polygon``: the GeoPoint lies inside the polygon (vertices as (lat, lng)) or on
    its boundary, within PostgreSQL's 1e-6 tolerance (``core/geo.py``)."""

    field: Field
    vertices: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class PolygonContains(Node):
    """``$geoIntersects.$point``: the Polygon field contains ``point`` (boundary as above)."""

    field: Field
    point: tuple[float, float]


# --- full-text search ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextSearch(Node):
    """``$text.$search``: ``to_tsvector(language, field) @@ to_tsquery(language, term)`` on a String
    field, as Parse Server asks PostgreSQL (``core/text_search/`` models it for SQLite and the
    matcher). Case-insensitive and diacritic-sensitive, the only modes Parse Server accepts there."""

    field: Field
    term: str
    language: str = "english"


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: Field
    descending: bool = False


@dataclass(frozen=True, slots=True)
class DistanceOrder:
    """Nearest first from ``point``: the order of a top-level ``$nearSphere``, which replaces the
    request's ``order`` (Parse Server on PostgreSQL); objects without a point come last."""

    field: Field
    point: tuple[float, float]


@dataclass(frozen=True, slots=True)
class ScoreOrder:
    """``order=$score``: best text match first, for the query's TextSearch."""

    search: TextSearch


Order = OrderKey | DistanceOrder | ScoreOrder


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
