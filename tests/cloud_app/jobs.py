"""Cloud jobs used by tests/api/test_cloud_jobs.py."""

from __future__ import annotations

import asyncio
import time

from bastion import cloud


@cloud.job("jobEcho")
async def job_echo(request: cloud.Request) -> str:
    await request.message(f"params {sorted(request.params)} master={request.master} id={request.job_id}")
    return "done " + str(request.params.get("n"))


@cloud.job("jobMessages")
async def job_messages(request: cloud.Request) -> None:
    request.message("first")  # not awaited: still written, in order
    request.message("second")
    await asyncio.sleep(float(request.params.get("sleep", 0)))
    request.message("last")


@cloud.job("jobSync")
def job_sync(request: cloud.Request) -> str:
    # A plain def runs in a thread: message() gives a future there.
    request.message("sync started").result(timeout=5)
    time.sleep(0.05)
    return "sync ok"


@cloud.job("jobParseError")
def job_parse_error(request: cloud.Request) -> None:
    raise cloud.Error(142, "nope")


@cloud.job("jobCrash")
async def job_crash(request: cloud.Request) -> None:
    raise RuntimeError("boom")


@cloud.job("jobScheduled")
async def job_scheduled(request: cloud.Request) -> None:
    # The moment it was scheduled for: one status per moment proves each run happened once.
    when = request.scheduled_at.isoformat() if getattr(request, "scheduled_at", None) else "api"
    await request.message(f"slot {when} params {sorted(request.params)}")
