"""Columns for fields whose names differ only in case, which SQLite cannot tell apart.

SQLite compares column names without regard to (ASCII) case, so ``number`` and ``Number`` cannot
both be columns of a table, while Parse (and PostgreSQL, whose quoted names keep their case) has
them as two fields. Of the fields of a class equal but for case, the least (by code point) keeps
its name as its column, as does every field without such a sibling (so every database made before
this rule reads as it did); each other one is stored in ``<name>~<case mask>``, a name no field can
have (``~`` is not allowed in field names) that differs from its siblings' in more than case. A
field equal but for case to a column every class has (``objectid``, ``CreatedAt``) always is. When
fields come or go, ``SqliteStorage`` renames the columns whose field's column changed.

The SQL compilers see only column names: queries are rewritten (``rename_fields``) before they are
compiled, and only for classes with such fields, so every other query costs nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from typing import Any

from bastion.core.query import ir
from bastion.core.schema import HIDDEN_COLUMNS, ClassSchema
from bastion.ports.storage import BASE_COLUMNS

Renames = dict[str, str]  # field name -> its column, for the fields whose column is another name
NO_RENAMES: Renames = {}

_cache: dict[tuple[str, tuple[str, ...]], Renames] = {}
_CACHE_SIZE = 512


def case_column(name: str) -> str:
    """The column of a field whose name another field already has but for case."""
    mask = sum(1 << i for i, ch in enumerate(name) if ch.isupper())
    return f"{name}~{mask:x}"


def renamed_columns(schema: ClassSchema) -> Renames:
    """The fields of ``schema`` stored in a column that is not their name (usually none)."""
    key = (schema.class_name, tuple(schema.fields))  # schemas change in place: keyed by their fields
    cached = _cache.get(key)
    if cached is not None:
        return cached
    reserved = {name.lower() for name in BASE_COLUMNS}
    reserved.update(name.lower() for name in HIDDEN_COLUMNS.get(schema.class_name, {}))
    groups: dict[str, list[str]] = {}
    for name, ft in schema.fields.items():
        if name not in BASE_COLUMNS and ft.type not in ("Relation", "ACL"):
            groups.setdefault(name.lower(), []).append(name)
    renames: Renames = {}
    for folded, names in groups.items():
        if len(names) == 1 and folded not in reserved:
            continue
        plain = None if folded in reserved else min(names)
        renames.update((name, case_column(name)) for name in names if name != plain)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = renames or NO_RENAMES
    return _cache[key]


def column_of(renames: Renames, name: str) -> str:
    return renames.get(name, name)


def rename_fields(value: Any, renames: Renames, lookup: Callable[[str], ClassSchema | None]) -> Any:
    """``value`` (an IR node, order key or a tuple of them) with each Field naming its column;
    subqueries take the columns of their own class."""
    if isinstance(value, ir.Field):
        column = renames.get(value.column)
        return replace(value, column=column) if column else value
    if isinstance(value, ir.SubQuery):
        schema = lookup(value.class_name)
        inner = renamed_columns(schema) if schema is not None else NO_RENAMES
        return replace(value, where=rename_fields(value.where, inner, lookup),
                       key=rename_fields(value.key, inner, lookup))
    if isinstance(value, tuple):
        return tuple(rename_fields(item, renames, lookup) for item in value)
    if isinstance(value, (ir.Node, ir.OrderKey, ir.DistanceOrder, ir.ScoreOrder)) and is_dataclass(value):
        changes = {f.name: rename_fields(getattr(value, f.name), renames, lookup) for f in fields(value)}
        return replace(value, **changes)
    return value


def has_subquery(node: Any) -> bool:
    """Whether a query reaches another class (whose columns may be renamed)."""
    if isinstance(node, (ir.InSubQuery, ir.SubQueryExists)):
        return True
    if isinstance(node, ir.RelationHas):
        return node.sub is not None
    if isinstance(node, (ir.And, ir.Or)):
        return any(has_subquery(child) for child in node.children)
    if isinstance(node, ir.Not):
        return has_subquery(node.child)
    return False
