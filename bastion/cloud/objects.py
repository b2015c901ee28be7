"""``cloud.Object``: an object as cloud code sees and changes it (system_classes.py: User, Role, …).

An object keeps what the server last said of it (REST JSON) and the changes made since (REST
values or operations such as ``{"__op": "Increment"}``), exactly as the Parse SDKs do: a trigger's
changes become the body of the write, and ``get`` answers with the changes applied. Values come out
decoded (``datetime`` for dates, ``cloud.Object`` for pointers and included objects) and go in as
Python values, which are encoded back to REST JSON.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, ClassVar

from bastion.cloud._changes import apply_change, merge_relation_change
from bastion.cloud._runtime.context import object_classes_being_loaded, running_object_classes
from bastion.cloud.acl import ACL
from bastion.cloud.relation import Relation
from bastion.core.types import encode_date, parse_iso

SERVER_KEYS = frozenset({"objectId", "createdAt", "updatedAt"})
_MISSING = object()


def encode(value: Any) -> Any:
    """A Python value as REST JSON (dates, objects as pointers, ACLs, nested lists and dicts)."""
    if isinstance(value, Object):
        return value.to_pointer()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return encode_date(value)
    if isinstance(value, ACL):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


def decode(value: Any) -> Any:
    """REST JSON as Python values: dates as ``datetime``, pointers and objects as ``cloud.Object``."""
    if isinstance(value, dict):
        kind = value.get("__type")
        if kind == "Date" and isinstance(value.get("iso"), str):
            try:
                return parse_iso(value["iso"])
            except ValueError:
                return value
        if kind in ("Pointer", "Object") and isinstance(value.get("className"), str):
            data = {k: v for k, v in value.items() if k not in ("__type", "className")}
            return Object.from_json(value["className"], data)
        if kind is not None:
            return value  # GeoPoint, File, Bytes, Polygon, Relation: their REST form
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value



class Object:
    """A Parse object of any class: ``cloud.Object("GameScore", {"score": 10})``."""

    class_name: str = ""
    # The built-in subclasses (User, Role, ...) and those defined outside any load; a subclass
    # cloud code defines belongs to its registry (one server's code), see __init_subclass__.
    _subclasses: ClassVar[dict[str, type[Object]]] = {}
    _loaded_subclasses: ClassVar[bool] = False  # whether any loaded cloud code defined one (else from_json skips the lookup)

    def __init__(self, class_name: str | dict[str, Any] | None = None, attributes: dict[str, Any] | None = None, *,
                 object_id: str | None = None) -> None:
        if isinstance(class_name, dict) and attributes is None:  # User({"username": ...})
            class_name, attributes = None, class_name
        name = class_name or type(self).class_name
        if not name or not isinstance(name, str):
            raise ValueError("cloud.Object needs a class name: cloud.Object('GameScore')")
        self.class_name = name
        self._server: dict[str, Any] = {"objectId": object_id} if object_id else {}
        self._changes: dict[str, Any] = {}
        self._existed: bool | None = None
        for key, value in (attributes or {}).items():
            self.set(key, value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.class_name:
            return
        loading = object_classes_being_loaded()
        if loading is None:
            Object._subclasses[cls.class_name] = cls
        else:
            loading[cls.class_name] = cls
            Object._loaded_subclasses = True

    @classmethod
    def from_json(cls, class_name: str, data: dict[str, Any]) -> Object:
        """An object as the server answered it (REST JSON), with no pending change."""
        target = Object._subclasses.get(class_name, Object)
        if Object._loaded_subclasses:
            target = running_object_classes().get(class_name, target)
        obj = target.__new__(target)
        obj.class_name = class_name
        obj._server = {k: v for k, v in data.items() if k not in ("__type", "className")}
        obj._changes = {}
        obj._existed = None
        return obj

    @classmethod
    def pointer(cls, class_name: str, object_id: str) -> Object:
        return cls.from_json(class_name, {"objectId": object_id})

    # --- identity -------------------------------------------------------------------------------

    @property
    def id(self) -> str | None:
        return self._server.get("objectId")

    @id.setter
    def id(self, value: str | None) -> None:
        self._server["objectId"] = value

    @property
    def created_at(self) -> datetime | None:
        created: datetime | None = decode(self._date("createdAt"))
        return created

    @property
    def updated_at(self) -> datetime | None:
        updated: datetime | None = decode(self._date("updatedAt"))
        return updated

    def _date(self, key: str) -> Any:
        value = self._server.get(key)
        return {"__type": "Date", "iso": value} if isinstance(value, str) else value

    def existed(self) -> bool:
        """Whether the object was saved before the write being handled (False in a create's triggers)."""
        if self._existed is not None:
            return self._existed
        return bool(self._server.get("createdAt"))

    # --- reading --------------------------------------------------------------------------------

    def _value(self, key: str) -> Any:
        if key in ("createdAt", "updatedAt"):
            return self._date(key)
        current = self._server.get(key)
        if key in self._changes:
            return apply_change(current, self._changes[key])
        return current

    def get(self, key: str, default: Any = None) -> Any:
        value = self._value(key)
        return default if value is None else decode(value)

    def __getitem__(self, key: str) -> Any:
        value = self._value(key)
        if value is None and key not in self._server and key not in self._changes:
            raise KeyError(key)
        return decode(value)

    def __contains__(self, key: str) -> bool:
        return self._value(key) is not None

    def has(self, key: str) -> bool:
        return key in self

    def keys(self) -> list[str]:
        names = [k for k in self._server if not k.startswith("_") and self._value(k) is not None]
        names += [k for k in self._changes if k not in self._server and self._value(k) is not None]
        return names

    @property
    def acl(self) -> ACL | None:
        value = self._value("ACL")
        return ACL(value) if isinstance(value, dict) else None

    @acl.setter
    def acl(self, value: ACL | dict[str, Any] | None) -> None:
        self.set_acl(value)

    def get_acl(self) -> ACL | None:
        return self.acl

    def set_acl(self, value: ACL | dict[str, Any] | None) -> None:
        if value is None:
            self._changes["ACL"] = {"__op": "Delete"}
        else:
            self._changes["ACL"] = value.to_json() if isinstance(value, ACL) else dict(value)

    # --- changing -------------------------------------------------------------------------------

    def set(self, key: str | dict[str, Any], value: Any = _MISSING) -> Object:
        """``obj.set("score", 10)`` or ``obj.set({"score": 10, "name": "x"})``."""
        if isinstance(key, dict) and value is _MISSING:
            for name, item in key.items():
                self.set(name, item)
            return self
        if not isinstance(key, str) or not key:
            raise ValueError("a field name must be a non-empty string")
        if value is _MISSING:
            raise TypeError("set(key, value) needs a value")
        if key in SERVER_KEYS:
            raise ValueError(f"{key} is set by the server")
        if key == "ACL":
            self.set_acl(value)
        else:
            self._changes[key] = encode(value)
        return self

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(key, value)

    def unset(self, key: str) -> Object:
        self._changes[key] = {"__op": "Delete"}
        return self

    def __delitem__(self, key: str) -> None:
        self.unset(key)

    def increment(self, key: str, amount: int | float = 1) -> Object:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise TypeError("increment() needs a number")
        change = self._changes.get(key)
        if isinstance(change, dict) and change.get("__op") == "Increment":
            self._changes[key] = {"__op": "Increment", "amount": change["amount"] + amount}
        elif key in self._changes:
            self._changes[key] = apply_change(self._value(key), {"__op": "Increment", "amount": amount})
        else:
            self._changes[key] = {"__op": "Increment", "amount": amount}
        return self

    def decrement(self, key: str, amount: int | float = 1) -> Object:
        return self.increment(key, -amount)

    def _array_op(self, key: str, op: str, items: list[Any]) -> Object:
        encoded = [encode(item) for item in items]
        change = self._changes.get(key)
        if isinstance(change, dict) and change.get("__op") == op and op != "Remove":
            self._changes[key] = {"__op": op, "objects": change["objects"] + encoded}
        elif key in self._changes:
            self._changes[key] = apply_change(self._value(key), {"__op": op, "objects": encoded})
        else:
            self._changes[key] = {"__op": op, "objects": encoded}
        return self

    def add(self, key: str, item: Any) -> Object:
        return self._array_op(key, "Add", [item])

    def add_all(self, key: str, items: list[Any]) -> Object:
        return self._array_op(key, "Add", list(items))

    def add_unique(self, key: str, item: Any) -> Object:
        return self._array_op(key, "AddUnique", [item])

    def add_all_unique(self, key: str, items: list[Any]) -> Object:
        return self._array_op(key, "AddUnique", list(items))

    def remove(self, key: str, item: Any) -> Object:
        return self._array_op(key, "Remove", [item])

    def remove_all(self, key: str, items: list[Any]) -> Object:
        return self._array_op(key, "Remove", list(items))

    def dirty(self, key: str | None = None) -> bool:
        return bool(self._changes) if key is None else key in self._changes

    def dirty_keys(self) -> list[str]:
        return list(self._changes)

    def revert(self, *keys: str) -> Object:
        """Drops pending changes (of ``keys``, or all)."""
        if not keys:
            self._changes.clear()
        for key in keys:
            self._changes.pop(key, None)
        return self

    # --- REST forms -----------------------------------------------------------------------------

    def to_pointer(self) -> dict[str, Any]:
        if not self.id:
            raise ValueError(f"cannot point to an unsaved {self.class_name} object")
        return {"__type": "Pointer", "className": self.class_name, "objectId": self.id}

    def to_json(self) -> dict[str, Any]:
        """The object's REST JSON with the pending changes applied (operations resolved)."""
        data = {k: copy.deepcopy(v) for k, v in self._server.items() if not k.startswith("_")}
        for key in self._changes:
            value = self._value(key)
            if value is None:
                data.pop(key, None)
            else:
                data[key] = copy.deepcopy(value)
        return data

    def to_full_json(self) -> dict[str, Any]:
        """REST JSON of an object with its class (how functions return objects)."""
        return {**self.to_json(), "__type": "Object", "className": self.class_name}

    def changes(self) -> dict[str, Any]:
        """The pending changes as a write body (REST values and operations)."""
        return copy.deepcopy(self._changes)

    def _merge_server(self, data: dict[str, Any], clear_changes: bool = True) -> None:
        """What the server answered a write or fetch with, taken in."""
        if clear_changes:
            for key, change in self._changes.items():
                if key not in data:
                    value = apply_change(self._server.get(key), change)
                    if value is None:
                        self._server.pop(key, None)
                    else:
                        self._server[key] = value
            self._changes = {}
        self._server.update({k: v for k, v in data.items() if k not in ("__type", "className")})

    # --- relations ------------------------------------------------------------------------------

    def relation(self, key: str, target_class: str | None = None) -> Relation:
        """The relation ``key`` of this object: ``obj.relation("likes").add(post)``; its objects
        with ``await obj.relation("likes").query().find()``."""
        return Relation(self, key, target_class)

    def add_relation(self, key: str, objects: Object | list[Object]) -> Object:
        """Adds objects to the relation ``key`` when the object is saved (``AddRelation``)."""
        merge_relation_change(self._changes, key, _objects(objects), [])
        return self

    def remove_relation(self, key: str, objects: Object | list[Object]) -> Object:
        """Removes objects from the relation ``key`` when the object is saved (``RemoveRelation``)."""
        merge_relation_change(self._changes, key, [], _objects(objects))
        return self

    # --- the data API (runs in the server's pipelines; see bastion/cloud/_runtime/data.py) ---------------

    async def save(self, *, use_master_key: bool = False, session_token: str | None = None,
                   context: dict[str, Any] | None = None) -> Object:
        """Creates or updates the object with its pending changes, as a client's write would (access
        control and triggers apply); the answer, a before_save trigger's changes included, is taken
        in. A new ``cloud.User`` is signed up. Returns the object."""
        from bastion.cloud._runtime import data

        return await data.save(self, use_master_key, session_token, context)

    async def fetch(self, *, use_master_key: bool = False, session_token: str | None = None,
                    include: list[str] | str | None = None, context: dict[str, Any] | None = None) -> Object:
        """Reloads the object as stored (pending changes are dropped); ``include`` pointer fields."""
        from bastion.cloud._runtime import data

        return await data.fetch(self, use_master_key, session_token, include, context)

    async def fetch_with_include(self, keys: list[str] | str, *, use_master_key: bool = False,
                                 session_token: str | None = None) -> Object:
        return await self.fetch(use_master_key=use_master_key, session_token=session_token, include=keys)

    async def destroy(self, *, use_master_key: bool = False, session_token: str | None = None,
                      context: dict[str, Any] | None = None) -> None:
        from bastion.cloud._runtime import data

        await data.destroy(self, use_master_key, session_token, context)

    @staticmethod
    async def save_all(objects: list[Object], *, use_master_key: bool = False, session_token: str | None = None,
                       context: dict[str, Any] | None = None) -> list[Object]:
        """Saves each object in turn; the first failure stops and is raised."""
        for obj in objects:
            await obj.save(use_master_key=use_master_key, session_token=session_token, context=context)
        return list(objects)

    @staticmethod
    async def destroy_all(objects: list[Object], *, use_master_key: bool = False, session_token: str | None = None,
                          context: dict[str, Any] | None = None) -> None:
        for obj in objects:
            await obj.destroy(use_master_key=use_master_key, session_token=session_token, context=context)

    @staticmethod
    async def fetch_all(objects: list[Object], *, use_master_key: bool = False, session_token: str | None = None,
                        include: list[str] | str | None = None) -> list[Object]:
        """Reloads objects of one class with one query (101 when one of them is gone)."""
        from bastion.cloud._runtime import data

        return await data.fetch_all(objects, use_master_key, session_token, include)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Object):
            return NotImplemented
        if self.id is None or other.id is None:
            return self is other
        return self.class_name == other.class_name and self.id == other.id

    def __hash__(self) -> int:
        return hash((self.class_name, self.id)) if self.id else id(self)

    def __repr__(self) -> str:
        return f"<{self.class_name} {self.id or '(new)'}>"


def _objects(objects: Object | list[Object]) -> list[Object]:
    items = [objects] if isinstance(objects, Object) else list(objects)
    if not all(isinstance(item, Object) for item in items):
        raise TypeError("a relation holds cloud.Object instances")
    return items
