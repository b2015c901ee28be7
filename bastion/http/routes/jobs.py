"""/jobs: start a cloud job (master key); it runs in the background, tracked by a _JobStatus."""

from __future__ import annotations

from bastion.core.names import check_no_denylisted_keys
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import require_writable_master


async def start(req: RequestContext) -> Response:
    # As Parse Server: master key only (403), never the read-only one (119).
    require_writable_master(req)
    body = req.body if isinstance(req.body, dict) else {}
    name = req.path_params.get("jobName") or body.get("jobName")
    # The parameters are the body's fields and the URL's query parameters (these win), jobName included.
    params = {**body, **req.query}
    check_no_denylisted_keys(params)
    job_id = await req.services.jobs.start(name, params, info=req.call_info())
    return Response({}, headers=[(b"x-parse-job-status-id", (job_id or "").encode())])


def register(router: Router) -> None:
    router.add("POST", "/jobs/:jobName", start, idempotent=True)  # not POST /jobs, as in Parse Server
    router.add("POST", "/jobs", start)
