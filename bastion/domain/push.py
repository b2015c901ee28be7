"""Sending a push: ``POST /push`` as Parse Server's PushRouter and PushController read it.

A push names its audience with ``channels`` (``{"channels": {"$in": [...]}}``) or a ``where`` over
``_Installation`` (never both), carries ``data`` (alert, title, badge, sound, content-available,
category, uri, custom keys; ``alert-<locale>``/``title-<locale>`` variants), and may set
``push_time`` (later: scheduled; an ISO date without a zone: each device's local time, read with
its installation's ``timeZone``), ``expiration_time`` or ``expiration_interval`` (seconds).

The request is checked with Parse Server's errors, its ``_PushStatus`` is created (``pending``, or
``scheduled`` for a ``push_time``; ``source`` "rest", ``query`` and ``payload`` as JSON text,
``pushHash``, ``expiry``, an empty ACL), and one row is put in the durable queue
(``bastion/domain/push_queue.py``), due at once or at the push time. The queue's worker finds the
installations, applies ``"badge": "Increment"``, sends through the adapters and counts the results
in the status (``running`` → ``succeeded``, or ``failed`` with ``errorMessage``).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeGuard

import orjson

from bastion.core.auth import MASTER_AUTH
from bastion.core.js import js_string
from bastion.core.system_classes import AUDIENCE, PUSH_STATUS
from bastion.core.types import encode_date, format_iso, now_ms
from bastion.errors import Code, ParseError

if TYPE_CHECKING:
    from bastion.domain.push_queue import PushQueue
    from bastion.domain.write import Writer
    from bastion.ports.tables import PushQueueTable

EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e"  # Parse's pushHash of a push without an alert
# A local-time push reaches the devices furthest east first: their zones run up to 14 hours ahead.
MAX_UTC_OFFSET = timedelta(hours=14)
_OFFSET = re.compile(r"(.+)([+-])\d\d:\d\d$")
_LOCALIZABLE = ("alert", "title")


class InvalidBadge(Exception):
    """Parse Server throws a bare string for a badge it cannot read, which it answers as an
    uncaught error: 500 ``{"code": 1, "message": "Internal server error."}``."""

    MESSAGE = "Invalid value for badge, expected number or 'Increment' or {increment: number}"


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_js_date(text: str) -> datetime | None:
    """An ISO 8601 date as ``new Date(text)`` reads it (a date-time without a zone as UTC: the
    server's zone in Parse Server, UTC on every Bastion); None when it is no date."""
    if not text or len(text) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _time_param(body: dict[str, Any], name: str) -> datetime:
    value = body[name]
    moment: datetime | None = None
    if _is_number(value):
        try:
            moment = datetime.fromtimestamp(value, UTC) if math.isfinite(value) else None
        except (OverflowError, OSError, ValueError):
            moment = None
    elif isinstance(value, str):
        moment = parse_js_date(value)
    if moment is None:
        raise ParseError(Code.PUSH_MISCONFIGURED, f"{js_string(value)} is not valid time.")
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def has_timezone(text: str) -> bool:
    """Parse's pushTimeHasTimezoneComponent: a trailing ``Z`` or ``±HH:MM``."""
    return text.endswith("Z") or _OFFSET.match(text) is not None


def query_condition(body: dict[str, Any]) -> Any:
    """The installations a push goes to (PushRouter.getQueryCondition): the client's ``where`` as
    sent (the queue checks it when it expands the push), or a ``channels`` condition."""
    has_where, has_channels = "where" in body, "channels" in body
    if has_where and has_channels:
        raise ParseError(Code.PUSH_MISCONFIGURED, "Channels and query can not be set at the same time.")
    if has_where:
        return body["where"]
    if has_channels:
        return {"channels": {"$in": body["channels"]}}
    raise ParseError(Code.PUSH_MISCONFIGURED, 'Sending a push requires either "channels" or a "where" query.')


def badge_change(data: Any) -> tuple[str, float] | None:
    """What the push does to each installation's badge: ("increment", amount), ("set", value) or
    None; InvalidBadge as Parse Server refuses it."""
    badge = data.get("badge") if isinstance(data, dict) else None
    if not badge:  # JavaScript truthiness: 0, "" and null leave badges alone
        return None
    if isinstance(badge, str) and badge.lower() == "increment":
        return ("increment", 1)
    if isinstance(badge, dict):
        op, amount = badge.get("__op"), _js_number(badge.get("amount"))
        if isinstance(op, str) and op.lower() == "increment" and amount:
            return ("increment", amount)
    number = _js_number(badge)
    if number:
        return ("set", number)
    raise InvalidBadge(InvalidBadge.MESSAGE)


def _js_number(value: Any) -> float | int | None:
    """``Number(value)`` for the values a badge may be (None for NaN)."""
    if _is_number(value):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        try:
            number = float(text)
        except ValueError:
            return None
        return int(number) if number.is_integer() else number
    return None


def push_hash(data: Any) -> str:
    alert = data.get("alert") if isinstance(data, dict) else None
    if isinstance(alert, str):
        return hashlib.md5(alert.encode(), usedforsecurity=False).hexdigest()
    if isinstance(data, dict) and "alert" in data and (alert is None or isinstance(alert, (dict, list))):
        return hashlib.md5(orjson.dumps(alert), usedforsecurity=False).hexdigest()
    return EMPTY_MD5


# --- locales (Parse's Push/utils.js) ---------------------------------------------------------------


def push_locales(data: dict[str, Any]) -> list[str]:
    """The locales of ``alert-<locale>`` and ``title-<locale>`` keys, in order of appearance."""
    seen: dict[str, None] = {}
    for key in data:
        for name in _LOCALIZABLE:
            if key.startswith(name + "-"):
                seen[key[len(name) + 1:]] = None
    return list(seen)


def strip_locales(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not any(k.startswith(n + "-") for n in _LOCALIZABLE)}


def data_for_locale(data: dict[str, Any], locale: str | None) -> dict[str, Any]:
    """The data a device of ``locale`` gets (``locale`` None: the default)."""
    out = dict(data)
    if locale is not None:
        for name in _LOCALIZABLE:
            value = data.get(f"{name}-{locale}")
            if value:
                out[name] = value
    return strip_locales(out)


def locale_group(locale_identifier: Any, locales: list[str]) -> str | None:
    """The first push locale an installation's ``localeIdentifier`` starts with (None: default)."""
    if isinstance(locale_identifier, str) and locale_identifier:
        for locale in locales:
            if locale_identifier.startswith(locale):
                return locale
    return None


# --- the request ---------------------------------------------------------------------------------


@dataclass(slots=True)
class PushPlan:
    """A checked push request, as the queue's first row carries it."""

    where: Any
    data: Any
    push_time: str | None  # as _PushStatus shows it ("...Z", or without Z for local time)
    send_at: datetime | None  # UTC moment (local pushes: the wall time read as UTC)
    local_time: bool
    expiry_ms: int | None  # absolute expiration (ms since the epoch)
    expiration_interval: float | None
    audience_id: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "data": self.data, "localTime": self.local_time,
                "sendAt": _ms(self.send_at) if self.send_at else None, "expiry": self.expiry_ms,
                "expirationInterval": self.expiration_interval}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def check_request(body: dict[str, Any], now: datetime) -> PushPlan:
    """Parse Server's checks and rewrites, in its order (PushRouter, then PushController.sendPush)."""
    where = query_condition(body)
    expiry: int | None = None
    if "expiration_time" in body:
        expiry = _ms(_time_param(body, "expiration_time"))
    interval: float | None = None
    if "expiration_interval" in body:
        value = body["expiration_interval"]
        if not _is_number(value) or value <= 0:
            raise ParseError(Code.PUSH_MISCONFIGURED, "expiration_interval must be a number greater than 0")
        interval = value
    if expiry and interval:
        raise ParseError(Code.PUSH_MISCONFIGURED, "Both expiration_time and expiration_interval cannot be set")
    if interval and "push_time" not in body:
        expiry = _ms(now) + int(interval * 1000)
    push_time: str | None = None
    send_at: datetime | None = None
    local = False
    if "push_time" in body:
        raw = body["push_time"]
        send_at = _time_param(body, "push_time")
        # As Parse Server: only a string with a zone is absolute; a number is local time too.
        local = not (isinstance(raw, str) and has_timezone(raw))
        push_time = format_iso(send_at)
        if local:
            push_time = push_time[:-1]
    data = body.get("data")
    badge_change(data)  # refused before anything is stored, as Parse Server does
    return PushPlan(where, data, push_time, send_at, local, expiry, interval, body.get("audience_id"))


