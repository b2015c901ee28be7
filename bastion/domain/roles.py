"""Roles (``_Role``): which role names a user holds, inheritance included, and the rules of role writes.

A user holds the roles whose ``users`` relation contains them, and every role whose ``roles``
relation contains a role they hold (Parse's inheritance: members of a child role get the parent's
access). Resolved with the master key, once per user and cached; any role write clears the cache.
Parse Server validates nothing else about roles on the server but the uniqueness of their names.
"""

from __future__ import annotations

import time
from typing import Any

from bastion.core.query.parse import parse_where
from bastion.core.system_classes import ROLE, USER
from bastion.domain.schema_registry import SchemaRegistry
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

MAX_ROLE_DEPTH = 50  # inheritance levels followed; deeper chains are cut, never looped over


class Roles:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, cache_ttl: float = 5.0) -> None:
        self.storage = storage
        self.schemas = schemas
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def names_for(self, user_id: str) -> list[str]:
        cached = self._cache.get(user_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        names = await self._resolve(user_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[user_id] = (now + self.cache_ttl, names)
        return names

    def invalidate(self) -> None:
        self._cache.clear()

    async def _resolve(self, user_id: str) -> list[str]:
        schema = self.schemas.get(ROLE)
        if schema is None:
            return []
        found = await self._roles({"users": _pointer(USER, user_id)})
        names = {role_id: name for role_id, name in found}
        frontier = list(names)
        for _ in range(MAX_ROLE_DEPTH):
            if not frontier:
                break
            parents = await self._roles({"roles": {"$in": [_pointer(ROLE, i) for i in frontier]}})
            frontier = [role_id for role_id, _name in parents if role_id not in names]
            names.update(parents)
        return sorted(set(names.values()))

    async def _roles(self, where: dict[str, Any]) -> list[tuple[str, str]]:
        schema = self.schemas.get(ROLE)
        if schema is None:
            return []
        node = parse_where(where, schema, ROLE, self.schemas.get)
        records = await self.storage.find(schema, FindQuery(node, columns=("objectId", "name")), MASTER)
        return [(r["objectId"], r["name"]) for r in records if isinstance(r.get("name"), str)]


def _pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}
