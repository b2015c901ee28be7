"""Relations in a ``where``: ``$relatedTo`` and constraints on Relation fields.

Parse Server 9 rewrites both before a query reaches PostgreSQL (DatabaseController's
reduceRelationKeys and reduceInRelation): ``$relatedTo`` becomes "objectId is one of the owning
object's related ids", and a pointer, ``$in``, ``$ne`` or ``$nin`` on a Relation field becomes "objectId
is (not) one of the owners whose relation holds these ids". Here they become IR nodes that the SQL
compilers turn into membership in the ``_Join:<key>:<class>`` table, with the same answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.core.names import class_name_is_valid
from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.errors import Code, ParseError

SchemaLookup = Callable[[str], ClassSchema | None]
SubQueryOf = Callable[[Any, str], "ir.SubQuery | None"]
MAX_ID_LENGTH = 120  # the width of the join tables' id columns in Parse Server's layout


def js_truthy(value: Any) -> bool:
    """JavaScript's truthiness, which decides what Parse Server's reduction looks at."""
    if value is None or value is False or (isinstance(value, str) and not value):
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == value and value != 0  # 0 and NaN are falsy
    return True


def related_to(where: dict[str, Any], value: Any, lookup: SchemaLookup) -> ir.Node:
    """``{"$relatedTo": {"object": <pointer>, "key": <relation field>}}`` beside the other keys of ``where``."""
    # Parse Server reduces $relatedTo only when it is truthy and no $or/$and/$nor sits beside it;
    # otherwise it reaches the database as a key and is refused.
    if (not js_truthy(value) or js_truthy(where.get("$or")) or js_truthy(where.get("$and"))
            or isinstance(where.get("$nor"), list)):
        raise ParseError(Code.INVALID_KEY_NAME, "Invalid key name: $relatedTo")
    if not isinstance(value, dict) or value.get("object") is None:
        raise ParseError(Code.INVALID_QUERY, "bad $relatedTo value")  # Parse Server fails with a 500
    owner = value.get("object")
    key = value.get("key")
    if not isinstance(owner, dict) or not isinstance(key, str):
        return ir.FALSE  # no such join table: no related objects
    class_name, object_id = owner.get("className"), owner.get("objectId")
    if not isinstance(class_name, str) or not class_name_is_valid(class_name):
        return ir.FALSE
    if not isinstance(object_id, str) or len(object_id) > MAX_ID_LENGTH:
        return ir.FALSE
    schema = lookup(class_name)
    ft = schema.fields.get(key) if schema is not None else None
    if ft is None or ft.type != "Relation":
        return ir.FALSE
    return ir.RelatedTo(class_name, object_id, key)


def relation_constraint(class_name: str, key: str, value: Any, max_ids: int, subquery: SubQueryOf) -> ir.Node:
    """A constraint on Relation field ``key`` of ``class_name``, as reduceInRelation answers it.

    ``subquery`` turns the argument of ``$inQuery``/``$notInQuery`` into a SubQuery (None when its
    class does not exist): Parse Server first runs it and adds its objects to ``$in``/``$nin``.
    """
    subqueries = {op: value[op] for op in ("$inQuery", "$notInQuery") if isinstance(value, dict) and op in value}
    if not (isinstance(value, dict) and (
            js_truthy(value.get("$in")) or js_truthy(value.get("$ne")) or js_truthy(value.get("$nin"))
            or value.get("__type") == "Pointer" or subqueries)):
        return ir.FALSE  # anything else ($exists, null, a string...) leaves "objectId in []"
    # Each key yields ids (and maybe a subquery) of one membership test, negated for the $n* ones;
    # $inQuery joins $in and $notInQuery joins $nin. A pointer's __type and className are not looked at.
    tests: dict[str, tuple[list[str], list[ir.SubQuery]]] = {}
    for op, arg in value.items():
        group = {"$inQuery": "$in", "$notInQuery": "$nin"}.get(op, op)
        if group not in ("objectId", "$in", "$nin", "$ne"):
            continue
        ids, subs = tests.setdefault(group, ([], []))
        if op in subqueries:
            sub = subquery(arg, op)
            subs.extend([sub] if sub is not None else [])
        else:
            items = [{"objectId": arg}] if op == "objectId" else [arg] if op == "$ne" else arg
            ids.extend(_ids(items, op, max_ids))
    nodes: list[ir.Node] = []
    for group, (ids, subs) in tests.items():
        unique = tuple(dict.fromkeys(ids))
        # No ids: "objectId in []" matches nothing, and "objectId not in []" everything.
        node = ir.RelationHas(class_name, key, unique, subs[0] if subs else None) if unique or subs else ir.FALSE
        nodes.append(ir.negate(node) if group in ("$nin", "$ne") else node)
    return ir.conjoin(nodes)


def _ids(items: Any, op: str, max_ids: int) -> tuple[str, ...]:
    if not isinstance(items, list):
        raise ParseError(Code.INVALID_JSON, f"bad {op} value")
    if len(items) > max_ids:
        raise ParseError(Code.INVALID_QUERY, f"{op} has too many values")
    ids: dict[str, None] = {}
    for item in items:
        object_id = item.get("objectId") if isinstance(item, dict) else None
        if not isinstance(object_id, str):
            # Parse Server fails with a 500 on these.
            raise ParseError(Code.INVALID_QUERY, f"bad {op} value: a Relation is compared with pointers")
        if len(object_id) <= MAX_ID_LENGTH:  # longer ids are in no join table
            ids[object_id] = None
    return tuple(ids)
