"""Parse Dashboard's Logs page (``GET /scriptlog``): this deployment's recent log lines, kept in the
database so that every process (``--workers N``, several servers on one database) reads them all.

Which lines: what Parse Server's Logs page shows, its cloud-code log and its errors:

- every line at INFO and above of ``bastion.cloud``: cloud functions run and failed, triggers run and
  failed (the lines ``cloud/_runtime/run_log.py`` writes in Parse Server's words), jobs, and what cloud code
  writes with ``request.log``;
- every warning and error of any ``bastion`` logger;
- at ``--log-level verbose`` (or ``debug``), every request and answer (``bastion.requests``: Parse
  Server's "REQUEST for [GET] /parse/…" and "RESPONSE from …" lines, which its ``verbose`` keeps).

The configured ``--log-level`` applies first, as Parse Server's logLevel does: at ``warning`` no INFO
line is logged, so none is kept. Other INFO lines (start-up, mail and push chatter, which may carry
links with tokens) and other libraries' lines are not kept.

Secrets never reach the table: structured fields go through ``Redactor.value`` and the message and
traceback through ``Redactor.text`` (passwords, session tokens, authData, the configured keys).

A ``logging.Handler`` only appends to a bounded in-memory buffer (past its bound new lines are
counted and dropped); one background task per process writes the buffer in batches and trims the
table to ``--script-log-max-entries`` lines and ``--script-log-max-age-days``. A failed write drops
its batch and is reported once on ``bastion.scriptlog``, a logger this handler ignores, so logging
never fails a request and never feeds itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from bastion.core.redaction import Redactor
from bastion.logs import REQUESTS_LOGGER, VERBOSE

if TYPE_CHECKING:
    from bastion.ports.tables import ScriptLogTable

log = logging.getLogger("bastion.scriptlog")  # its own lines are never kept (no feedback loop)
# Set while this task writes the log: what the write itself logs (a driver's or pool's error) is not
# kept, or a failing write would log a line that makes the next write, and so on.
_WRITING: contextvars.ContextVar[bool] = contextvars.ContextVar("bastion_scriptlog_writing", default=False)

DAY_MS = 24 * 3600 * 1000
DEFAULT_SIZE = 10  # Parse Server's LoggerController: size (or n) defaults to 10
MAX_SIZE = 10_000  # lines one answer holds at most (or --script-log-max-entries, when more)
MAX_MESSAGE = 10_000  # characters of a message or traceback kept; longer ones are cut
TRUNCATED = "... (truncated)"


@dataclass(slots=True)
class ScriptLogOptions:
    max_entries: int = 10_000  # lines kept in the table (0: nothing is kept)
    max_age_days: float = 7.0  # lines older than this are deleted (Parse's default window is 7 days)
    flush_s: float = 0.5  # how long a line may wait in memory before it is written
    buffer_max: int = 5_000  # lines waiting at most; past it new lines are dropped and counted
    trim_every_s: float = 30.0


def level_name(levelno: int) -> str:
    """Parse Server's (winston's) level names."""
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= VERBOSE:
        return "verbose"
    return "debug"


def kept(record: logging.LogRecord) -> bool:
    """Whether a log line belongs on the Logs page (see the module's docstring)."""
    name = record.name
    if not (name == "bastion" or name.startswith("bastion.")) or name == log.name:
        return False
    if record.levelno >= logging.WARNING:
        return True
    if name == REQUESTS_LOGGER:
        return record.levelno >= VERBOSE
    return record.levelno >= logging.INFO and (name == "bastion.cloud" or name.startswith("bastion.cloud."))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + TRUNCATED


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class ScriptLogHandler(logging.Handler):
    """Turns kept records into entries and hands them to the store's buffer; never raises."""

    def __init__(self, store: ScriptLog) -> None:
        super().__init__(VERBOSE)
        self.store = store

    def emit(self, record: logging.LogRecord) -> None:
        if _WRITING.get() or not kept(record):
            return
        try:
            self.store.add(self.store.entry(record))
        except Exception:  # noqa: BLE001 - a log line that cannot be kept is not worth a failed request
            self.store.dropped += 1


class ScriptLog:
    def __init__(self, storage: ScriptLogTable, options: ScriptLogOptions | None = None,
                 secrets: list[str | None] | None = None) -> None:
        self.storage = storage
        self.options = options or ScriptLogOptions()
        self.redactor = Redactor(secrets or [])
        self.handler = ScriptLogHandler(self)
        self.dropped = 0  # lines lost to a full buffer, a bad record or a failed write
        self._buffer: deque[tuple[int, str, str]] = deque()
        self._lock = threading.Lock()  # records may come from worker threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()
        self._last_trim = 0.0
        self._written_since_trim = 0
        self._backoff = 0.0  # seconds the next write waits after a failed one (0: the last one worked)
        self._retry_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.options.max_entries > 0

    # --- recording ------------------------------------------------------------------------------

    def entry(self, record: logging.LogRecord) -> tuple[int, str, str]:
        """(time in ms, level, entry JSON): Parse's shape, {level, message, timestamp, …fields}."""
        ms = int(record.created * 1000)
        level = level_name(record.levelno)
        fields = getattr(record, "parse", None)
        entry: dict[str, Any] = self.redactor.value(fields) if isinstance(fields, dict) else {}
        entry["level"] = level
        entry["message"] = _cut(self.redactor.text(record.getMessage()))
        entry["timestamp"] = iso_ms(ms)
        if record.exc_info:
            formatter = self.handler.formatter or logging.Formatter()
            entry["stack"] = _cut(self.redactor.text(formatter.formatException(record.exc_info)))
        return ms, level, orjson.dumps(entry, default=str, option=orjson.OPT_SORT_KEYS).decode()

    def add(self, row: tuple[int, str, str]) -> None:
        with self._lock:
            if len(self._buffer) >= self.options.buffer_max:
                self.dropped += 1
                return
            self._buffer.append(row)
            first = len(self._buffer) == 1
        if first and self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed while the server stopped
                self._loop.call_soon_threadsafe(self._wake.set)

    # --- the writer task ------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.enabled:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        logging.getLogger().addHandler(self.handler)
        self._task = asyncio.create_task(self._run(), name="bastion-scriptlog")

    async def stop(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self.dropped:
            log.warning("%d log lines were not kept for the Logs page (buffer full or database failing)",
                        self.dropped)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Lines that come together are written together; after a failed write, later.
            await asyncio.sleep(max(self.options.flush_s, self._retry_at - time.monotonic()))
            await self.flush()
            if self._buffer:  # held back, or logged while the batch was written
                self._wake.set()
            # Trimmed every trim_every_s, or sooner once a tenth of the bound was written since.
            if (time.monotonic() - self._last_trim >= self.options.trim_every_s
                    or self._written_since_trim >= max(1, self.options.max_entries // 10)):
                await self.trim()

    async def flush(self) -> None:
        """Write what waits in the buffer (in one batch). A failure drops the batch, is reported once
        while the writes keep failing, and holds the next write back (doubling up to a minute)."""
        async with self._flushing:
            if time.monotonic() < self._retry_at:
                return
            with self._lock:
                rows = list(self._buffer)
                self._buffer.clear()
            if not rows:
                return
            token = _WRITING.set(True)
            try:
                await self.storage.log_append(rows)
            except Exception as exc:  # noqa: BLE001 - the log must never fail the server
                self.dropped += len(rows)
                if not self._backoff:
                    log.warning("could not write %d log lines to the database: %s", len(rows), type(exc).__name__)
                self._backoff = min(max(self._backoff * 2, 1.0), 60.0)
                self._retry_at = time.monotonic() + self._backoff
            else:
                self._backoff = 0.0
                self._written_since_trim += len(rows)
            finally:
                _WRITING.reset(token)

    async def trim(self) -> None:
        self._last_trim = time.monotonic()
        self._written_since_trim = 0
        before = int(time.time() * 1000 - self.options.max_age_days * DAY_MS)
        token = _WRITING.set(True)
        try:
            await self.storage.log_trim(before, self.options.max_entries)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not trim the stored log lines: %s", type(exc).__name__)
        finally:
            _WRITING.reset(token)

    # --- reading (GET /scriptlog) ---------------------------------------------------------------

    async def read(self, query: dict[str, str]) -> list[str]:
        """The entries (JSON text) Parse Server's LogsRouter answers for these query parameters."""
        since, until, size, descending, level = read_options(query, self.options.max_entries)
        if not self.enabled:
            return []
        await self.flush()  # this process's own latest lines are part of the answer
        return await self.storage.log_read(since, until, level, size, descending)


def read_options(query: dict[str, str], max_size: int) -> tuple[int, int, int, bool, str | None]:
    """Parse Server's reading of /scriptlog's parameters, which never refuses one: an unreadable date
    is the default (from: a week ago, until: now), ``n`` wins over ``size`` (default 10), only
    ``order=desc`` (the default) is newest first, and only ``level=error`` narrows (to errors)."""
    now = int(time.time() * 1000)
    since = _date_ms(query.get("from"))
    until = _date_ms(query.get("until"))
    size = _size(query.get("n") or query.get("size"))
    order = query.get("order") or "desc"
    level = "error" if query.get("level") == "error" else None
    return (now - 7 * DAY_MS if since is None else since, now if until is None else until,
            min(size, max(max_size, MAX_SIZE)), order == "desc", level)


def _date_ms(text: str | None) -> int | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return int(moment.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        return None


def _size(text: str | None) -> int:
    try:
        value = float(text) if text else 0.0
    except ValueError:
        return DEFAULT_SIZE
    if not math.isfinite(value) or value < 1:
        return DEFAULT_SIZE
    return int(value)