class PushService:
    """``POST /push``: checks, the status record, the queue's first row."""

    def __init__(self, storage: PushQueueTable, writer: Writer, queue: PushQueue) -> None:
        self.storage = storage
        self.writer = writer
        self.queue = queue

    async def send(self, body: Any) -> str:
        """Accepts a push; the objectId of its ``_PushStatus``."""
        from bastion.domain.push_queue import new_row_id

        body = body if isinstance(body, dict) else {}
        now = now_ms()
        plan = check_request(body, now)
        data = plan.data if plan.data is not None else {}
        status: dict[str, Any] = {
            "pushTime": plan.push_time if plan.push_time is not None else format_iso(now),
            "query": orjson.dumps(plan.where).decode(),
            "payload": orjson.dumps(data).decode(),
            "source": "rest",
            "status": "scheduled" if plan.push_time is not None else "pending",
            "numSent": 0,
            "pushHash": push_hash(data),
            "ACL": {},
        }
        if plan.expiry_ms is not None:
            status["expiry"] = plan.expiry_ms
        if plan.expiration_interval is not None:
            status["expiration_interval"] = plan.expiration_interval
        created = await self.writer.create(PUSH_STATUS, status, MASTER_AUTH)
        push_id = created.object_id
        if plan.audience_id:
            await self._audience_used(plan.audience_id)
        due = now
        if plan.send_at is not None:
            due = plan.send_at - MAX_UTC_OFFSET if plan.local_time else plan.send_at
        try:
            await self.storage.push_enqueue([{
                "id": new_row_id(), "pushId": push_id, "kind": "query",
                "body": orjson.dumps(plan.to_json()).decode(), "attempts": 0, "notBefore": _ms(due)}])
        except Exception as exc:
            await self.fail(push_id, exc)
            raise
        self.queue.wake()
        return push_id

    async def _audience_used(self, audience_id: Any) -> None:
        """As Parse Server: the audience's lastUsed and timesUsed, errors ignored."""
        if not isinstance(audience_id, str):
            return
        with contextlib.suppress(ParseError):
            await self.writer.update(AUDIENCE, audience_id, {
                "lastUsed": encode_date(now_ms()), "timesUsed": {"__op": "Increment", "amount": 1}}, MASTER_AUTH)

    async def fail(self, push_id: str, error: Any) -> None:
        await fail_push(self.writer, push_id, error)


async def fail_push(writer: Writer, push_id: str, error: Any) -> None:
    """The status becomes ``failed`` with ``errorMessage`` as Parse Server writes an error."""
    if isinstance(error, ParseError):
        message: dict[str, Any] = {"code": error.code, "message": error.message}
    elif isinstance(error, dict):
        message = error
    else:
        message = {"message": str(error)}
    await writer.update(PUSH_STATUS, push_id, {"status": "failed", "errorMessage": message}, MASTER_AUTH)
