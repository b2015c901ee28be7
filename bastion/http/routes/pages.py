"""``/apps/…``: the pages behind the links of verification and password-reset mails (Parse Server 9's
PagesRouter). They need no keys: the application id is in the path and checked against ours.

GET answers a page; a form POST answers a page or redirects (303) to one; a POST sent by a script
(``X-Requested-With: XMLHttpRequest``) answers JSON, as Parse Server does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from bastion.errors import Code, ParseError, Unauthorized
from bastion.http import pages
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router

PREFIX = "/apps/"
_FORM = "application/x-www-form-urlencoded"


def decode_page_body(headers: dict[str, str], raw: bytes) -> dict[str, str] | None:
    """A page's body: an HTML form's fields (Parse Server reads no other body on these routes)."""
    if not raw or headers.get("content-type", "").split(";", 1)[0].strip().lower() != _FORM:
        return None
    try:
        fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise ParseError(Code.INVALID_JSON, "Invalid form body") from None
    fields.pop("_method", None)
    return fields


def _check_app(req: RequestContext, app_id: str | None) -> None:
    if not app_id or app_id != req.services.settings.app_id:
        raise Unauthorized()


def _defaults(req: RequestContext) -> dict[str, str | None]:
    return {"appId": req.services.settings.app_id, "appName": req.services.emails.options.app_name,
            "publicServerUrl": req.services.settings.public_url}


def _show(req: RequestContext, name: str, params: dict[str, str | None] | None = None) -> Response:
    return pages.page(name, {**(params or {}), **_defaults(req)}, req.services.settings.public_url)


def _redirect(req: RequestContext, name: str) -> Response:
    return pages.redirect(name, _defaults(req), req.services.settings.public_url)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _form(req: RequestContext) -> dict[str, Any]:
    return req.body if isinstance(req.body, dict) else {}


async def verify_email(req: RequestContext) -> Response:
    _check_app(req, req.path_params.get("appId"))
    token = _text(req.query.get("token"))
    if token and await req.services.emails.verify_email(token):
        return _show(req, "email_verification_success.html")
    return _show(req, "email_verification_link_invalid.html")


async def resend_verification_email(req: RequestContext) -> Response:
    _check_app(req, req.path_params.get("appId"))
    form = _form(req)
    username, token = _text(form.get("username")), _text(form.get("token"))
    if not username and not token:
        return _redirect(req, "email_verification_link_invalid.html")
    sent = await req.services.emails.resend_from_page(username, token)
    if sent or req.services.emails.options.email_verify_success_on_invalid_email:
        return _redirect(req, "email_verification_send_success.html")
    return _redirect(req, "email_verification_send_fail.html")


async def choose_password(req: RequestContext) -> Response:
    _check_app(req, req.query.get("appId"))
    return _show(req, "password_reset.html", {"token": req.query.get("token"),
                                              "username": req.query.get("username")})


async def request_password_reset_page(req: RequestContext) -> Response:
    """The link of the reset mail: the form, or the invalid-link page for a bad or expired token."""
    _check_app(req, req.path_params.get("appId"))
    token = _text(req.query.get("token"))
    if not token:
        return _show(req, "password_reset_link_invalid.html")
    try:
        await req.services.emails.check_reset_token(token)
    except ValueError:
        return _show(req, "password_reset_link_invalid.html")
    return _show(req, "password_reset.html", {"token": token})


async def reset_password(req: RequestContext) -> Response:
    """The form's POST: the new password for the token's user."""
    _check_app(req, req.path_params.get("appId"))
    form = _form(req)
    token, password = _text(form.get("token")), form.get("new_password")
    xhr = req.headers.get("x-requested-with", "").lower() == "xmlhttprequest"
    if not xhr and (not token or not password):
        return _redirect(req, "password_reset_link_invalid.html")
    if not token:
        raise ParseError(Code.OTHER_CAUSE, "Missing token")
    if not password:
        raise ParseError(Code.PASSWORD_MISSING, "Missing password")
    try:
        await req.services.emails.reset_password(token, str(password))
    except ValueError as error:
        if xhr:
            raise ParseError(Code.OTHER_CAUSE, str(error)) from None
        # The form again, with Parse's message (the token stays so the user can see what failed).
        return _show(req, "password_reset.html", {"token": token, "error": str(error)})
    if xhr:
        return Response("Password successfully reset")
    return _show(req, "password_reset_success.html")


async def static_page(req: RequestContext) -> Response:
    """``/apps/<page>.html``, where redirects land: filled with this app's values when the URL names it."""
    name = req.path_params["page"]
    if name not in pages.TEMPLATES:
        return pages.not_found()
    own = req.query.get("appId") == req.services.settings.app_id
    params = _defaults(req) if own else {}
    return pages.page(name, params, req.services.settings.public_url)


def register(router: Router) -> None:
    router.add("GET", "/apps/:appId/verify_email", verify_email, public=True)
    router.add("POST", "/apps/:appId/resend_verification_email", resend_verification_email, public=True)
    router.add("GET", "/apps/choose_password", choose_password, public=True)
    router.add("POST", "/apps/:appId/request_password_reset", reset_password, public=True)
    router.add("GET", "/apps/:appId/request_password_reset", request_password_reset_page, public=True)
    router.add("GET", "/apps/:page", static_page, public=True)
