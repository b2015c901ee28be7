"""Scheduled jobs: ``--schedule`` cron entries and Parse Dashboard's ``_JobSchedule`` objects.

Every server process runs this loop; each run happens in exactly one of them. A due run is claimed
by creating its ``_JobStatus`` with an objectId derived from the schedule and the scheduled moment:
the database's primary key lets one process create it, the others get a duplicate and skip the run.

Times are UTC. A tick (every few seconds) starts at most the latest due moment of each schedule:
moments missed while no server ran are skipped, except a ``_JobSchedule`` meant to run once, which
runs late.

``--schedule`` syntax: ``NAME=CRON`` entries separated by ``;`` (or new lines), CRON being five
fields (minute hour day-of-month month day-of-week) or six (seconds first), e.g.
``cleanup=*/5 * * * *; report=0 3 * * 1-5``.

``_JobSchedule`` objects, as Parse Dashboard writes them: ``startAfter`` (ISO date) is the first
moment the job may run; without ``repeatMinutes`` it runs once then. With ``repeatMinutes`` it runs
on each day ``daysOfWeek`` allows (seven flags, Sunday first; all days when absent), at
``timeOfDay`` ("HH:MM:SS.sssZ", midnight when absent) and every ``repeatMinutes`` after it until the
day ends (1440: once a day). ``lastRun`` (seconds since 1970) records the last moment run; ``params``
is the job's parameters as a JSON string.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cronsim import CronSim, CronSimError

from bastion.core.auth import MASTER_AUTH
from bastion.core.system_classes import JOB_SCHEDULE, JOB_STATUS
from bastion.core.types import format_iso
from bastion.domain.read import FindRequest
from bastion.domain.write import OBJECT_ID_ALPHABET
from bastion.errors import DatabaseUnavailable, ParseError

if TYPE_CHECKING:
    from bastion.cloud._runtime.data import CloudServer
    from bastion.cloud._runtime.jobs import JobRunner

log = logging.getLogger("bastion.cloud")

DEFAULT_TICK = 5.0  # seconds between looks at what is due
MIN_WINDOW = 60.0  # seconds a repeating run may start late (a tick late, or a process restarting)
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?Z?\Z")


@dataclass(frozen=True, slots=True)
class CronEntry:
    job: str
    expr: str

    @property
    def key(self) -> str:
        return f"cron|{self.job}|{self.expr}"


def parse_schedule(text: str | None) -> list[CronEntry]:
    """The ``--schedule`` entries; ValueError naming the entry that is not ``NAME=CRON``."""
    entries: list[CronEntry] = []
    for raw in re.split(r"[;\n]", text or ""):
        item = raw.strip()
        if not item:
            continue
        name, sep, expr = item.partition("=")
        name, expr = name.strip(), " ".join(expr.split())
        if not sep or not _NAME.match(name):
            raise ValueError(f"schedule entry {item[:100]!r}: expected JOB_NAME=CRON, e.g. cleanup=*/5 * * * *")
        if len(expr.split()) not in (5, 6):
            raise ValueError(f"schedule entry {item[:100]!r}: a cron expression has 5 fields "
                             "(minute hour day month weekday) or 6 (seconds first)")
        try:
            CronSim(expr, datetime.now(UTC))
        except (CronSimError, ValueError) as error:
            raise ValueError(f"schedule entry {item[:100]!r}: {error}") from None
        entries.append(CronEntry(name, expr))
    return entries


def previous_fire(expr: str, now: datetime) -> datetime | None:
    """The latest moment at or before ``now`` the cron expression names."""
    # Reverse iteration from a moment with microseconds yields that second first if it matches.
    start = now.replace(microsecond=now.microsecond or 1)
    try:
        return next(CronSim(expr, start, reverse=True))
    except (StopIteration, CronSimError, ValueError):
        return None


def claim_id(key: str) -> str:
    """The objectId of the ``_JobStatus`` of one scheduled run (10 base-62 characters)."""
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % len(OBJECT_ID_ALPHABET) ** 10
    chars = []
    for _ in range(10):
        number, digit = divmod(number, len(OBJECT_ID_ALPHABET))
        chars.append(OBJECT_ID_ALPHABET[digit])
    return "".join(chars)


def _date(value: Any) -> datetime | None:
    if isinstance(value, dict) and value.get("__type") == "Date":
        value = value.get("iso")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _seconds_of_day(value: Any) -> int | None:
    if value is None or value == "":
        return 0
    match = _TIME_OF_DAY.match(value) if isinstance(value, str) else None
    if not match:
        return None
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        return None
    return hours * 3600 + minutes * 60 + seconds


def _day_allowed(days: Any, day: datetime) -> bool:
    if not isinstance(days, list) or len(days) != 7:
        return True
    return bool(days[(day.weekday() + 1) % 7])  # Sunday first, as JavaScript's getUTCDay


def schedule_slot(doc: dict[str, Any], now: datetime, window: float) -> datetime | None:
    """The moment a ``_JobSchedule`` object is due to run now, if any."""
    start = _date(doc.get("startAfter")) or _date(doc.get("createdAt"))
    if start is None:
        return None
    start = start.replace(microsecond=0)
    last = doc.get("lastRun")
    last = last if isinstance(last, (int, float)) and not isinstance(last, bool) else None
    repeat = doc.get("repeatMinutes")
    if not isinstance(repeat, (int, float)) or isinstance(repeat, bool) or repeat < 1:
        # Once, at startAfter (late if no server ran then).
        if now < start or (last is not None and last >= start.timestamp()):
            return None
        return start
    step = timedelta(minutes=int(repeat))
    offset = _seconds_of_day(doc.get("timeOfDay"))
    if offset is None:
        return None
    slot: datetime | None = None
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for midnight in (today, today - timedelta(days=1)):
        first = midnight + timedelta(seconds=offset)
        if first > now or not _day_allowed(doc.get("daysOfWeek"), midnight):
            continue
        latest = min(now, midnight + timedelta(days=1) - timedelta(seconds=1))
        slot = first + step * ((latest - first) // step)
        break
    if slot is None or slot < start or (now - slot).total_seconds() > window:
        return None
    if last is not None and last >= slot.timestamp():
        return None
    return slot


def _params(text: Any, name: str) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        params = json.loads(text)
    except ValueError:
        log.warning("job schedule of %s: params are not JSON, running without them", name)
        return {}
    return params if isinstance(params, dict) else {}


class Scheduler:
    """The loop of one process: every ``tick`` seconds, starts what is due and not yet claimed."""

    def __init__(self, server: CloudServer, jobs: JobRunner, entries: list[CronEntry], tick: float = DEFAULT_TICK,
                 *, cloud_given: bool = True) -> None:
        self.server = server
        self.jobs = jobs
        self.cloud_given = cloud_given  # whether --cloud was given (named in the warning of a missing job)
        self.entries = entries
        self.tick = tick
        self.window = max(MIN_WINDOW, 3 * tick)
        self._last: dict[str, datetime] = {}  # per schedule, the latest moment this process handled
        self._task: asyncio.Task[None] | None = None
        self._warned: set[str] = set()

    def check(self) -> None:
        """Refuses ``--schedule`` entries naming jobs the cloud code does not define."""
        jobs = self.server.runtime.registry.jobs
        for entry in self.entries:
            if entry.job not in jobs:
                raise ValueError(f"--schedule names the job {entry.job!r}, which the cloud code does not define"
                                 + ("" if self.cloud_given else " (no --cloud given)"))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="bastion-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due(datetime.now(UTC))
            except asyncio.CancelledError:
                raise
            except DatabaseUnavailable:  # the storage logged the outage once
                pass
            except Exception:  # noqa: BLE001 - one bad tick must not stop the schedule
                log.exception("job scheduler: tick failed")
            await asyncio.sleep(self.tick)

    async def run_due(self, now: datetime) -> None:
        jobs = self.server.runtime.registry.jobs
        if not jobs:
            return
        for entry in self.entries:
            slot = previous_fire(entry.expr, now)
            if slot is None or self._last.get(entry.key) == slot or (now - slot).total_seconds() > self.window:
                continue
            self._last[entry.key] = slot
            if entry.job not in jobs:
                self._warn(entry.key, f"job scheduler: {entry.job} is not defined (any more); not run")
                continue
            await self._start(entry.job, {}, f"{entry.key}|{format_iso(slot)}", slot)
        await self._run_stored(now, jobs)

    async def _run_stored(self, now: datetime, jobs: dict[str, Any]) -> None:
        schemas = self.server.schemas
        if schemas.get(JOB_SCHEDULE) is None:
            await schemas.refresh_if_stale()
            if schemas.get(JOB_SCHEDULE) is None:
                return
        found = await self.server.reader.find(JOB_SCHEDULE, FindRequest(limit=1000), MASTER_AUTH)
        for doc in found["results"]:
            slot = schedule_slot(doc, now, self.window)
            object_id = doc.get("objectId")
            if slot is None or not isinstance(object_id, str):
                continue
            key = f"schedule|{object_id}"
            if self._last.get(key) == slot:
                continue
            self._last[key] = slot
            name = doc.get("jobName")
            if name not in jobs:
                self._warn(key, f"job scheduler: schedule {object_id} names the job {name!r}, which is not defined")
                continue
            params = _params(doc.get("params"), name)
            if await self._start(name, params, f"{key}|{format_iso(slot)}", slot):
                try:
                    await self.server.writer.update(JOB_SCHEDULE, object_id, {"lastRun": int(slot.timestamp())},
                                                 MASTER_AUTH)
                except ParseError as error:
                    log.warning("job scheduler: could not record the run of schedule %s: %s", object_id, error)

    async def _start(self, name: str, params: dict[str, Any], key: str, slot: datetime) -> str | None:
        """Claims and starts one run; its status id, or None when another process has it."""
        object_id = claim_id(key)
        try:
            # Usually another process got there first: a read spares the database a refused insert.
            if await self.server.reader.load(JOB_STATUS, object_id, MASTER_AUTH) is not None:
                log.debug("job scheduler: %s for %s was claimed by another process", name, format_iso(slot))
                return None
        except ParseError:
            pass  # no _JobStatus class yet: the claim below creates it
        try:
            job_id = await self.jobs.start(name, params, source="schedule", object_id=object_id,
                                               scheduled_at=slot)
        except ParseError as error:
            log.error("job scheduler: could not start %s: %s", name, error)
            return None
        if job_id:
            log.info("job scheduler: started %s for %s (status %s)", name, format_iso(slot), job_id)
        else:
            log.debug("job scheduler: %s for %s was claimed by another process", name, format_iso(slot))
        return job_id

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)
