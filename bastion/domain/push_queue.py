"""The durable push queue and its worker: work survives a restart and is shared by every process.

Rows live in the database's ``_PushQueue`` table (``StorageAdapter.push_*``). ``POST /push`` adds
one ``query`` row per push, due at once or at its push time. A worker (one task per process,
started with the server) claims due rows in one statement (PostgreSQL: ``FOR UPDATE SKIP LOCKED``)
for a lease, and:

- a ``query`` row is expanded in one transaction: the audience is found (``where`` plus
  ``deviceToken`` exists, as Parse Server's applyDeviceTokenExists), each installation's badge is
  incremented or set (atomically, in the database), ``batch`` rows of at most ``batch_size``
  installations are added (a local-time push: one due time per UTC offset), the status becomes
  ``running`` with ``count`` the number of batches (or ``succeeded`` when nobody matched), and the
  row is deleted - all of it or nothing, so that a crash never increments a badge twice;
- a ``batch`` row is sent through the adapters (per service at most ``adapter.concurrency``
  requests at once, each device with its own badge and locale), and completed in one
  transaction: the row is deleted (or, for the devices to retry, rescheduled) only if this worker
  still holds it, and only then are the results counted into the ``_PushStatus`` (numSent,
  numFailed, sentPerType, failedPerType, sentPerUTCOffset, failedPerUTCOffset, count), so a batch
  is never counted twice. When ``count`` reaches 0 the status becomes ``succeeded`` (or ``failed``
  when a batch expired before it was sent).

Deliveries the service refused for a while (``Delivery.retry_after``: 429, 5xx) are retried with
exponential backoff (at least the service's hint), at most ``max_attempts`` tries in all, then
counted as failed. Installations whose token is gone (``Delivery.gone``) are deleted. A batch whose
expiration passed before it was sent is not sent: its devices count as failed. A worker that dies
holding rows loses them when its lease runs out; another worker takes them then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import orjson

from bastion.core.auth import MASTER_AUTH
from bastion.core.query.parse import parse_order
from bastion.core.system_classes import INSTALLATION, PUSH_STATUS
from bastion.core.types import now_ms
from bastion.domain.push import (
    badge_change,
    data_for_locale,
    fail_push,
    locale_group,
    push_locales,
)
from bastion.errors import Code, DatabaseUnavailable, ParseError
from bastion.ports import storage as ops
from bastion.ports.push import Delivery, Device, PushAdapter
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

if TYPE_CHECKING:
    from bastion.domain.read import Reader
    from bastion.domain.schema_registry import SchemaRegistry
    from bastion.domain.write import Writer

log = logging.getLogger("bastion.push")

EXPIRED = "The push expired before it was sent."
NO_ADAPTER = "No push service for device type {}."
INSTALLATION_COLUMNS = ("objectId", "deviceType", "deviceToken", "timeZone", "badge", "localeIdentifier",
                        "appIdentifier")


def new_row_id() -> str:
    return secrets.token_hex(12)


def _now() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class QueueOptions:
    poll_s: float = 1.0  # how often an idle worker looks for due rows
    lease_ms: int = 300_000  # how long a claim lasts before another worker may take the row
    batch_size: int = 100  # installations per batch row (Parse Server's DEFAULT_BATCH_SIZE)
    rows_per_claim: int = 4  # rows one worker works on at once
    max_attempts: int = 5  # tries of a device before it counts as failed
    retry_base_s: float = 1.0  # first retry's delay; doubles with each attempt
    retry_max_s: float = 3600.0
    shutdown_grace_s: float = 5.0  # time in-flight rows get to finish when the server stops


@dataclass(slots=True)
class _Outcome:
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    retry: list[list[Any]] = field(default_factory=list)
    retry_hint: float = 0.0
    expired: bool = False


class _LostClaim(Exception):
    """Another worker took the row (this one's lease ran out): its results are not ours to count."""


def utc_offset_key(offset: timedelta) -> str:
    """An offset as a key of sentPerUTCOffset: whole hours as "-7", others as "5:30"."""
    minutes = int(offset.total_seconds() // 60)
    hours, rest = divmod(abs(minutes), 60)
    sign = "-" if minutes < 0 else ""
    return f"{sign}{hours}" if rest == 0 else f"{sign}{hours}:{rest:02d}"


_ZONES: dict[str, ZoneInfo | None] = {}


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    if name not in _ZONES:
        try:
            _ZONES[name] = ZoneInfo(name)
        except (ValueError, OSError, KeyError):
            _ZONES[name] = None
    return _ZONES[name]


class PushQueue:
    """The worker of one process (and the enqueueing side's wake-up call)."""

    def __init__(self, storage: StorageAdapter, schemas: SchemaRegistry, reader: Reader, writer: Writer,
                 options: QueueOptions | None = None, *, enabled: bool = True,
                 adapters: list[PushAdapter] | None = None,
                 open_adapters: Callable[[], list[PushAdapter]] | None = None) -> None:
        self.storage = storage
        self.schemas = schemas
        self.reader = reader
        self.writer = writer
        self.options = options or QueueOptions()
        self.enabled = enabled
        # Tests give adapters; otherwise they are opened at start from the settings.
        self.adapters = adapters
        self._open_adapters = open_adapters
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._in_flight: dict[str, dict[str, Any]] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._opened: list[PushAdapter] = []

    # --- life ------------------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.enabled:
            return
        if self.adapters is None:
            self.adapters = self._open_adapters() if self._open_adapters is not None else []
        for adapter in self.adapters:
            await adapter.open()
            self._opened.append(adapter)
            self._limits[adapter.name] = asyncio.Semaphore(max(1, int(adapter.concurrency or 1)))
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bastion-push-worker")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait([task], timeout=self.options.shutdown_grace_s)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for row in list(self._in_flight.values()):
            # Interrupted: back in the queue at once instead of after the lease.
            try:
                await self.storage.push_reschedule(row["id"], self.worker_id, row["body"], row["attempts"] or 0,
                                                       row["notBefore"])
            except Exception:  # noqa: BLE001 - the lease frees it later
                log.warning("push queue: could not release row %s", row["id"], exc_info=True)
        self._in_flight.clear()
        for adapter in self._opened:
            try:
                await adapter.close()
            except Exception:  # noqa: BLE001
                log.warning("push adapter %s did not close cleanly", adapter.name, exc_info=True)
        self._opened.clear()

    def wake(self) -> None:
        """Something is due now (a push was just accepted)."""
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                rows = await self.storage.push_claim(self.worker_id, _now(), self.options.lease_ms,
                                                         self.options.rows_per_claim)
            except DatabaseUnavailable:  # the storage logged the outage once; back at a later poll
                rows = []
            except Exception:  # noqa: BLE001 - the database may be back at the next poll
                log.exception("push queue: claiming rows failed")
                rows = []
            if rows:
                await asyncio.gather(*(self._process(row) for row in rows))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.poll_s)

    async def run_once(self) -> int:
        """Claims and works one round of due rows (tests); how many there were."""
        rows = await self.storage.push_claim(self.worker_id, _now(), self.options.lease_ms,
                                                 self.options.rows_per_claim)
        await asyncio.gather(*(self._process(row) for row in rows))
        return len(rows)

    async def _process(self, row: dict[str, Any]) -> None:
        self._in_flight[row["id"]] = row
        try:
            body = orjson.loads(row["body"])
            if row["kind"] == "query":
                await self._expand(row, body)
            else:
                await self._send_batch(row, body)
        except _LostClaim:
            log.info("push queue: row %s was taken by another worker", row["id"])
        except Exception as exc:  # noqa: BLE001 - retried, then the push fails
            log.exception("push queue: row %s of push %s failed", row["id"], row["pushId"])
            await self._row_failed(row, exc)
        finally:
            self._in_flight.pop(row["id"], None)

    async def _row_failed(self, row: dict[str, Any], exc: Exception) -> None:
        attempts = (row["attempts"] or 0) + 1
        storage = self.storage
        try:
            if attempts < self.options.max_attempts:
                await storage.push_reschedule(row["id"], self.worker_id, row["body"], attempts,
                                              _now() + int(self._backoff(attempts - 1, 0) * 1000))
            elif await storage.push_done(row["id"], self.worker_id):
                await fail_push(self.writer, row["pushId"], exc if isinstance(exc, ParseError) else {
                    "message": f"{type(exc).__name__}: {exc}"})
        except Exception:  # noqa: BLE001 - the lease frees the row later
            log.exception("push queue: could not give row %s back", row["id"])

    def _backoff(self, attempts: int, hint: float) -> float:
        delay: float = self.options.retry_base_s * (2 ** attempts)
        return min(max(delay, hint or 0.0), self.options.retry_max_s)

    # --- a push's audience -------------------------------------------------------------------------

    async def _expand(self, row: dict[str, Any], plan: dict[str, Any]) -> None:
        storage = self.storage
        push_id = row["pushId"]
        where = plan.get("where")
        try:
            if not isinstance(where, dict):
                raise ParseError(Code.INVALID_QUERY, "Invalid where, must be an object.")
            where = dict(where)
            where.setdefault("deviceToken", {"$exists": True})
            schema = await self.schemas.get_or_reload(INSTALLATION, force=True)
            node = self.reader.where_ir(schema, INSTALLATION, where)
        except ParseError as exc:
            if await storage.push_done(row["id"], self.worker_id):
                await fail_push(self.writer, push_id, exc)
            return
        change = badge_change(plan.get("data"))
        send_at = plan.get("sendAt")
        local = bool(plan.get("localTime")) and send_at is not None
        interval = plan.get("expirationInterval")
        async with storage.transaction():
            installations: list[dict[str, Any]] = []
            if schema is not None and node is not None:
                columns = tuple(c for c in INSTALLATION_COLUMNS if c == "objectId" or c in schema.fields)
                installations = await storage.find(
                    schema, FindQuery(node, tuple(parse_order("objectId", schema)), None, 0, columns), MASTER)
            badges: dict[str, Any] = {}
            if change is not None and installations and schema is not None:  # installations: schema is set
                stamp = now_ms()
                op: ops.UpdateOp = (ops.Increment("badge", change[1]) if change[0] == "increment"
                                    else ops.Set("badge", change[1]))
                for inst in installations:
                    updated = await storage.update(schema, inst["objectId"], [ops.Set("updatedAt", stamp), op],
                                                   MASTER)
                    badges[inst["objectId"]] = _badge_value(updated.get("badge") if updated else None)
            # Which batch each installation goes in: its due time (local-time pushes) and offset.
            groups: dict[tuple[int, str | None], list[list[Any]]] = {}
            for inst in installations:
                due, offset = row["notBefore"], None
                if local and send_at is not None:
                    wall = datetime.fromtimestamp(send_at / 1000, UTC).replace(tzinfo=None)
                    zone = _zone(inst.get("timeZone"))
                    moment = wall.replace(tzinfo=zone or UTC)
                    due = int(moment.timestamp() * 1000)
                    offset = utc_offset_key(moment.utcoffset() or timedelta(0))
                elif send_at is not None:
                    due = send_at
                groups.setdefault((due, offset), []).append([inst["objectId"], badges.get(inst["objectId"])])
            rows: list[dict[str, Any]] = []
            for (due, offset), devices in sorted(groups.items(), key=lambda item: item[0][0]):
                expiry = plan.get("expiry")
                if expiry is None and interval:
                    expiry = due + int(interval * 1000)
                for start in range(0, len(devices), self.options.batch_size):
                    rows.append({"id": new_row_id(), "pushId": push_id, "kind": "batch", "attempts": 0,
                                 "notBefore": due, "body": orjson.dumps({
                                     "data": plan.get("data"), "devices": devices[start:start + self.options.batch_size],
                                     "expiry": expiry, "utcOffset": offset}).decode()})
            if rows:
                await storage.push_enqueue(rows)
            if not await storage.push_done(row["id"], self.worker_id):
                raise _LostClaim  # undoes the badges and the batches: the other worker does them
            update: dict[str, Any] = ({"status": "running", "count": len(rows)} if rows
                                      else {"status": "succeeded", "count": {"__op": "Delete"}})
            await self._update_status(push_id, update)
        if rows:
            self.wake()

    async def _update_status(self, push_id: str, update: dict[str, Any]) -> dict[str, Any] | None:
        try:
            result = await self.writer.update(PUSH_STATUS, push_id, update, MASTER_AUTH)
        except ParseError as exc:
            if exc.code == Code.OBJECT_NOT_FOUND:  # the status was deleted: the work still ends
                return None
            raise
        return result.record

    # --- a batch -------------------------------------------------------------------------------------

    def _adapter_for(self, device_type: Any) -> PushAdapter | None:
        for adapter in self.adapters or ():
            if device_type in adapter.device_types:
                return adapter
        return None

    async def _send_batch(self, row: dict[str, Any], body: dict[str, Any]) -> None:
        push_id = row["pushId"]
        specs: list[list[Any]] = body.get("devices") or []
        by_id = {spec[0]: spec for spec in specs}
        schema = await self.schemas.get_or_reload(INSTALLATION, force=True)
        installations: list[dict[str, Any]] = []
        if schema is not None and specs:
            node = self.reader.where_ir(schema, INSTALLATION, {
                "objectId": {"$in": list(by_id)}, "deviceToken": {"$exists": True}})
            columns = tuple(c for c in INSTALLATION_COLUMNS if c == "objectId" or c in schema.fields)
            installations = await self.storage.find(schema, FindQuery(node, (), None, 0, columns), MASTER)
        outcome = _Outcome()
        expiry = body.get("expiry")
        attempts = row["attempts"] or 0
        if expiry is not None and _now() > expiry:
            outcome.expired = True
            for inst in installations:
                outcome.failed[str(inst.get("deviceType"))] += 1
        else:
            await self._deliver(push_id, body, installations, by_id, attempts, outcome, schema)
        await self._complete(row, body, outcome)

    async def _deliver(self, push_id: str, body: dict[str, Any], installations: list[dict[str, Any]],
                       by_id: dict[str, list[Any]], attempts: int, outcome: _Outcome, schema: Any) -> None:
        data = body.get("data")
        if not isinstance(data, dict):
            data = {}
        change = badge_change(data)
        if change is not None and change[0] == "increment":
            data = {k: v for k, v in data.items() if k != "badge"}  # each device gets its own number
        locales = push_locales(data)
        per_locale = {locale: data_for_locale(data, locale) for locale in [*locales, None]}
        expiry = body.get("expiry")
        expiration = datetime.fromtimestamp(expiry / 1000, UTC) if expiry is not None else None
        priority = data.get("priority") if isinstance(data.get("priority"), str) else None

        async def one(inst: dict[str, Any]) -> tuple[dict[str, Any], Delivery]:
            device_type = inst.get("deviceType")
            adapter = self._adapter_for(device_type)
            if adapter is None:
                return inst, Delivery(inst["objectId"], ok=False, error=NO_ADAPTER.format(device_type))
            spec = by_id.get(inst["objectId"]) or [inst["objectId"], None]
            badge = spec[1] if change is not None and change[0] == "increment" else _badge_value(
                change[1] if change is not None else None)
            device = Device(installation_id=inst["objectId"], device_type=str(device_type),
                            device_token=inst.get("deviceToken") or "", app_identifier=inst.get("appIdentifier"),
                            badge=badge, locale=inst.get("localeIdentifier"))
            payload = per_locale[locale_group(inst.get("localeIdentifier"), locales)]
            async with self._limits.setdefault(adapter.name, asyncio.Semaphore(max(1, adapter.concurrency))):
                try:
                    results = await adapter.send(payload, [device], push_id=push_id, expiration=expiration,
                                                 priority=priority)
                except Exception as exc:  # noqa: BLE001 - a service or network failure: retried
                    log.warning("push adapter %s failed: %s", adapter.name, exc)
                    return inst, Delivery(inst["objectId"], ok=False, error=str(exc), retry_after=0.0)
            if not results:
                return inst, Delivery(inst["objectId"], ok=False, error="no result from the push service")
            return inst, results[0]

        done = await asyncio.gather(*(one(inst) for inst in installations))
        for inst, delivery in done:
            device_type = str(inst.get("deviceType"))
            if delivery.ok:
                outcome.sent[device_type] += 1
            elif delivery.gone:
                outcome.failed[device_type] += 1
                await self._forget(inst["objectId"])
            elif delivery.retry_after is not None and attempts + 1 < self.options.max_attempts:
                outcome.retry.append(by_id.get(inst["objectId"]) or [inst["objectId"], None])
                outcome.retry_hint = max(outcome.retry_hint, delivery.retry_after or 0.0)
            else:
                outcome.failed[device_type] += 1

    async def _forget(self, installation_id: str) -> None:
        """The service says the token is dead: the installation goes."""
        with contextlib.suppress(ParseError):
            await self.writer.delete(INSTALLATION, installation_id, MASTER_AUTH)

    async def _complete(self, row: dict[str, Any], body: dict[str, Any], outcome: _Outcome) -> None:
        storage = self.storage
        attempts = row["attempts"] or 0
        update: dict[str, Any] = {}
        num_sent, num_failed = sum(outcome.sent.values()), sum(outcome.failed.values())
        if num_sent:
            update["numSent"] = {"__op": "Increment", "amount": num_sent}
        if num_failed:
            update["numFailed"] = {"__op": "Increment", "amount": num_failed}
        offset = body.get("utcOffset")
        for key, counts in (("sentPerType", outcome.sent), ("failedPerType", outcome.failed)):
            for device_type, n in counts.items():
                update[f"{key}.{device_type}"] = {"__op": "Increment", "amount": n}
        if offset is not None:
            if num_sent:
                update[f"sentPerUTCOffset.{offset}"] = {"__op": "Increment", "amount": num_sent}
            if num_failed:
                update[f"failedPerUTCOffset.{offset}"] = {"__op": "Increment", "amount": num_failed}
        if outcome.expired:
            update["errorMessage"] = {"message": EXPIRED}
        async with storage.transaction():
            if outcome.retry:
                delay = self._backoff(attempts, outcome.retry_hint)
                retry_body = orjson.dumps({**body, "devices": outcome.retry}).decode()
                held = await storage.push_reschedule(row["id"], self.worker_id, retry_body, attempts + 1,
                                                     _now() + int(delay * 1000))
            else:
                held = await storage.push_done(row["id"], self.worker_id)
                update["count"] = {"__op": "Increment", "amount": -1}
            if not held:
                raise _LostClaim
            if not update:
                return
            update["status"] = "running"
            record = await self._update_status(row["pushId"], update)
            if record is not None and not outcome.retry and not (record.get("count") or 0) > 0:
                failed = bool(record.get("errorMessage"))
                await self._update_status(row["pushId"], {"status": "failed" if failed else "succeeded",
                                                          "count": {"__op": "Delete"}})


def _badge_value(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)
