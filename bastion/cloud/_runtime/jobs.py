"""Cloud jobs: runs started by ``POST /jobs/:name`` or by a schedule, each tracked by a ``_JobStatus``.

As Parse Server's ``jobStatusHandler``: a run first creates its ``_JobStatus`` (``status`` "running",
``jobName``, ``source`` "api" or "schedule", an empty ACL so that only the master key reads it),
then runs in the background; ``request.message(text)`` sets the status's ``message``; at the end
``status`` becomes "succeeded" (a returned string becomes the message) or "failed" (the message is
the error's message) with ``finishedAt``. The updates of one run are written in order.

An ``async def`` job runs on the event loop; a plain ``def`` job runs in a thread of its own, so
that a long job does not hold up requests (``request.message`` works from there too).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import inspect
import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bastion.cloud._runtime.context import running
from bastion.cloud._runtime.registry import Registered
from bastion.cloud.objects import decode
from bastion.cloud.request import JobRequest
from bastion.core.auth import MASTER_AUTH, CallInfo
from bastion.core.system_classes import JOB_STATUS
from bastion.core.types import encode_date, now_ms
from bastion.errors import Code, ParseError

if TYPE_CHECKING:
    from bastion.cloud._runtime.data import CloudServer

log = logging.getLogger("bastion.cloud")

INVALID_JOB = "Invalid job."
INTERRUPTED = "The server stopped before the job finished."
SHUTDOWN_GRACE = 3.0  # seconds running jobs get to finish when the server stops
HEAD_START_S = 0.2  # seconds POST /jobs waits for a job to finish before it answers


class JobRun:
    """One run: its status object and the queue of writes to it."""

    def __init__(self, runner: JobRunner, object_id: str, name: str) -> None:
        self.runner = runner
        self.object_id = object_id
        self.name = name
        self.loop = asyncio.get_running_loop()
        self.task: asyncio.Task[None] | None = None
        self.finished = False
        self._tail: asyncio.Task[None] | None = None

    def message(self, text: Any) -> Any:
        """``request.message(text)``: sets the status's message. Returns an awaitable task on the
        event loop (awaiting it is optional) and a ``concurrent.futures.Future`` in a sync job's
        thread (``.result()`` waits for the write). Like Parse, ignores what is not a non-empty string."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            return self._enqueue({"message": text} if isinstance(text, str) and text else None)
        try:
            return asyncio.run_coroutine_threadsafe(self._message_from_thread(text), self.loop)
        except RuntimeError:  # the loop is gone: the server stopped
            log.warning("job %s: message after the server stopped: %s", self.name, text)
            done: concurrent.futures.Future[None] = concurrent.futures.Future()
            done.set_result(None)
            return done

    async def _message_from_thread(self, text: Any) -> None:
        await self.message(text)

    def _enqueue(self, update: dict[str, Any] | None) -> asyncio.Task[None]:
        """Writes ``update`` after every write queued before it (None: nothing to write)."""
        previous = self._tail

        async def write() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            if update is not None:
                await self.runner.write_status(self.object_id, update)

        task = self.loop.create_task(write())
        self._tail = task
        self.runner.keep(task)
        return task

    async def finish(self, status: str, message: str | None) -> None:
        if self.finished:
            return
        self.finished = True
        update: dict[str, Any] = {"status": status, "finishedAt": encode_date(now_ms())}
        if message is not None:
            update["message"] = message
        try:
            await self._enqueue(update)
        finally:
            self.runner.runs.pop(self.object_id, None)


