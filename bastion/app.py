"""Settings -> adapters -> services -> routes, and the ASGI entry point. Nothing else."""

from __future__ import annotations

import logging
from typing import Any, Literal
from urllib.parse import quote as url_quote

import orjson

from bastion.adapters.files import open_files
from bastion.adapters.mail import mailer_from_url
from bastion.adapters.pubsub import open_pubsub
from bastion.cloud._runtime.context import enter_running, leave_running
from bastion.cloud._runtime.jobs import JobRunner
from bastion.cloud._runtime.loader import load_cloud
from bastion.cloud._runtime.registry import CloudRegistry
from bastion.cloud._runtime.reload import CloudReloader
from bastion.cloud._runtime.runtime import CloudRuntime
from bastion.cloud._runtime.scheduler import Scheduler, parse_schedule
from bastion.config import Settings
from bastion.core.events import ObjectWritten
from bastion.core.permissions import Permissions
from bastion.core.query.parse import QueryLimits
from bastion.domain.account_emails import AccountEmailOptions, AccountEmails
from bastion.domain.account_policy import AccountPolicy, LockoutOptions, PasswordPolicyOptions
from bastion.domain.auth_providers import ProviderRegistry
from bastion.domain.files import DownloadRules, Files, UploadRules, parse_extension_patterns
from bastion.domain.idempotency import REQUEST_ID_HEADER, Idempotency, IdempotencyOptions, parse_paths
from bastion.domain.installations import Installations
from bastion.domain.push import PushService
from bastion.domain.push_queue import PushQueue, QueueOptions
from bastion.domain.read import Reader, ReadOptions
from bastion.domain.roles import Roles
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.script_log import ScriptLog, ScriptLogOptions
from bastion.domain.sessions import Sessions
from bastion.domain.user_auth_data import UserAuthData
from bastion.domain.users import Users
from bastion.domain.write import WriteOptions, Writer
from bastion.errors import Code, ParseError, Unauthorized
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
)
from bastion.invalidation import Invalidation
from bastion.keys import authenticate
from bastion.livequery import LiveQuery
from bastion.ports.storage import StorageAdapter

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


def email_options(settings: Settings) -> AccountEmailOptions:
    """Email verification and password reset options; ValueError for unusable values."""
    # passwordPolicy's reset-token options stand in for the flags of the same meaning left unset.
    policy = PasswordPolicyOptions.from_json(settings.password_policy) or PasswordPolicyOptions()
    return AccountEmailOptions(
        app_name=settings.app_name or settings.app_id or "Bastion",
        app_id=settings.app_id or "",
        public_url=settings.public_url,
        verify_user_emails=settings.verify_user_emails,
        prevent_login_with_unverified_email=settings.prevent_login_with_unverified_email,
        prevent_signup_with_unverified_email=settings.prevent_signup_with_unverified_email,
        email_verify_token_validity=settings.email_verify_token_validity,
        email_verify_token_reuse_if_valid=settings.email_verify_token_reuse_if_valid,
        email_verify_success_on_invalid_email=settings.email_verify_success_on_invalid_email,
        reset_token_validity=settings.password_reset_token_validity or policy.reset_token_validity_duration,
        reset_token_reuse_if_valid=settings.password_reset_token_reuse_if_valid or policy.reset_token_reuse_if_valid,
        reset_password_success_on_invalid_email=settings.password_reset_success_on_invalid_email
        if policy.reset_password_success_on_invalid_email is None else policy.reset_password_success_on_invalid_email,
        revoke_session_on_password_reset=settings.revoke_session_on_password_reset,
    )


def upload_rules(settings: Settings) -> UploadRules:
    """Parse Server's fileUpload options and maxUploadSize; ValueError for unusable values."""
    if settings.max_upload_bytes <= 0:
        raise ValueError("--max-upload-bytes must be positive")
    return UploadRules(enable_for_public=settings.file_upload_enable_for_public,
                       enable_for_anonymous_user=settings.file_upload_enable_for_anonymous_user,
                       enable_for_authenticated_user=settings.file_upload_enable_for_authenticated_user,
                       download=DownloadRules(public=settings.file_download_enable_for_public,
                                              anonymous_user=settings.file_download_enable_for_anonymous_user,
                                              authenticated_user=settings.file_download_enable_for_authenticated_user),
                       file_extensions=parse_extension_patterns(settings.file_extensions),
                       max_upload_bytes=settings.max_upload_bytes)


