"""Request idempotency: Parse Server's ``idempotencyOptions`` (``--idempotency-paths``, ``--idempotency-ttl``).

A write request on a listed path that carries ``X-Parse-Request-Id`` is first recorded in the
``_Idempotency`` class (``reqId``, unique; ``expire``); a second request with the same id, from this
process or any other on the database, finds the id taken and answers 159 "Duplicate request" without
running. As in Parse Server the record is made before the request runs (after its keys and session
are checked), so a retry of a request that failed is refused too, until the record expires.

Expiry: a record older than its ``expire`` no longer blocks its id (it is removed and the id taken
again), and each process sweeps expired records away about once a ttl. Parse Server leaves expiry
to MongoDB's TTL index, and on PostgreSQL to a database function someone must schedule.

Which routes take part is fixed by the routes (``Route.idempotent``, as Parse's routers place its
``promiseEnsureIdempotency``); which paths, by the options. The batch's sub-requests never do (Parse
Server passes them no headers). Disabled, the server holds no ``Idempotency`` and a request pays one
attribute test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bastion.core.auth import MASTER_AUTH
from bastion.core.query import ir
from bastion.core.system_classes import IDEMPOTENCY
from bastion.core.types import FieldType, encode_date
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.write import Writer
from bastion.errors import Code, ParseError
from bastion.ports.storage import StorageAdapter

log = logging.getLogger("bastion.idempotency")

REQUEST_ID_HEADER = "x-parse-request-id"
DEFAULT_TTL = 300  # seconds, Parse Server's default
FIELDS = {"reqId": FieldType("String"), "expire": FieldType("Date")}
_REQ_ID = ir.Field("reqId", "String")
_EXPIRE = ir.Field("expire", "Date")


def parse_paths(text: str | None) -> tuple[str, ...]:
    """The path patterns of ``--idempotency-paths``: a JSON list, or comma-separated as Parse
    Server's arrayParser reads its environment variable. Each must compile (ValueError if not)."""
    if not text or not text.strip():
        return ()
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError as error:
            raise ValueError(f"not a JSON list of path patterns: {error}") from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError("must be a JSON list of path patterns (strings)")
    else:
        items = stripped.split(",")
    paths = tuple(item.strip() for item in items if item.strip())
    for path in paths:
        try:
            _compile(path)
        except re.error as error:
            raise ValueError(f"{path!r} is not a regular expression: {error}") from None
    return paths


def _compile(path: str) -> re.Pattern[str]:
    # As Parse Server: a pattern always matches from the path's start (``functions/.*``, ``users``).
    return re.compile(path if path.startswith("^") else "^" + path)


@dataclass(frozen=True, slots=True)
class IdempotencyOptions:
    paths: tuple[str, ...]
    ttl: int = DEFAULT_TTL


class Idempotency:
    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, writer: Writer,
                 options: IdempotencyOptions) -> None:
        if options.ttl <= 0:
            raise ValueError("the idempotency ttl must be a positive number of seconds")
        self.storage = storage
        self.schemas = schemas
        self.writer = writer
        self.ttl = options.ttl
        self.patterns = tuple(_compile(path) for path in options.paths)
        self._next_sweep = 0.0
        self._sweeps: set[asyncio.Task[None]] = set()

    def applies(self, path: str) -> bool:
        """Whether ``path`` (after the mount path, "/functions/x") is one of the listed paths."""
        relative = path[1:] if path.startswith("/") else path
        return any(pattern.search(relative) for pattern in self.patterns)

    async def prepare(self) -> None:
        """The class, its unique ``reqId`` and its ``expire`` index, at start-up (as Parse Server's
        performInitialization); a class made by Parse Server on a shared database is kept."""
        await self.schemas.ensure_fields(IDEMPOTENCY, FIELDS, may_create_class=True)
        for name, spec, unique in (("unique_reqId", {"reqId": 1}, True), ("expire", {"expire": 1}, False)):
            try:
                await self.storage.create_index(IDEMPOTENCY, name, spec, unique=unique)
            except ParseError as exc:
                # Another process starting beside this one created it in the same instant.
                log.debug("idempotency index %s: %s", name, exc.message)

    async def check(self, path: str, request_id: str | None) -> None:
        """Records the request's id, or raises 159 when it was recorded before and has not expired."""
        if not request_id or not self.applies(path):
            return
        self._sweep_soon()
        if await self._try_record(request_id):
            return
        # Taken: by a live record (a duplicate), or by an expired one that no sweep removed yet.
        # Removing it can succeed in one process only, so only one request takes the id again.
        if await self._remove_expired(request_id) and await self._try_record(request_id):
            return
        raise ParseError(Code.DUPLICATE_REQUEST, "Duplicate request")

    async def _try_record(self, request_id: str) -> bool:
        """Records the id; False when a record holds it already."""
        try:
            await self._record(request_id)
        except ParseError as exc:
            if exc.code != Code.DUPLICATE_VALUE:
                raise
            return False
        return True

    async def _record(self, request_id: str) -> None:
        expire = datetime.now(UTC) + timedelta(seconds=self.ttl)
        body = {"reqId": request_id, "expire": encode_date(expire), "ACL": {}}
        await self.writer.create(IDEMPOTENCY, body, MASTER_AUTH)

    async def _remove_expired(self, request_id: str | None = None) -> int:
        schema = self.schemas.get(IDEMPOTENCY)
        if schema is None:
            return 0
        expired: ir.Node = ir.Compare(_EXPIRE, ir.LT, datetime.now(UTC))
        if request_id is not None:
            expired = ir.And((ir.Compare(_REQ_ID, ir.EQ, request_id), expired))
        return await self.storage.delete_matching(schema, expired)

    def _sweep_soon(self) -> None:
        """Once a ttl, a request of this process has expired records removed, in the background."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.ttl
        task = asyncio.get_running_loop().create_task(self._sweep())
        self._sweeps.add(task)
        task.add_done_callback(self._sweeps.discard)

    async def _sweep(self) -> None:
        try:
            removed = await self._remove_expired()
        except Exception:  # noqa: BLE001 - a failed sweep is retried at the next one
            log.exception("could not remove expired idempotency records")
            return
        if removed:
            log.debug("removed %d expired idempotency records", removed)

    async def close(self) -> None:
        for task in list(self._sweeps):
            task.cancel()
        if self._sweeps:
            await asyncio.wait(list(self._sweeps), timeout=1.0)
