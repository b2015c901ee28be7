"""The REST API over HTTP: mount, CORS preflight, body, keys, session, idempotency, route, answer.

``RestApi`` is what the ASGI entry (``bastion/app.py``) hands every HTTP request. Handlers get a
``RequestContext`` that carries the server's ``Services`` and this API (a batch dispatches its
sub-requests through it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import orjson

from bastion.domain.idempotency import REQUEST_ID_HEADER
from bastion.errors import Code, ParseError, RequestTimedOut, Unauthorized
from bastion.http import request_log
from bastion.http.context import (
    RequestContext,
    decode_body,
    decode_headers,
    decode_query,
    extract_keys,
    read_body,
)
from bastion.http.responses import (
    CORS_HEADERS,
    Response,
    error_response,
    not_found,
    send,
    spelled_headers,
    unauthorized,
)
from bastion.http.router import Route, Router
from bastion.http.routes import (
    account_emails,
    aggregate,
    analytics,
    batch,
    classes,
    cloud_code,
    config,
    config_class,
    files,
    functions,
    health,
    hooks,
    installations,
    jobs,
    logs,
    pages,
    push,
    push_audiences,
    roles,
    schemas,
    server_info,
    sessions,
    unavailable,
    users,
    web_sign_in,
)
from bastion.keys import authenticate

if TYPE_CHECKING:
    from bastion.services import Services

log = logging.getLogger("bastion")


def build_router() -> Router:
    """Every route of the REST API."""
    router = Router()
    # Users, sessions, installations and config_class first: they own /classes/_User,
    # /classes/_Session, /classes/_Installation and /classes/_GlobalConfig, as in Parse Server.
    for module in (health, users, sessions, installations, roles, config_class, classes, schemas, config,
                   aggregate, batch, account_emails, pages, files, functions, hooks, jobs, cloud_code, push,
                   push_audiences, server_info, unavailable, logs, analytics, web_sign_in):
        module.register(router)
    return router


class RestApi:
    def __init__(self, services: Services, router: Router | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.max_body_bytes = services.settings.max_body_bytes
        # --request-timeout: no request waits longer on anything (a frozen database above all).
        timeout_ms = services.settings.request_timeout
        self.request_timeout = timeout_ms / 1000 if timeout_ms > 0 else None
        self._timeout_logged_at = -10.0
        self._timeouts_unlogged = 0
        self.router = router or build_router()

    async def handle_http(self, scope: dict[str, Any], receive: Any, send_fn: Any) -> None:
        path: str = scope["path"]
        mount = self.settings.mount
        if mount and not (path == mount or path.startswith(mount + "/")):
            await send(send_fn, not_found(scope["method"], path))
            return
        path = path[len(mount):] or "/"
        method: str = scope["method"]
        if method == "OPTIONS":
            await send_fn({"type": "http.response.start", "status": 200,
                           "headers": [*spelled_headers([(b"content-type", b"text/plain; charset=utf-8"),
                                                         (b"content-length", b"2")]), *CORS_HEADERS]})
            await send_fn({"type": "http.response.body", "body": b"OK"})
            return
        verbose = request_log.enabled()  # the verbose log's level, tested once a request
        deadline = asyncio.timeout(self.request_timeout)
        try:
            async with deadline:
                response = await self._handle(scope, receive, method, path, verbose, deadline)
        except TimeoutError:
            if not deadline.expired():
                raise
            self._log_timeout(method, path)
            response = error_response(RequestTimedOut())
        except ParseError as exc:
            response = error_response(exc)
        except Unauthorized as exc:
            response = unauthorized(exc.message)
        except Exception:  # noqa: BLE001 - the client gets a Parse error, the log gets the traceback
            log.exception("unhandled error on %s %s", method, path)
            response = Response({"code": Code.INTERNAL_SERVER_ERROR, "error": "Internal server error."}, status=500)
        if verbose:
            request_log.response(method, _url(scope), response.status, response.body)
        await send(send_fn, response)

    def _log_timeout(self, method: str, path: str) -> None:
        """A line for a request past its deadline, at most one every 10 s (a frozen database would
        otherwise write one per request), with how many were not logged."""
        now = time.monotonic()
        if now - self._timeout_logged_at < 10:
            self._timeouts_unlogged += 1
            return
        more = f" (and {self._timeouts_unlogged} more since the last such line)" if self._timeouts_unlogged else ""
        log.warning("%s %s passed the request timeout (%d ms)%s", method, path[:200],
                    self.settings.request_timeout, more)
        self._timeout_logged_at, self._timeouts_unlogged = now, 0

    async def _handle(self, scope: dict[str, Any], receive: Any, method: str, path: str,
                      verbose: bool, deadline: asyncio.Timeout) -> Response:
        headers = decode_headers(scope["headers"])
        client = scope.get("client")
        found: tuple[Route, dict[str, str]] | Literal[False] | None = None
        routed = False  # whether ``found`` is the route of ``method`` (matched once per request)
        if method == "POST":
            # File uploads read their own body, chunk by chunk, straight into the files backend.
            found, routed = self.router.match(method, path), True
            if found and found[0].streams_body:
                # An upload's body may take long on a slow link: not bounded by --request-timeout.
                deadline.reschedule(None)
                return await found[0].handler(RequestContext(
                    self.services, self, method, path, headers, decode_query(scope.get("query_string", b"")), None, found[1],
                    client_ip=client[0] if client else None, receive=receive))
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body_bytes:
            # Refused from its announced length, unread (uvicorn drops what the client still sends).
            raise ParseError(Code.OBJECT_TOO_LARGE, "The request body is too large.", status=413)
        raw = await read_body(receive, self.max_body_bytes)
        # The pages of mailed links take HTML form bodies; everything else takes JSON.
        body = pages.decode_page_body(headers, raw) if path.startswith(pages.PREFIX) else decode_body(raw)
        if method == "POST" and isinstance(body, dict) and body.get("_method"):
            override = body.pop("_method")
            if not isinstance(override, str) or len(override) > 16:
                raise ParseError(Code.INVALID_JSON, "Invalid _method.")
            method, routed = override.upper(), False
        if not routed:
            found = self.router.match(method, path)
        if verbose:
            request_log.request(method, _url(scope), headers, body)
        req = RequestContext(self.services, self, method, path, headers, decode_query(scope.get("query_string", b"")), body,
                             found[1] if found else {}, client_ip=client[0] if client else None, receive=receive)
        if found and found[0].public:
            return await found[0].handler(req)
        # As Parse Server: keys are checked before routing, so a path or method nothing serves
        # answers 403 to a stranger and 404 to a client.
        req.keys, req.context = extract_keys(headers, body)
        req.auth = authenticate(req.keys, self.settings, req.client_ip)
        if not found:
            return not_found(method, self.settings.mount + path)
        if self.services.invalidation.rereading:  # another process's change, being read in
            await self.services.invalidation.settled()
        await self.services.schemas.refresh_if_stale()
        self.services.cloud.webhooks.refresh_if_stale()  # other processes' webhooks, in the background
        route = found[0]
        if req.keys.session_token and not req.auth.is_master:
            # The master key wins over a session token, as in Parse Server.
            try:
                req.auth = await self.services.users.authenticate(req.auth, req.keys.session_token)
            except ParseError as exc:
                # Sign-up and log-in make a new identity from credentials: SDKs send the current
                # user's token with them, which is stale once that user was deleted (Parse Server
                # still takes it while its user cache holds it), so there it is ignored.
                if not (route.new_identity and exc.code == Code.INVALID_SESSION_TOKEN):
                    raise
        if route.idempotent and self.services.idempotency is not None:
            # As Parse Server's promiseEnsureIdempotency: after the keys and the session, before the
            # handler (a batch's sub-requests go through dispatch_internal, which skips it).
            await self.services.idempotency.check(path, headers.get(REQUEST_ID_HEADER))
        return await route.handler(req)

    async def dispatch_internal(self, parent: RequestContext, method: str, path: str, body: Any) -> dict[str, Any]:
        """One request of a batch, with the batch's identity."""
        found = self.router.match(method, path)
        if not found:
            return {"error": {"code": Code.INVALID_JSON, "error": f"cannot route batch path {path[:100]}"}}
        route, params = found
        req = RequestContext(self.services, self, method, path, parent.headers, {}, body, params, parent.auth, parent.keys,
                             parent.context, parent.client_ip)
        try:
            response = await route.handler(req)
        except ParseError as exc:
            return {"error": exc.to_dict()}
        except Unauthorized as exc:
            # Parse Server reports an HTTP-level refusal inside a batch without a code.
            return {"error": {"error": exc.message}}
        return {"success": orjson.loads(response.body)}


def _url(scope: dict[str, Any]) -> str:
    query: bytes = scope.get("query_string") or b""
    path: str = scope["path"]
    return path + ("?" + query.decode("latin-1") if query else "")
