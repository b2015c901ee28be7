"""``/requestPasswordReset`` and ``/verificationEmailRequest``: ask for a mail with a link."""

from __future__ import annotations

from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router


async def request_password_reset(req: RequestContext) -> Response:
    await req.services.emails.request_password_reset(req.data)
    return Response({})


async def verification_email_request(req: RequestContext) -> Response:
    await req.services.emails.request_verification_email(req.data)
    return Response({})


def register(router: Router) -> None:
    router.add("POST", "/requestPasswordReset", request_password_reset)
    router.add("POST", "/verificationEmailRequest", verification_email_request)
