"""``/auth/<provider>/start``, ``/auth/<provider>/callback`` and ``POST /auth/session``: sign-in for web
apps through the server (``bastion/domain/web_sign_in.py``).

``start`` and ``callback`` are browser navigations: no keys (the browser cannot send headers), the
provider's ``web`` options name the only URLs the flow ends at. ``POST /auth/session`` is the app's
own request, with its keys.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from bastion.errors import Code, ParseError
from bastion.http.context import RequestContext
from bastion.http.responses import Response
from bastion.http.router import Router

# The flow's answers carry secrets in their URLs: not cached, not sent on as a Referer.
_PRIVATE = [(b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer"),
            (b"x-content-type-options", b"nosniff")]
_TEXT = (b"content-type", b"text/plain; charset=utf-8")


def _redirect(location: str, cookie: bytes | None = None) -> Response:
    headers = [(b"location", location.encode("ascii")), *_PRIVATE]
    if cookie is not None:
        headers.append((b"set-cookie", cookie))
    return Response(raw=b"Found. Redirecting.", status=302, headers=headers, content_type=_TEXT)


def _cookie(callback_url: str, name: str, value: str, max_age: int) -> bytes:
    """Sent back to the callback only (its path), over HTTPS when the callback is; Lax, so that the
    provider's top-level redirect to the callback carries it."""
    callback = urlsplit(callback_url)
    path = callback.path or "/"
    secure = "; Secure" if callback.scheme == "https" else ""
    return f"{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}".encode("ascii")


def _cookies(req: RequestContext) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(req.headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


async def start(req: RequestContext) -> Response:
    web = req.services.web_sign_in
    provider = req.path_params["provider"]
    redirect = req.query.get("redirect")
    token = req.headers.get("x-parse-session-token")
    if token:
        # Linking: the signed-in app's fetch gets a single-use URL to send the browser to.
        return Response({"url": await web.link_ticket(provider, redirect, token)}, headers=list(_PRIVATE))
    started = await web.start(provider, redirect, req.query.get("ticket"))
    return _redirect(started.url, _cookie(started.callback_url, started.cookie_name, started.cookie_value, 600))


async def callback(req: RequestContext) -> Response:
    finished = await req.services.web_sign_in.callback(req.path_params["provider"], req.query, _cookies(req),
                                                       req.call_info())
    return _redirect(finished.location, _cookie(finished.callback_url, finished.cookie_name, "", 0))


async def session(req: RequestContext) -> Response:
    code = req.data.get("code")
    if code is None:
        raise ParseError(Code.OBJECT_NOT_FOUND, "The sign-in code is invalid or expired.")
    return Response(await req.services.web_sign_in.redeem(code), headers=list(_PRIVATE))


def register(router: Router) -> None:
    router.add("POST", "/auth/session", session, new_identity=True)
    router.add("GET", "/auth/:provider/start", start, public=True)
    router.add("GET", "/auth/:provider/callback", callback, public=True)