class JobRunner:
    """Starts and tracks the jobs of one server process."""

    def __init__(self, server: CloudServer) -> None:
        self.server = server  # the job's data API calls (its thread too) go to this server
        self.runs: dict[str, JobRun] = {}
        self._tasks: set[asyncio.Future[Any]] = set()  # strong references until done

    def keep(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def job(self, name: Any) -> Registered:
        entry = self.server.runtime.registry.jobs.get(name) if isinstance(name, str) else None
        if entry is None:
            raise ParseError(Code.SCRIPT_FAILED, INVALID_JOB)
        return entry

    async def start(self, name: Any, params: dict[str, Any], *, info: CallInfo | None = None,
                    source: str = "api", object_id: str | None = None,
                    scheduled_at: datetime | None = None) -> str | None:
        """Creates the run's ``_JobStatus`` and starts the job; the status's objectId.

        ``params`` are REST JSON. With ``object_id`` (a scheduled run's claim), None when another
        process created that status first: the run is theirs.
        """
        entry = self.job(name)
        body: dict[str, Any] = {"jobName": name, "source": source, "status": "running", "ACL": {}}
        if params:
            body["params"] = params
        try:
            created = await self.server.writer.create(JOB_STATUS, body, MASTER_AUTH, object_id=object_id)
        except ParseError as exc:
            if exc.code == Code.DUPLICATE_VALUE and object_id:
                return None
            if "params" not in body:
                raise
            # Parameters the database cannot store as an object (keys with '$' or '.'): the run
            # goes ahead without them in its status, as Parse Server stores none.
            del body["params"]
            try:
                created = await self.server.writer.create(JOB_STATUS, body, MASTER_AUTH, object_id=object_id)
            except ParseError as again:
                if again.code == Code.DUPLICATE_VALUE and object_id:
                    return None
                raise
        job_id = created.object_id
        run = JobRun(self, job_id, name)
        request = self.server.runtime.request_for(JobRequest, MASTER_AUTH, info, job_name=name,
                                             params=decode(copy.deepcopy(params)), scheduled_at=scheduled_at)
        request.job_id = job_id
        request.message = run.message
        self.runs[job_id] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run, entry, request))
        self.keep(run.task)
        # Parse Server runs a job on the next tick, before its answer leaves, so a quick job's status
        # is final when the client reads it (SDK suites read it at once). A job gets that long here.
        await asyncio.wait({run.task}, timeout=HEAD_START_S)
        return job_id

    async def _run(self, run: JobRun, entry: Registered, request: JobRequest) -> None:
        with running(self.server):  # the job's data API calls (its thread too) go to this server
            await self._run_job(run, entry, request)

    async def _run_job(self, run: JobRun, entry: Registered, request: JobRequest) -> None:
        try:
            if entry.is_async:
                result = await entry.fn(request)
            else:
                result = await _in_thread(entry.fn, request, f"bastion-job-{run.name}")
                if inspect.isawaitable(result):
                    result = await result
        except asyncio.CancelledError:
            raise  # the server is stopping: shutdown() marks the run failed
        except ParseError as exc:
            await run.finish("failed", exc.message)
            return
        except Exception as exc:  # noqa: BLE001 - the status says what failed, the log has the traceback
            log.exception("cloud job %s failed", run.name)
            await run.finish("failed", str(exc) or type(exc).__name__)
            return
        await run.finish("succeeded", result if isinstance(result, str) and result else None)

    async def write_status(self, object_id: str, update: dict[str, Any]) -> None:
        try:
            await self.server.writer.update(JOB_STATUS, object_id, update, MASTER_AUTH)
        except Exception:  # noqa: BLE001 - a status write must not take the job down
            log.exception("could not update job status %s", object_id)

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Lets running jobs finish for ``grace`` seconds, then cancels them and marks them failed
        (a sync job's thread cannot be stopped: it is left to end with the process)."""
        tasks = [run.task for run in self.runs.values() if run.task is not None and not run.task.done()]
        if tasks:
            log.info("waiting up to %.0f s for %d running jobs", grace, len(tasks))
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        for run in list(self.runs.values()):
            log.warning("job %s (%s) interrupted by the server stopping", run.name, run.object_id)
            with suppress(Exception):
                await asyncio.wait_for(run.finish("failed", INTERRUPTED), timeout=2.0)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)


def _in_thread(fn: Callable[[Any], Any], request: Any, name: str) -> asyncio.Future[Any]:
    """``fn(request)`` in a daemon thread: a job the server stops is abandoned, never waited on."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, error = context.run(fn, request), None
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            result, error = None, exc
        with suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
