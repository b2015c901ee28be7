"""The object service of a class: the protocol every class's service answers, what a create
answers (``Saved``), and ``ClassObjects``, the service of every class without an owner.

``domain/objects.py`` dispatches to these (``Objects.for_class``); the owners of system classes
(``core/system_classes.py``) extend ``ClassObjects`` with their rules.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from bastion.core.auth import Auth, CallInfo
from bastion.domain.read import FindRequest, Reader
from bastion.domain.write import Writer


@dataclass(frozen=True, slots=True)
class Saved:
    """A create's outcome: the REST answer, the object's id, and whether it is new (False when
    the create updated an object it matched, or logged a user in with a provider: answered 200)."""

    response: dict[str, Any]
    object_id: str
    created: bool = True


class ObjectService(Protocol):
    """What the routes and the data API do with the objects of one class."""

    async def create(self, body: Any, auth: Auth, info: CallInfo | None = None) -> Saved: ...

    async def update(self, object_id: str, body: Any, auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        ...

    async def delete(self, object_id: str, auth: Auth, info: CallInfo | None = None) -> None: ...

    async def get(self, object_id: str, auth: Auth, info: CallInfo | None = None, *, keys: list[str] | None = None,
                  include: list[str] | None = None, exclude_keys: list[str] | None = None, raw: bool = False) -> Any:
        """One object's REST JSON (with ``raw``, possibly an ``orjson.Fragment``)."""
        ...

    async def find(self, request: FindRequest, auth: Auth, info: CallInfo | None = None, *,
                   raw: bool = False) -> dict[str, Any]: ...


class ClassObjects:
    """Any class without an owner: the generic pipelines, whose checks decide what clients may do."""

    __slots__ = ("class_name", "reader", "writer")

    def __init__(self, class_name: str, reader: Reader, writer: Writer) -> None:
        self.class_name = class_name
        self.reader = reader
        self.writer = writer

    async def create(self, body: Any, auth: Auth, info: CallInfo | None = None) -> Saved:
        result = await self.writer.create(self.class_name, body, auth, info=info)
        return Saved(result.response, result.object_id)

    async def update(self, object_id: str, body: Any, auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        return (await self.writer.update(self.class_name, object_id, body, auth, info=info)).response

    async def delete(self, object_id: str, auth: Auth, info: CallInfo | None = None) -> None:
        await self.writer.delete(self.class_name, object_id, auth, info=info)

    # get and find hand back the reader's coroutine unawaited: the read paths pay no extra frame.
    def get(self, object_id: str, auth: Auth, info: CallInfo | None = None, *, keys: list[str] | None = None,
            include: list[str] | None = None, exclude_keys: list[str] | None = None,
            raw: bool = False) -> Coroutine[Any, Any, Any]:
        return self.reader.get(self.class_name, object_id, auth, keys=keys, include=include,
                               exclude_keys=exclude_keys, raw=raw, info=info)

    def find(self, request: FindRequest, auth: Auth, info: CallInfo | None = None, *,
             raw: bool = False) -> Coroutine[Any, Any, dict[str, Any]]:
        return self.reader.find(self.class_name, request, auth, raw=raw, info=info)
