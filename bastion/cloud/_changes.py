"""A ``cloud.Object``'s pending changes, kept as the Parse SDKs keep them: REST values or operations
(``{"__op": "Increment"}``, ``Add``, ``AddRelation``, …), applied to the server's value when read and
merged when the same relation field changes again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class Pointable(Protocol):
    """What a relation holds: an object that can point to itself (a saved ``cloud.Object``)."""

    def to_pointer(self) -> dict[str, Any]: ...


def apply_change(current: Any, change: Any) -> Any:
    """The value of a field after one REST change (a value or an operation)."""
    if not (isinstance(change, dict) and "__op" in change):
        return change
    op = change["__op"]
    if op == "Delete":
        return None
    if op == "Increment":
        base = current if isinstance(current, (int, float)) and not isinstance(current, bool) else 0
        return base + change.get("amount", 0)
    items = list(change.get("objects") or [])
    existing = list(current) if isinstance(current, list) else []
    if op == "Add":
        return existing + items
    if op == "AddUnique":
        return existing + [item for item in items if item not in existing]
    if op == "Remove":
        return [item for item in existing if item not in items]
    if op in ("AddRelation", "RemoveRelation", "Batch") and current is None:
        target = relation_target(change)
        return {"__type": "Relation", "className": target} if target else None
    return current  # relation operations leave the Relation as it is


def relation_target(change: dict[str, Any]) -> str | None:
    """The class a relation operation's objects are of."""
    for op in change.get("ops") or [change]:
        for item in op.get("objects") or []:
            if isinstance(item, dict) and isinstance(name := item.get("className"), str):
                return name
    return None


def merge_relation_change(changes: dict[str, Any], key: str, add: Iterable[Pointable],
                          remove: Iterable[Pointable]) -> None:
    """Adds and removes objects in the pending ``AddRelation``/``RemoveRelation`` of ``key`` (one
    operation, or a ``Batch`` of both); an object added then removed, or the reverse, is undone."""
    adds: list[dict[str, Any]] = []
    removes: list[dict[str, Any]] = []
    change = changes.get(key)
    if isinstance(change, dict):
        for op in change.get("ops") or [change]:
            if op.get("__op") == "AddRelation":
                adds.extend(op.get("objects") or [])
            elif op.get("__op") == "RemoveRelation":
                removes.extend(op.get("objects") or [])
    elif key in changes:
        raise ValueError(f"{key} has a pending change that is not a relation operation")
    for obj in add:
        pointer = obj.to_pointer()
        removes = [p for p in removes if p != pointer]
        if pointer not in adds:
            adds.append(pointer)
    for obj in remove:
        pointer = obj.to_pointer()
        adds = [p for p in adds if p != pointer]
        if pointer not in removes:
            removes.append(pointer)
    ops = [{"__op": "AddRelation", "objects": adds}] if adds else []
    ops += [{"__op": "RemoveRelation", "objects": removes}] if removes else []
    if not ops:
        changes.pop(key, None)
    else:
        changes[key] = ops[0] if len(ops) == 1 else {"__op": "Batch", "ops": ops}
