"""/cloud_code/jobs: the job schedules Parse Dashboard lists and edits (master key).

Schedules are ``_JobSchedule`` objects; bastion/cloud/_runtime/scheduler.py runs them.
"""

from __future__ import annotations

from typing import Any

from bastion.core.system_classes import JOB_SCHEDULE
from bastion.core.types import now_iso
from bastion.domain.read import FindRequest
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import require_master


async def _schedules(req: RequestContext) -> list[dict[str, Any]]:
    found = await req.services.reader.find(JOB_SCHEDULE, FindRequest(), req.auth, info=req.call_info())
    return list(found["results"])


def _job_schedule(req: RequestContext) -> dict[str, Any]:
    """The body's ``job_schedule``, checked as Parse Server checks it; ``startAfter`` defaults to now."""
    schedule = req.data.get("job_schedule")
    if not isinstance(schedule, dict):
        raise ParseError(Code.INVALID_JSON, "job_schedule must be an object.")
    name = schedule.get("jobName")
    if name and (not isinstance(name, str) or name not in req.services.cloud.registry.jobs):
        raise ParseError(Code.INTERNAL_SERVER_ERROR, "Cannot Schedule a job that is not deployed")
    if "startAfter" not in schedule:
        schedule["startAfter"] = now_iso()
    return schedule


async def list_schedules(req: RequestContext) -> Response:
    require_master(req)
    return Response(await _schedules(req))


async def jobs_data(req: RequestContext) -> Response:
    require_master(req)
    schedules = await _schedules(req)
    return Response({"in_use": [s.get("jobName") for s in schedules],
                     "jobs": list(req.services.cloud.registry.jobs)})


async def create_schedule(req: RequestContext) -> Response:
    require_master(req)
    result = await req.services.writer.create(JOB_SCHEDULE, _job_schedule(req), req.auth, info=req.call_info())
    location = f"{req.services.settings.public_url}/classes/{JOB_SCHEDULE}/{result.object_id}"
    return Response(result.response, status=201, headers=[(b"location", location.encode())])


async def edit_schedule(req: RequestContext) -> Response:
    require_master(req)
    result = await req.services.writer.update(JOB_SCHEDULE, req.path_params["objectId"], _job_schedule(req),
                                              req.auth, info=req.call_info())
    # Parse Server wraps the update's answer once more: {"response": {"updatedAt": …}}.
    return Response({"response": result.response})


async def delete_schedule(req: RequestContext) -> Response:
    require_master(req)
    await req.services.writer.delete(JOB_SCHEDULE, req.path_params["objectId"], req.auth, info=req.call_info())
    return Response({})  # Parse Server answers an empty body


def register(router: Router) -> None:
    router.add("GET", "/cloud_code/jobs", list_schedules)
    router.add("GET", "/cloud_code/jobs/data", jobs_data)
    router.add("POST", "/cloud_code/jobs", create_schedule)
    router.add("PUT", "/cloud_code/jobs/:objectId", edit_schedule)
    router.add("DELETE", "/cloud_code/jobs/:objectId", delete_schedule)
