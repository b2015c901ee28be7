"""Sessions (``_Session``): revocable ``r:`` tokens, their expiry, and who a token acts as.

A session is an ordinary ``_Session`` object that only its user may read and write (its ACL),
holding ``sessionToken``, ``user``, ``expiresAt``, ``createdWith`` and ``installationId``. Tokens
are looked up on every authenticated request, so resolved sessions are cached briefly; a revocation
made by this process drops the cached entry at once; other processes drop theirs when told through
the pub/sub adapter (the ``revoked`` hook, bastion/invalidation.py), or else within the TTL, as with Parse
Server's cache. Unknown tokens are not cached: a token another process just made is looked up.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bastion.core.events import Hook, SessionsRevoked
from bastion.core.query import ir
from bastion.core.system_classes import SESSION
from bastion.core.types import now_ms
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.write import new_object_id
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

DEFAULT_SESSION_LENGTH = 365 * 24 * 3600  # Parse Server's sessionLength: one year, in seconds
_TOKEN = ir.Field("sessionToken", "String")
_USER = ir.Field("user", "Pointer")


@dataclass(frozen=True, slots=True)
class Session:
    object_id: str
    token: str
    user_id: str
    expires_at: datetime | None
    installation_id: str | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or datetime.now(UTC))


def new_token() -> str:
    return "r:" + secrets.token_hex(16)


class Sessions:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry,
                 session_length: int = DEFAULT_SESSION_LENGTH, cache_ttl: float = 5.0) -> None:
        self.storage = storage
        self.schemas = schemas
        self.session_length = session_length
        self.cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, Session]] = {}
        # After this process revoked sessions of a user (other processes forget them).
        self.revoked: Hook[SessionsRevoked] = Hook("sessions revoked")

    async def create(self, user_id: str, created_with: dict[str, Any] | None, installation_id: str | None,
                     extra: dict[str, Any] | None = None) -> Session:
        """A new session; ``extra`` holds further (already canonical) fields a client asked for."""
        schema = await self.schemas.ensure_fields(SESSION, {}, may_create_class=True)
        now = now_ms()
        session = Session(new_object_id(), new_token(), user_id,
                          now + timedelta(seconds=self.session_length), installation_id or None)
        record: dict[str, Any] = {
            **(extra or {}),
            "objectId": session.object_id, "createdAt": now, "updatedAt": now,
            "_rperm": [user_id], "_wperm": [user_id],
            "user": user_id, "sessionToken": session.token, "expiresAt": session.expires_at,
        }
        if created_with is not None:
            record["createdWith"] = created_with
        if session.installation_id:
            record["installationId"] = session.installation_id
        await self.storage.insert(schema, record)
        if session.installation_id:
            await self._drop_other_sessions(schema, user_id, session.installation_id, session.token)
        return session

    async def _drop_other_sessions(self, schema: Any, user_id: str, installation_id: str, keep_token: str) -> None:
        """As Parse Server: a new session of a user on an installation ends the user's others there."""
        where = ir.conjoin([ir.Compare(_USER, ir.EQ, user_id),
                            ir.Compare(ir.Field("installationId", "String"), ir.EQ, installation_id)])
        revoked = False
        for record in await self.storage.find(schema, FindQuery(where), MASTER):
            token = record.get("sessionToken")
            if token != keep_token:
                if token is not None:
                    self._cache.pop(token, None)
                await self.storage.delete(schema, record["objectId"], MASTER)
                revoked = True
        if revoked:
            await self._revoked(user_id)

    async def resolve(self, token: str) -> Session | None:
        """The live session of ``token``, or None (unknown, revoked or expired)."""
        cached = self._cache.get(token)
        now = time.monotonic()
        session: Session | None
        if cached is not None and cached[0] > now:
            session = cached[1]
        else:
            session = await self._load(token)
            if session is None:
                self._cache.pop(token, None)
                return None
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now + self.cache_ttl, session)
        if session.expired():
            return None
        return session

    async def _load(self, token: str) -> Session | None:
        if not isinstance(token, str) or not token or len(token) > 256:
            return None
        # A token made by another process may be the database's first session: this process may
        # not know _Session yet, so it looks again rather than refuse the token.
        schema = self.schemas.get(SESSION) or await self.schemas.get_or_reload(SESSION, force=True)
        if schema is None:
            return None
        query = FindQuery(ir.Compare(_TOKEN, ir.EQ, token), limit=1)
        records = await self.storage.find(schema, query, MASTER)
        if not records or not records[0].get("user"):
            return None
        r = records[0]
        return Session(r["objectId"], token, r["user"], r.get("expiresAt"), r.get("installationId"))

    async def revoke(self, token: str) -> dict[str, Any] | None:
        """Delete the session of ``token``; its record, or None when there was none."""
        self._cache.pop(token, None)
        schema = self.schemas.get(SESSION)
        if schema is None:
            return None
        records = await self.storage.find(schema, FindQuery(ir.Compare(_TOKEN, ir.EQ, token), limit=1), MASTER)
        if not records:
            return None
        await self.storage.delete(schema, records[0]["objectId"], MASTER)
        await self._revoked(records[0].get("user"))
        return records[0]

    async def revoke_for_user(self, user_id: str, keep_token: str | None = None) -> None:
        """Every session of the user but ``keep_token``'s (after a password change)."""
        schema = self.schemas.get(SESSION)
        if schema is None:
            return
        records = await self.storage.find(schema, FindQuery(ir.Compare(_USER, ir.EQ, user_id)), MASTER)
        revoked = False
        for record in records:
            token = record.get("sessionToken")
            if token == keep_token:
                continue
            if token is not None:
                self._cache.pop(token, None)
            await self.storage.delete(schema, record["objectId"], MASTER)
            revoked = True
        if revoked:
            await self._revoked(user_id)

    async def _revoked(self, user_id: Any) -> None:
        if isinstance(user_id, str) and self.revoked:
            await self.revoked.emit_async(SessionsRevoked(user_id))

    def forget(self, token: str | None = None) -> None:
        """Drop cached sessions (one, or all) after a change made elsewhere."""
        if token is None:
            self._cache.clear()
        else:
            self._cache.pop(token, None)

    def forget_user(self, user_id: str) -> None:
        """Drop the cached sessions of one user (another process revoked some of them)."""
        for token, (_expires, session) in list(self._cache.items()):
            if session.user_id == user_id:
                self._cache.pop(token, None)
