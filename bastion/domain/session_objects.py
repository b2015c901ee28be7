"""_Session as an object service: the rules of sessions that clients open, change and close.

Sessions are ``_Session`` objects only their user may read and write (their ACL). A client needs
a session to reach them at all; it opens another session for its own user (``createdWith:
create``) whose user, token and expiry the server sets, never sets an ACL or the fields the
server owns, and finds, changes and deletes its own sessions only (the ACL). The master key
creates sessions as plain objects. The routes (``/sessions``, ``/classes/_Session``) and cloud
code's data API (``cloud.Session(...).save(session_token=...)``) go through here alike.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bastion.core.auth import Auth, CallInfo
from bastion.core.system_classes import SESSION, USER
from bastion.core.types import format_iso, now_ms
from bastion.domain.object_service import ClassObjects, Saved
from bastion.domain.read import FindRequest, Reader
from bastion.domain.sessions import Sessions, new_token
from bastion.domain.write import Writer
from bastion.errors import Code, ParseError

# Fields of a create the server sets itself (a client's values are dropped).
SERVER_OWNED = frozenset({"objectId", "user", "sessionToken", "expiresAt", "createdWith"})


def require_session(auth: Auth) -> None:
    """A session is opened with a session (or the master key)."""
    if not auth.is_master and not auth.user_id:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Session token required.")


def require_user(auth: Auth) -> None:
    """Sessions are read and changed with a session (or the master key)."""
    if not auth.is_master and not auth.user_id:
        raise ParseError(Code.INVALID_SESSION_TOKEN, "Permission denied")  # sanitized, as Parse Server 9


def _checked_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ParseError(Code.INVALID_JSON, "This object must be a JSON object.")
    if "ACL" in body:
        raise ParseError(Code.INVALID_KEY_NAME, "Cannot set ACL on a Session.")
    return body


def _check_update(body: dict[str, Any], auth: Auth) -> None:
    """A session keeps its user, token and installation; only the master key moves its expiry."""
    if "user" in body and not auth.is_master and (
            not isinstance(body["user"], dict) or body["user"].get("objectId") != auth.user_id):
        raise ParseError(Code.INVALID_KEY_NAME, "Invalid key name: user")
    for key in ("installationId", "sessionToken"):
        if key in body:
            raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key}")
    for key in ("expiresAt", "createdWith"):
        if key in body and not auth.is_master:
            raise ParseError(Code.INVALID_KEY_NAME, f"Invalid key name: {key}")


class SessionObjects(ClassObjects):
    __slots__ = ("sessions",)

    def __init__(self, sessions: Sessions, reader: Reader, writer: Writer) -> None:
        super().__init__(SESSION, reader, writer)
        self.sessions = sessions

    async def create(self, body: Any, auth: Auth, info: CallInfo | None = None) -> Saved:
        """A client with a session opens another one for its user; the answer is the new session
        (its token included) without the ACL."""
        require_session(auth)
        body = _checked_body(body)
        if auth.is_master:
            return await super().create(body, auth, info)
        user_id = auth.user_id
        assert user_id is not None
        expires = now_ms() + timedelta(seconds=self.sessions.session_length)
        session = {**{k: v for k, v in body.items() if k not in SERVER_OWNED},
                   "user": {"__type": "Pointer", "className": USER, "objectId": user_id},
                   "sessionToken": new_token(), "createdWith": {"action": "create"},
                   "expiresAt": {"__type": "Date", "iso": format_iso(expires)},
                   "ACL": {user_id: {"read": True, "write": True}}}
        result = await self.writer.create(SESSION, session, auth, trusted=True, info=info)
        answer = {k: v for k, v in session.items() if k != "ACL"}
        answer["objectId"] = result.object_id
        return Saved(answer, result.object_id)

    async def update(self, object_id: str, body: Any, auth: Auth, info: CallInfo | None = None) -> dict[str, Any]:
        require_user(auth)
        body = _checked_body(body)
        _check_update(body, auth)
        # Cached sessions are dropped by the write itself (core/system_classes.py: _Session's drops).
        return (await self.writer.update(SESSION, object_id, body, auth, trusted=True, info=info)).response

    async def delete(self, object_id: str, auth: Auth, info: CallInfo | None = None) -> None:
        require_user(auth)
        await self.writer.delete(SESSION, object_id, auth, trusted=True, info=info)

    async def get(self, object_id: str, auth: Auth, info: CallInfo | None = None, *, keys: list[str] | None = None,
                  include: list[str] | None = None, exclude_keys: list[str] | None = None, raw: bool = False) -> Any:
        require_user(auth)
        return await super().get(object_id, auth, info, keys=keys, include=include, exclude_keys=exclude_keys,
                                 raw=raw)

    async def find(self, request: FindRequest, auth: Auth, info: CallInfo | None = None, *,
                   raw: bool = False) -> dict[str, Any]:
        require_user(auth)
        return await super().find(request, auth, info, raw=raw)