def check_files_settings(settings: Settings) -> None:
    """Raises ValueError when --files or the upload options cannot be used (checked at start)."""
    upload_rules(settings)
    open_files(settings.files, settings.data_dir, settings.database_url)


def check_email_settings(settings: Settings) -> None:
    """Raises ValueError when the mail URL or the email options cannot be used (checked at start)."""
    email_options(settings)
    mailer_from_url(settings.mail_url, settings.data_dir)


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
        # Class-level permissions and protected fields, one policy for every read and write path.
        self.permissions = Permissions(settings.protected_fields, settings.protected_fields_owner_exempt)
        self.reader = Reader(self.storage, self.schemas,
                             ReadOptions(max_limit=settings.max_limit, max_include_depth=settings.max_include_depth,
                                         query_limits=limits,
                                         allow_client_class_creation=settings.allow_client_class_creation),
                             self.file_url, self.permissions)
        self.writer = Writer(self.storage, self.schemas,
                             WriteOptions(allow_client_class_creation=settings.allow_client_class_creation),
                             self.permissions)
        self.sessions = Sessions(self.storage, self.schemas, settings.session_length)
        self.roles = Roles(self.storage, self.schemas)
        self.users = Users(self.storage, self.schemas, self.reader, self.writer, self.sessions, self.roles)
        self.installations = Installations(self.storage, self.schemas, self.writer)
        self.auth_providers = ProviderRegistry.from_options(
            settings.auth, enable_anonymous_users=settings.enable_anonymous_users)
        self.users.auth_data = UserAuthData(self.users, self.auth_providers)
        self.users.options.revoke_sessions_on_password_change = settings.revoke_session_on_password_reset
        self.users.options.enforce_private_users = settings.enforce_private_users
        self.mailer = mailer_from_url(settings.mail_url, settings.data_dir)
        self.emails = AccountEmails(self.storage, self.schemas, self.sessions, self.mailer, email_options(settings),
                                    self.users.hasher)
        self.users.emails = self.emails
        lockout = LockoutOptions.from_json(settings.account_lockout)
        password_policy = PasswordPolicyOptions.from_json(settings.password_policy)
        if lockout is not None or password_policy is not None:
            self.users.policy = self.emails.policy = AccountPolicy(self.storage, self.schemas, self.users.hasher,
                                                                   lockout, password_policy)
        self.files = Files(open_files(settings.files, settings.data_dir, settings.database_url),
                           upload_rules(settings), self.storage, self.schemas, self.file_url)
        self.writer.written.bind(self._written)
        # Tells other processes (through --pubsub) of changes to what every process caches.
        self.invalidation = Invalidation(self)
        # LiveQuery (WebSocket on the API's port): writes' after-commit events go through the pub/sub
        # adapter (in-process unless --pubsub), so every process's subscribers get them.
        self.pubsub = open_pubsub(settings.pubsub)
        # Cloud code's functions and triggers; always attached, so that a class without triggers
        # costs one dict lookup per read or write.
        self.cloud = CloudRuntime(self, load_cloud(settings.cloud) if settings.cloud else CloudRegistry())
        self.writer.cloud = self.reader.cloud = self.users.cloud = self.cloud
        # LiveQuery comes after the cloud runtime, whose LiveQuery triggers it runs.
        self.livequery = LiveQuery(
            app_id=settings.app_id, mount=settings.mount, live_query_classes=settings.live_query_classes,
            authenticate=lambda keys: authenticate(keys, settings), schemas=self.schemas, reader=self.reader,
            writer=self.writer, users=self.users, sessions=self.sessions, permissions=self.permissions,
            cloud=self.cloud, pubsub=self.pubsub)
        # --dev: the cloud code reloads when its files change (started with the server).
        self.cloud_reloader = CloudReloader(self.cloud, settings.cloud) if settings.dev and settings.cloud else None
        # Cloud jobs started by /jobs or by a schedule (one scheduler loop per process).
        self.jobs = JobRunner(self)
        self.scheduler = Scheduler(self, parse_schedule(settings.schedule), settings.schedule_tick_ms / 1000)
        # Push: POST /push checks and enqueues; the durable queue's worker (one per process) delivers.
        self.push = PushService(self)
        self.push_queue = PushQueue(self, QueueOptions(poll_s=settings.push_poll_ms / 1000),
                                    enabled=settings.push_worker, open_adapters=self._push_adapters)
        # --idempotency-paths: write requests with X-Parse-Request-Id run once; None (the default)
        # costs a request one attribute test.
        self.idempotency = (Idempotency(self.storage, self.schemas, self.writer,
                                        IdempotencyOptions(parse_paths(settings.idempotency_paths),
                                                           settings.idempotency_ttl))
                            if settings.idempotency_paths else None)
        # Parse Dashboard's Logs page: cloud-code lines and errors, kept in the database (secrets masked).
        self.script_log = ScriptLog(self.storage, ScriptLogOptions(max_entries=settings.script_log_max_entries,
                                                                   max_age_days=settings.script_log_max_age_days),
                                    secrets=[settings.master_key, settings.read_only_master_key,
                                             settings.webhook_key])
        self.router = Router()
        # Users, sessions, installations and config_class first: they own /classes/_User,
        # /classes/_Session, /classes/_Installation and /classes/_GlobalConfig, as in Parse Server.
        for module in (health, users, sessions, installations, roles, config_class, classes, schemas, config,
                       aggregate, batch, account_emails, pages, files, functions, hooks, jobs, cloud_code, push,
                       push_audiences, server_info, unavailable, logs, analytics):
            module.register(self.router)
        self.ready = False

    def _push_adapters(self) -> list[Any]:
        from bastion.adapters.push import open_push_adapters

        return open_push_adapters(self.settings, self.settings.data_dir)

    def _written(self, event: ObjectWritten) -> None:
        """Caches that hold what a write may have changed."""
        class_name = event.class_name
        if class_name == "_Role":
            self.roles.invalidate()
        elif class_name == "_Session":
            self.sessions.forget()
        self.invalidation.written(class_name)

    def file_url(self, name: str) -> str:
        return f"{self.settings.public_url}/files/{self.settings.app_id}/{url_quote(name)}"

    async def startup(self) -> None:
        await self.storage.open()
        await self.script_log.start()
        await self.schemas.load()
        # As Parse Server at start: _User and _Role exist (with their unique indexes) from the first
        # moment, so /schemas and the Dashboard list them on a new database.
        await self.schemas.ensure_classes(("_User", "_Role"))
        await self.cloud.webhooks.load()
        if self.idempotency is not None:
            await self.idempotency.prepare()
        await self.files.adapter.open()
        self.scheduler.check()
        self.scheduler.start()
        await self.push_queue.start()
        if self.cloud_reloader is not None:
            self.cloud_reloader.start()
        await self.pubsub.open()
        await self.livequery.start()
        await self.invalidation.start(self.pubsub)
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        await self.livequery.stop()  # clients are told to reconnect (close 1012)
        await self.invalidation.stop()
        if self.cloud_reloader is not None:
            await self.cloud_reloader.stop()
        await self.scheduler.stop()
        await self.push_queue.stop()
        await self.jobs.shutdown()
        await self.emails.drain()
        if self.idempotency is not None:
            await self.idempotency.close()
        await self.auth_providers.aclose()
        await self.cloud.webhooks.close()
        await self.files.adapter.close()
        await self.pubsub.close()
        await self.script_log.stop()
        await self.storage.close()

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send_fn: Any) -> None:
        # Cloud code's data API, and the tasks started from here (jobs, the scheduler), act
        # through this app's runtime, whatever other app runs in the process.
        # (Set and reset by hand: a generator context manager costs a request several calls.)
        token = enter_running(self.cloud)
        try:
            kind = scope["type"]
            if kind == "http":
                await self.handle_http(scope, receive, send_fn)
            elif kind == "websocket":
                await self.livequery.serve(scope, receive, send_fn)
            elif kind == "lifespan":
                await self.lifespan(receive, send_fn)
        finally:
            leave_running(token)

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
        return await read_body(receive, self.settings.max_body_bytes)

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
        try:
            response = await self._handle(scope, receive, method, path)
        except ParseError as exc:
            response = error_response(exc)
        except Unauthorized as exc:
            response = unauthorized(exc.message)
        except Exception:  # noqa: BLE001 - the client gets a Parse error, the log gets the traceback
            log.exception("unhandled error on %s %s", method, path)
            response = Response({"code": Code.INTERNAL_SERVER_ERROR, "error": "Internal server error."}, status=500)
        if request_log.enabled():
            request_log.response(method, _url(scope), response.status, response.body)
        await send(send_fn, response)

    async def _handle(self, scope: dict[str, Any], receive: Any, method: str, path: str) -> Response:
        headers = decode_headers(scope["headers"])
        client = scope.get("client")
        found: tuple[Route, dict[str, str]] | Literal[False] | None = None
        routed = False  # whether ``found`` is the route of ``method`` (matched once per request)
        if method == "POST":
            # File uploads read their own body, chunk by chunk, straight into the files backend.
            found, routed = self.router.match(method, path), True
            if found and found[0].streams_body:
                return await found[0].handler(RequestContext(
                    self, method, path, headers, decode_query(scope.get("query_string", b"")), None, found[1],
                    client_ip=client[0] if client else None, receive=receive))
        raw = await self._read_body(receive)
        # The pages of mailed links take HTML form bodies; everything else takes JSON.
        body = pages.decode_page_body(headers, raw) if path.startswith(pages.PREFIX) else decode_body(raw)
        if method == "POST" and isinstance(body, dict) and body.get("_method"):
            override = body.pop("_method")
            if not isinstance(override, str) or len(override) > 16:
                raise ParseError(Code.INVALID_JSON, "Invalid _method.")
            method, routed = override.upper(), False
        if not routed:
            found = self.router.match(method, path)
        if request_log.enabled():
            request_log.request(method, _url(scope), headers, body)
        req = RequestContext(self, method, path, headers, decode_query(scope.get("query_string", b"")), body,
                             found[1] if found else {}, client_ip=client[0] if client else None, receive=receive)
        if found and found[0].public:
            return await found[0].handler(req)
        # As Parse Server: keys are checked before routing, so a path or method nothing serves
        # answers 403 to a stranger and 404 to a client.
        req.keys, req.context = extract_keys(headers, body)
        req.auth = authenticate(req.keys, self.settings)
        if not found:
            return not_found(method, self.settings.mount + path)
        await self.schemas.refresh_if_stale()
        self.cloud.webhooks.refresh_if_stale()  # other processes' webhooks, in the background
        route = found[0]
        if req.keys.session_token and not req.auth.is_master:
            # The master key wins over a session token, as in Parse Server.
            try:
                req.auth = await self.users.authenticate(req.auth, req.keys.session_token)
            except ParseError as exc:
                # Sign-up and log-in make a new identity from credentials: SDKs send the current
                # user's token with them, which is stale once that user was deleted (Parse Server
                # still takes it while its user cache holds it), so there it is ignored.
                if not (route.new_identity and exc.code == Code.INVALID_SESSION_TOKEN):
                    raise
        if route.idempotent and self.idempotency is not None:
            # As Parse Server's promiseEnsureIdempotency: after the keys and the session, before the
            # handler (a batch's sub-requests go through dispatch_internal, which skips it).
            await self.idempotency.check(path, headers.get(REQUEST_ID_HEADER))
        return await route.handler(req)

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


def _url(scope: dict[str, Any]) -> str:
    query: bytes = scope.get("query_string") or b""
    path: str = scope["path"]
    return path + ("?" + query.decode("latin-1") if query else "")


def create_app(settings: Settings) -> Bastion:
    return Bastion(settings)
