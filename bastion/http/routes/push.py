"""/push: send a push notification (master key, or any client with --allow-client-push), as Parse
Server's PushRouter: ``{"result": true}`` with the ``X-Parse-Push-Status-Id`` header."""

from __future__ import annotations

from bastion.domain.push import InvalidBadge
from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router
from bastion.http.routes.common import PERMISSION_DENIED, require_master


async def send(req: RequestContext) -> Response:
    if not req.services.settings.allow_client_push:
        require_master(req)
    if req.auth.is_read_only:
        # Sanitized from "read-only masterKey isn't allowed to send push notifications."
        raise ParseError(Code.OPERATION_FORBIDDEN, PERMISSION_DENIED)
    try:
        push_id = await req.services.push.send(req.body)
    except InvalidBadge:
        # Parse Server throws a string here, which its error handler answers as an uncaught error.
        return Response({"code": Code.INTERNAL_SERVER_ERROR, "message": "Internal server error."}, status=500)
    return Response({"result": True}, headers=[(b"x-parse-push-status-id", push_id.encode())])


def register(router: Router) -> None:
    router.add("POST", "/push", send)
