"""Single-use, expiring sign-in challenges kept in the database, so that every process of a
deployment sees them: a passkey ceremony's challenge, a mailed one-time code, a web sign-in's
``state``.

Each challenge has a ``purpose`` (which feature made it), a ``key`` the feature finds it by (a
random handle, or the hash of a code), an optional ``subject`` (what rate limits count, such as an
address's hash), free ``data`` and an ``expire`` time. ``take`` hands a challenge out once: of two
requests taking the same one, only the one whose delete removed it gets it.

Secrets are never stored as given: features store hashes of codes (``digest``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bastion.core.query import ir
from bastion.core.system_classes import AUTH_CHALLENGE
from bastion.core.types import FieldType, now_ms
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.write import new_object_id
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

log = logging.getLogger("bastion.auth")

FIELDS = {
    "purpose": FieldType("String"),
    "key": FieldType("String"),
    "subject": FieldType("String"),
    "data": FieldType("Object"),
    "expire": FieldType("Date"),
}
_KEY = ir.Field("key", "String")
_PURPOSE = ir.Field("purpose", "String")
_SUBJECT = ir.Field("subject", "String")
_EXPIRE = ir.Field("expire", "Date")
_CREATED = ir.Field("createdAt", "Date")


def digest(secret: str) -> str:
    """What is stored of a code or token: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_handle() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Challenge:
    key: str
    subject: str | None
    data: dict[str, Any]
    expire: datetime


class ChallengeStore:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry) -> None:
        self.storage = storage
        self.schemas = schemas
        self._ready = False

    async def _prepare(self) -> None:
        if self._ready:
            return
        await self.schemas.ensure_fields(AUTH_CHALLENGE, FIELDS, may_create_class=True)
        for name, spec in (("key", {"key": 1}), ("subject", {"subject": 1})):
            try:
                await self.storage.create_index(AUTH_CHALLENGE, f"auth_challenge_{name}", spec, unique=False)
            except Exception as error:  # made by another process at the same time, or already there
                log.debug("auth challenge index %s: %s", name, error)
        self._ready = True

    async def put(self, purpose: str, data: dict[str, Any], ttl_seconds: float, *, key: str | None = None,
                  subject: str | None = None) -> str:
        """Keeps a challenge for ``ttl_seconds``; its key (a new random handle unless given)."""
        await self._prepare()
        schema = self.schemas.get(AUTH_CHALLENGE)
        assert schema is not None  # made by _prepare
        key = key or new_handle()
        now = now_ms()
        # Straight to storage, as the server's own bookkeeping: no triggers, an empty ACL (master only).
        record: dict[str, Any] = {"objectId": new_object_id(), "createdAt": now, "updatedAt": now,
                                  "_rperm": [], "_wperm": [], "purpose": purpose, "key": key, "data": data,
                                  "expire": now + timedelta(seconds=ttl_seconds)}
        if subject is not None:
            record["subject"] = subject
        await self.storage.insert(schema, record)
        return key

    async def take(self, purpose: str, key: str) -> Challenge | None:
        """The live challenge ``key`` of ``purpose``, removed: None when there is none, it expired,
        or another request took it first."""
        if not isinstance(key, str) or not key or len(key) > 512:
            return None
        await self._prepare()
        schema = self.schemas.get(AUTH_CHALLENGE)
        if schema is None:
            return None
        match = ir.conjoin([ir.Compare(_PURPOSE, ir.EQ, purpose), ir.Compare(_KEY, ir.EQ, key)])
        found = await self.storage.find(schema, FindQuery(match, limit=1), MASTER)
        if not found:
            return None
        record = found[0]
        # Only the request whose delete removes the record gets it: a challenge is used once.
        removed = await self.storage.delete_matching(
            schema, ir.conjoin([match, ir.Compare(ir.Field("objectId", "String"), ir.EQ, record["objectId"])]))
        if removed != 1:
            return None
        expire = record.get("expire")
        if not isinstance(expire, datetime) or expire <= datetime.now(UTC):
            return None
        data = record.get("data")
        return Challenge(key, record.get("subject"), data if isinstance(data, dict) else {}, expire)

    async def count(self, purpose: str, subject: str, within_seconds: float) -> int:
        """How many challenges of ``purpose`` were made for ``subject`` lately (rate limits);
        taken ones included only while they are kept, so callers also keep a marker of their own."""
        await self._prepare()
        schema = self.schemas.get(AUTH_CHALLENGE)
        if schema is None:
            return 0
        since = datetime.now(UTC) - timedelta(seconds=within_seconds)
        match = ir.conjoin([ir.Compare(_PURPOSE, ir.EQ, purpose), ir.Compare(_SUBJECT, ir.EQ, subject),
                            ir.Compare(_CREATED, ir.GTE, since)])
        return len(await self.storage.find(schema, FindQuery(match, limit=1000, columns=("objectId",)), MASTER))

    async def drop(self, purpose: str, subject: str) -> int:
        """Removes every challenge of ``purpose`` made for ``subject`` (codes voided); how many."""
        schema = self.schemas.get(AUTH_CHALLENGE)
        if schema is None:
            return 0
        return await self.storage.delete_matching(
            schema, ir.conjoin([ir.Compare(_PURPOSE, ir.EQ, purpose), ir.Compare(_SUBJECT, ir.EQ, subject)]))

    async def sweep(self) -> int:
        """Removes expired challenges; how many."""
        schema = self.schemas.get(AUTH_CHALLENGE)
        if schema is None:
            return 0
        return await self.storage.delete_matching(schema, ir.Compare(_EXPIRE, ir.LT, datetime.now(UTC)))
