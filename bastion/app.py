"""Settings -> adapters -> services -> routes, and the ASGI entry point. Nothing else."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote as url_quote

import orjson

from bastion.adapters.storage.base import StorageAdapter
from bastion.config import Settings
from bastion.domain.query.parse import QueryLimits
from bastion.domain.read import Reader, ReadOptions
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.write import WriteOptions, Writer
from bastion.errors import Code, ParseError, Unauthorized
from bastion.http.context import (
    RequestContext,
    authenticate,
    decode_body,
    decode_headers,
    decode_query,
    extract_keys,
)
from bastion.http.responses import CORS_HEADERS, Response, error_response, not_found, send, unauthorized
from bastion.http.router import Router
from bastion.http.routes import aggregate, batch, classes, config, health, schemas

log = logging.getLogger("bastion")


def open_storage(url: str, query_timeout_ms: int = 30_000) -> StorageAdapter:
    """The storage adapter a database URL names (sqlite:///relative or sqlite:////absolute path)."""
    if url.startswith("sqlite:///"):
        from bastion.adapters.storage.sqlite import SqliteStorage

        return SqliteStorage(url[len("sqlite:///"):])
    if url.startswith(("postgresql://", "postgres://")):
        from bastion.adapters.storage.postgres import PostgresStorage

        # A runaway statement is cancelled by the database itself (and answered as a Parse error).
        return PostgresStorage(url, server_settings={"statement_timeout": str(query_timeout_ms)})
    raise ValueError(f"unsupported database URL: {url.split(':', 1)[0]}:// (use sqlite:/// or postgresql://)")


class Bastion:
    """The whole server as one ASGI application."""

    def __init__(self, settings: Settings, storage: StorageAdapter | None = None) -> None:
        self.settings = settings
        self.storage = storage or open_storage(settings.database_url, settings.query_timeout_ms)
        self.schemas = SchemaRegistry(self.storage)
        if hasattr(self.storage, "schema_lookup"):
            self.storage.schema_lookup = self.schemas.get
        limits = QueryLimits(max_or_breadth=settings.max_or_breadth, max_depth=settings.max_query_depth,
                             max_regex_length=settings.max_regex_length)
        self.reader = Reader(self.storage, self.schemas,
                             ReadOptions(max_limit=settings.max_limit, max_include_depth=settings.max_include_depth,
                                         query_limits=limits,
                                         allow_client_class_creation=settings.allow_client_class_creation),
                             self.file_url)
        self.writer = Writer(self.storage, self.schemas,
                             WriteOptions(allow_client_class_creation=settings.allow_client_class_creation))
        self.router = Router()
        for module in (health, classes, schemas, config, aggregate, batch):
            module.register(self.router)
        self.ready = False

    def file_url(self, name: str) -> str:
        return f"{self.settings.public_url}/files/{self.settings.app_id}/{url_quote(name)}"

    async def startup(self) -> None:
        await self.storage.open()
        await self.schemas.load()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        await self.storage.close()

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send_fn: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.handle_http(scope, receive, send_fn)
        elif kind == "lifespan":
            await self.lifespan(receive, send_fn)

    async def lifespan(self, receive: Any, send_fn: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    log.exception("start-up failed")
                    await send_fn({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send_fn({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send_fn({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(self, receive: Any) -> bytes:
        limit = self.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise ParseError(Code.OBJECT_TOO_LARGE, "The request body is too large.", status=413)
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

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
                           "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                       (b"content-length", b"2"), *CORS_HEADERS]})
            await send_fn({"type": "http.response.body", "body": b"OK"})
            return
        try:
            response = await self._handle(scope, receive, method, path)
        except ParseError as exc:
            response = error_response(exc)
        except Unauthorized as exc:
            response = unauthorized(exc.message)
        except Exception:  # noqa: BLE001 - the client gets a Parse error, the log gets the traceback
            log.exception("unhandled error on %s %s", method, path)
            response = Response({"code": Code.INTERNAL_SERVER_ERROR, "error": "Internal server error."}, status=500)
        await send(send_fn, response)

    async def _handle(self, scope: dict[str, Any], receive: Any, method: str, path: str) -> Response:
        raw = await self._read_body(receive)
        headers = decode_headers(scope["headers"])
        body = decode_body(raw)
        if method == "POST" and isinstance(body, dict) and body.get("_method"):
            override = body.pop("_method")
            if not isinstance(override, str) or len(override) > 16:
                raise ParseError(Code.INVALID_JSON, "Invalid _method.")
            method = override.upper()
        found = self.router.match(method, path)
        client = scope.get("client")
        req = RequestContext(self, method, path, headers, decode_query(scope.get("query_string", b"")), body,
                             found[1] if found else {}, client_ip=client[0] if client else None)
        if found and found[0].public:
            return await found[0].handler(req)
        # As Parse Server: keys are checked before routing, so a path or method nothing serves
        # answers 403 to a stranger and 404 to a client.
        req.keys, req.context = extract_keys(headers, body)
        req.auth = authenticate(req.keys, self.settings)
        if not found:
            return not_found(method, self.settings.mount + path)
        await self.schemas.refresh_if_stale()
        if req.keys.session_token and not req.auth.is_master:
            # Sessions arrive with users; until then every token is unknown. The master key wins
            # over a session token, as in Parse Server.
            raise ParseError(Code.INVALID_SESSION_TOKEN, "Invalid session token")
        return await found[0].handler(req)

    async def dispatch_internal(self, parent: RequestContext, method: str, path: str, body: Any) -> dict[str, Any]:
        """One request of a batch, with the batch's identity."""
        found = self.router.match(method, path)
        if not found:
            return {"error": {"code": Code.INVALID_JSON, "error": f"cannot route batch path {path[:100]}"}}
        route, params = found
        req = RequestContext(self, method, path, parent.headers, {}, body, params, parent.auth, parent.keys,
                             parent.context, parent.client_ip)
        try:
            response = await route.handler(req)
        except ParseError as exc:
            return {"error": exc.to_dict()}
        except Unauthorized as exc:
            # Parse Server reports an HTTP-level refusal inside a batch without a code.
            return {"error": {"error": exc.message}}
        return {"success": orjson.loads(response.body)}


def create_app(settings: Settings) -> Bastion:
    return Bastion(settings)
