"""/events: Parse's analytics (AppOpened and custom events), handed to cloud code's track_event."""

from __future__ import annotations

from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router


async def track(req: RequestContext) -> Response:
    # As Parse Server's AnalyticsController: any client with the app's keys; the answer is {} whatever
    # the body and whatever the handler did (its failures only reach the log).
    await req.services.cloud.track_event(req.path_params.get("eventName", "AppOpened"), req.body, req.auth,
                                         req.call_info())
    return Response({})


def register(router: Router) -> None:
    router.add("POST", "/events/AppOpened", track)
    router.add("POST", "/events/:eventName", track)
