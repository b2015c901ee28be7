"""One dispatch for object writes and reads: ``Objects.for_class(class_name)``.

The /classes routes, the routes of _User, _Session and _Installation, and cloud code's data API
all ask ``for_class`` for the service of a class instead of deciding it themselves. The table of
system classes (``core/system_classes.py``) says which classes have an owner; every other class
goes through the generic Reader and Writer. Each service answers the same small protocol
(``object_service.ObjectService``).
"""

from __future__ import annotations

from typing import Any

from bastion.core.auth import Auth, CallInfo
from bastion.core.system_classes import INSTALLATION, OWNED, USER, Owner
from bastion.domain.installations import Installations
from bastion.domain.object_service import ClassObjects, ObjectService, Saved
from bastion.domain.read import FindRequest, Reader
from bastion.domain.session_objects import SessionObjects
from bastion.domain.sessions import Sessions
from bastion.domain.users import Users
from bastion.domain.write import Writer


class UserObjects(ClassObjects):
    """_User: a create is a sign-up (with a password, or with a provider's authData), updates and
    deletes follow the user rules (a user changes only themself); reads are the generic ones."""

    __slots__ = ("users",)

    def __init__(self, users: Users, reader: Reader, writer: Writer) -> None:
        super().__init__(USER, reader, writer)
        self.users = users

    async def create(self, body: Any, auth: Auth, info: CallInfo | None = None) -> Saved:
        auth_data = self.users.auth_data
        if auth_data is not None and isinstance(body, dict) and "authData" in body:
            # Sign-up (created) or log-in (not) with a provider.
            result = await auth_data.sign_up(body, auth, info)
            return Saved(result.response, result.object_id, result.created)
        response, object_id = await self.users.sign_up(body, auth, info=info)
        return Saved(response, object_id)

    async def update(self, object_id: str, body: Any, auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        return await self.users.update(object_id, body, auth, info)

    async def delete(self, object_id: str, auth: Auth, info: CallInfo | None = None) -> None:
        await self.users.delete(object_id, auth, info)


class InstallationObjects(ClassObjects):
    """_Installation: Parse's matching on create and update; clients may get, not find or delete."""

    __slots__ = ("installations",)

    def __init__(self, installations: Installations, reader: Reader, writer: Writer) -> None:
        super().__init__(INSTALLATION, reader, writer)
        self.installations = installations

    async def create(self, body: Any, auth: Auth, info: CallInfo | None = None) -> Saved:
        result = await self.installations.save(body, auth, info=info)
        return Saved(result.response, result.object_id, result.created)

    async def update(self, object_id: str, body: Any, auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        return (await self.installations.save(body, auth, object_id, info)).response

    async def delete(self, object_id: str, auth: Auth, info: CallInfo | None = None) -> None:
        await self.installations.delete(object_id, auth, info)

    async def find(self, request: FindRequest, auth: Auth, info: CallInfo | None = None, *,
                   raw: bool = False) -> dict[str, Any]:
        self.installations.check_find(auth)
        return await super().find(request, auth, info, raw=raw)


_MAX_KEPT = 10_000  # generic services kept by class name


class Objects:
    """``for_class(name)``: the object service of a class (its owner's, else the generic one)."""

    def __init__(self, reader: Reader, writer: Writer, users: Users, sessions: Sessions,
                 installations: Installations) -> None:
        self.reader = reader
        self.writer = writer
        by_owner: dict[Owner, ObjectService] = {
            Owner.USERS: UserObjects(users, reader, writer),
            Owner.SESSIONS: SessionObjects(sessions, reader, writer),
            Owner.INSTALLATIONS: InstallationObjects(installations, reader, writer),
        }
        self._services: dict[str, ObjectService] = {name: by_owner[owner] for name, owner in OWNED.items()}

    def for_class(self, class_name: str) -> ObjectService:
        found = self._services.get(class_name)
        if found is not None:
            return found
        found = ClassObjects(class_name, self.reader, self.writer)
        # Kept for the next request (a class's service holds nothing but its name); bounded, since
        # class names come from URLs.
        if len(self._services) < _MAX_KEPT:
            self._services[class_name] = found
        return found
