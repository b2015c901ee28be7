"""REST update operators (``Increment``, ``Add``, ``AddUnique``, ``Remove``, relation operations,
``Batch``, dotted keys) as the storage's update operations, which it applies atomically in one UPDATE."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bastion.core.codec import number_out
from bastion.core.types import FieldType, check_number, encode_date
from bastion.errors import Code, ParseError
from bastion.ports import storage as ops


@dataclass(slots=True)
class RelationChange:
    key: str
    target_class: str
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


def bad_nested_key(value: Any, deep: bool) -> bool:
    """Whether a key holding '$' or '.' appears in ``value`` (below its first level only when deep)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if "$" in key or "." in key:
                return True
            if deep and isinstance(item, (dict, list)) and bad_nested_key(item, True):
                return True
    elif isinstance(value, list):
        return any(isinstance(item, (dict, list)) and bad_nested_key(item, True) for item in value)
    return False


def check_path(column: str, path: tuple[str, ...]) -> None:
    """The keys of a dotted field name (``obj.a.b``): no empty, ``$``, quote, backslash or NUL key."""
    for part in path:
        if not part or part.startswith("$") or len(part) > 128 or any(c in part for c in "\"\\'\x00"):
            raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {column}.{'.'.join(path)}.")


def result_value(value: Any) -> Any:
    """An operation's result as the write's answer shows it."""
    if isinstance(value, float):
        return number_out(value)
    if isinstance(value, datetime):
        return encode_date(value)
    return value


def _items(value: dict[str, Any], op_name: str, max_items: int) -> tuple[Any, ...]:
    items = value.get("objects")
    if not isinstance(items, list):
        raise ParseError(Code.INVALID_JSON, "objects to add must be an array")
    if len(items) > max_items:
        raise ParseError(Code.INVALID_JSON, "too many objects in one operation")
    for item in items:
        if isinstance(item, float):
            check_number(item)
        if isinstance(item, dict) and "__op" in item:
            raise ParseError(Code.INVALID_JSON, f"{op_name} cannot nest operations")
    return tuple(items)


def field_ops(key: str, ft: FieldType, value: dict[str, Any], relations: dict[str, RelationChange],
              max_items: int) -> list[ops.UpdateOp]:
    """A field's ``{"__op": …}`` as update operations; relation operations are gathered into
    ``relations`` instead (they write join rows, not the object)."""
    name = value.get("__op")
    if name == "Increment":
        amount = value.get("amount")
        if ft.type != "Number":
            raise ParseError(Code.INCORRECT_TYPE, f"Cannot increment a field of type {ft.type}")
        return [ops.Increment(key, check_number(amount, "amount"))]
    if name in ("Add", "AddUnique", "Remove"):
        if ft.type != "Array":
            raise ParseError(Code.INCORRECT_TYPE, f"{name} requires an array field")
        items = _items(value, name, max_items)
        if name == "Remove":
            return [ops.RemoveItems(key, items)]
        return [ops.AddItems(key, items, unique=name == "AddUnique")]
    if name in ("AddRelation", "RemoveRelation"):
        _relation_op(key, ft, name, value, relations)
        return []
    if name == "Batch":
        batch = value.get("ops")
        if not isinstance(batch, list) or not batch:
            raise ParseError(Code.INVALID_JSON, "Batch requires an ops array")
        relation_ops = [sub for sub in batch
                         if isinstance(sub, dict) and sub.get("__op") in ("AddRelation", "RemoveRelation")]
        if not relation_ops:
            raise ParseError(Code.INVALID_JSON, "Batch only supports relation operations")
        # Parse Server applies a Batch's relation operations and ignores any other one in it.
        for sub in relation_ops:
            _relation_op(key, ft, sub["__op"], sub, relations)
        return []
    raise ParseError(Code.INVALID_JSON, f"bad op {str(name)[:40]}")


def _relation_op(key: str, ft: FieldType, name: str, value: dict[str, Any],
                 relations: dict[str, RelationChange]) -> None:
    if ft.type != "Relation":
        raise ParseError(Code.INCORRECT_TYPE, f"{name} requires a relation field")
    objects = value.get("objects")
    if not isinstance(objects, list):
        raise ParseError(Code.INVALID_JSON, "objects must be an array")
    change = relations.setdefault(key, RelationChange(key, ft.target_class or ""))
    # The field's type comes from the first pointer; as Parse Server, the others' classes are not
    # checked (a join row holds ids only).
    for pointer in objects:
        if (not isinstance(pointer, dict) or pointer.get("__type") != "Pointer"
                or not isinstance(pointer.get("objectId"), str) or len(pointer["objectId"]) > 120):
            raise ParseError(Code.INCORRECT_TYPE, f"{name} expects pointers to {ft.target_class}")
        (change.add if name == "AddRelation" else change.remove).append(pointer["objectId"])


def path_op(column: str, path: tuple[str, ...], value: Any) -> ops.UpdateOp:
    """A dotted key's value (``{"obj.a.b": …}``) as an operation inside an Object column."""
    check_path(column, path)
    if isinstance(value, dict) and "__op" in value:
        name = value["__op"]
        if name == "Increment":
            return ops.Increment(column, check_number(value.get("amount"), "amount"), path)
        if name == "Delete":
            return ops.SetPath(column, path, delete=True)
        raise ParseError(Code.INVALID_JSON, f"{str(name)[:40]} is not supported on a nested key")
    if isinstance(value, float):
        check_number(value)
    return ops.SetPath(column, path, value)
