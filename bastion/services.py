"""The composition root: ``build_services(settings)`` knows every constructor.

Each service takes, in its constructor, the narrow pieces it uses; nothing is patched after it is
built. The order below is the dependency order: the cloud runtime (the pipelines' ``Triggers``)
before the pipelines, the pipelines before the cloud code's data API (``CloudServer``), LiveQuery
before the invalidation that tells it of other processes' changes. ``Services`` is the record the
HTTP handlers read their services from; it holds no behaviour of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote as url_quote

from bastion.adapters.files import open_files
from bastion.adapters.mail import mailer_from_url
from bastion.adapters.pubsub import open_pubsub
from bastion.cloud._runtime.data import CloudServer
from bastion.cloud._runtime.file_triggers import CloudFileTriggers
from bastion.cloud._runtime.jobs import JobRunner
from bastion.cloud._runtime.loader import load_cloud
from bastion.cloud._runtime.registry import CloudRegistry
from bastion.cloud._runtime.reload import CloudReloader
from bastion.cloud._runtime.runtime import CloudRuntime
from bastion.cloud._runtime.scheduler import Scheduler, parse_schedule
from bastion.config import Settings
from bastion.core.auth import MASTER_AUTH
from bastion.core.permissions import Permissions
from bastion.core.query.parse import QueryLimits
from bastion.core.system_classes import ROLE, USER
from bastion.domain.account_emails import AccountEmailOptions, AccountEmails
from bastion.domain.account_policy import AccountPolicy, LockoutOptions, PasswordPolicyOptions
from bastion.domain.auth_challenges import ChallengeStore
from bastion.domain.auth_providers import ProviderRegistry
from bastion.domain.auth_steps import UserView
from bastion.domain.file_rules import DownloadRules, UploadRules, parse_extension_patterns
from bastion.domain.files import Files
from bastion.domain.idempotency import Idempotency, IdempotencyOptions, parse_paths
from bastion.domain.installations import Installations
from bastion.domain.objects import Objects
from bastion.domain.passwords import PasswordHasher
from bastion.domain.push import PushService
from bastion.domain.push_queue import PushQueue, QueueOptions
from bastion.domain.read import Reader, ReadOptions
from bastion.domain.roles import Roles
from bastion.domain.schema_registry import SchemaRegistry
from bastion.domain.script_log import ScriptLog, ScriptLogOptions
from bastion.domain.sessions import Sessions
from bastion.domain.users import UserOptions, Users
from bastion.domain.web_sign_in import WebSignIn
from bastion.domain.write import WriteOptions, Writer
from bastion.invalidation import Invalidation
from bastion.keys import authenticate
from bastion.livequery import Interest, LiveQuery, parse_class_list
from bastion.ports.mail import Mailer
from bastion.ports.pubsub import PubSub
from bastion.ports.storage import StorageAdapter


def open_storage(url: str, query_timeout_ms: int = 30_000, request_timeout_ms: int = 0) -> StorageAdapter:
    """The storage adapter a database URL names (sqlite:///relative or sqlite:////absolute path)."""
    if url.startswith("sqlite:///"):
        from bastion.adapters.storage.sqlite import SqliteStorage

        # Another process's lock is waited for at most 30 s, and well within the request's deadline:
        # the request is then answered "Database unavailable" (503) and its write is not left waiting.
        busy_ms = min(30_000, request_timeout_ms // 2) if request_timeout_ms > 0 else 30_000
        return SqliteStorage(url[len("sqlite:///"):], busy_timeout=busy_ms / 1000)
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


class FileUrls:
    """A stored file's public URL: ``<public url>/files/<app id>/<name>``."""

    def __init__(self, public_url: str, app_id: str | None) -> None:
        self.prefix = f"{public_url}/files/{app_id}/"

    def __call__(self, name: str) -> str:
        return self.prefix + url_quote(name)


@dataclass(slots=True, kw_only=True)
class Services:
    """Every service of one server, built once by ``build_services``."""

    settings: Settings
    storage: StorageAdapter
    schemas: SchemaRegistry
    permissions: Permissions
    reader: Reader
    writer: Writer
    sessions: Sessions
    roles: Roles
    users: Users
    installations: Installations
    objects: Objects
    auth_providers: ProviderRegistry
    mailer: Mailer
    emails: AccountEmails
    files: Files
    pubsub: PubSub
    cloud: CloudRuntime
    cloud_server: CloudServer
    cloud_reloader: CloudReloader | None
    jobs: JobRunner
    scheduler: Scheduler
    push_queue: PushQueue
    push: PushService
    livequery: LiveQuery
    invalidation: Invalidation
    idempotency: Idempotency | None
    script_log: ScriptLog
    file_url: FileUrls
    web_sign_in: WebSignIn

    async def start(self) -> None:
        await self.storage.open()
        # Listening before anything is read: a change another process makes while this one starts
        # is either in what it reads or told to it afterwards, never missed.
        await self.pubsub.open()
        await self.invalidation.start(self.pubsub)
        await self.script_log.start()
        await self.schemas.load()
        # As Parse Server at start: _User and _Role exist (with their unique indexes) from the first
        # moment, so /schemas and the Dashboard list them on a new database.
        await self.schemas.ensure_classes((USER, ROLE))
        await self.cloud.webhooks.load()
        if self.idempotency is not None:
            await self.idempotency.prepare()
        await self.files.adapter.open()
        self.scheduler.check()
        self.scheduler.start()
        await self.push_queue.start()
        if self.cloud_reloader is not None:
            self.cloud_reloader.start()
        await self.livequery.start()
        self.invalidation.watch_interest()

    async def stop(self) -> None:
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


def build_services(settings: Settings, storage: StorageAdapter | None = None) -> Services:
    """Every service of a server on ``settings`` (``storage`` replaces the one the URL names)."""
    storage = storage or open_storage(settings.database_url, settings.query_timeout_ms, settings.request_timeout)
    file_url = FileUrls(settings.public_url, settings.app_id)
    schemas = SchemaRegistry(storage)
    # Cloud code's functions and triggers: always there, so that a class without triggers costs
    # one set lookup per read or write.
    cloud = CloudRuntime(load_cloud(settings.cloud) if settings.cloud else CloudRegistry(), hooks_table=storage,
                         webhook_key=settings.webhook_key)
    limits = QueryLimits(max_or_breadth=settings.max_or_breadth, max_depth=settings.max_query_depth,
                         max_regex_length=settings.max_regex_length)
    # Class-level permissions and protected fields, one policy for every read and write path.
    permissions = Permissions(settings.protected_fields, settings.protected_fields_owner_exempt)
    # authData providers (Parse's ``auth`` option and the adapters cloud code registered), and what
    # callers see of a user's authData through them.
    # Adapters may mail (one-time codes) or call a cloud function (MFA's SMS hook).
    mailer = mailer_from_url(settings.mail_url, settings.data_dir)

    async def run_cloud_function(name: str, params: dict[str, Any]) -> Any:
        return await cloud.run_function(name, params, MASTER_AUTH, None)
    async def users_with_email(email: str, provider: str | None = None) -> list[dict[str, Any]]:
        return await users.with_email(email, provider)  # users is made below, before any request
    # Single-use, expiring sign-in challenges (passkeys, mailed codes, the web flow), in the database.
    challenges = ChallengeStore(storage, schemas)
    auth_providers = ProviderRegistry.from_options(
        settings.auth, enable_anonymous_users=settings.enable_anonymous_users,
        enable_insecure_auth_adapters=settings.enable_insecure_auth_adapters, custom=cloud.registry.auth_adapters,
        services={"mailer": mailer, "run_cloud_function": run_cloud_function, "challenges": challenges,
                  "users_with_email": users_with_email,
                  "app_name": settings.app_name or settings.app_id or "Bastion",
                  "public_url": settings.public_url})
    user_view = UserView(auth_providers)
    reader = Reader(storage, schemas,
                    ReadOptions(max_limit=settings.max_limit, max_include_depth=settings.max_include_depth,
                                query_limits=limits, allow_client_class_creation=settings.allow_client_class_creation),
                    file_url, permissions, triggers=cloud, sanitizers={USER: user_view})
    # The classes LiveQuery clients subscribe to anywhere: only a write to one of them reads the
    # object's state before it changes (for the event's ``original``).
    interest = Interest(parse_class_list(settings.live_query_classes))
    writer = Writer(storage, schemas, WriteOptions(allow_client_class_creation=settings.allow_client_class_creation),
                    permissions, reader=reader, triggers=cloud, wants_changes=interest)
    sessions = Sessions(storage, schemas, settings.session_length)
    roles = Roles(storage, schemas)
    hasher = PasswordHasher()
    lockout = LockoutOptions.from_json(settings.account_lockout)
    password_policy = PasswordPolicyOptions.from_json(settings.password_policy)
    policy = (AccountPolicy(storage, schemas, hasher, lockout, password_policy)
              if lockout is not None or password_policy is not None else None)
    emails = AccountEmails(storage, schemas, sessions, mailer, email_options(settings), hasher, policy)
    users = Users(storage, schemas, reader, writer, sessions, roles, hasher,
                  UserOptions(revoke_sessions_on_password_change=settings.revoke_session_on_password_reset,
                              enforce_private_users=settings.enforce_private_users),
                  providers=auth_providers, emails=emails, policy=policy, triggers=cloud, view=user_view)
    installations = Installations(storage, schemas, writer)
    # Sign-in for web apps through the server (providers with ``web`` options).
    web_sign_in = WebSignIn(auth_providers, users, challenges, settings.public_url)
    # Which service a class's objects go through (its owner's, else the generic pipelines).
    objects = Objects(reader, writer, users, sessions, installations)
    files = Files(open_files(settings.files, settings.data_dir, settings.database_url), upload_rules(settings),
                  storage, schemas, file_url, triggers=CloudFileTriggers(cloud))
    cloud_server = CloudServer(runtime=cloud, storage=storage, schemas=schemas, reader=reader, writer=writer,
                               users=users, objects=objects, file_url=file_url)
    # --dev: the cloud code reloads when its files change (started with the server).
    cloud_reloader = CloudReloader(cloud, settings.cloud) if settings.dev and settings.cloud else None
    # Cloud jobs started by /jobs or by a schedule (one scheduler loop per process).
    jobs = JobRunner(cloud_server)
    scheduler = Scheduler(cloud_server, jobs, parse_schedule(settings.schedule), settings.schedule_tick_ms / 1000,
                          cloud_given=bool(settings.cloud))
    # Push: POST /push checks and enqueues; the durable queue's worker (one per process) delivers.
    push_queue = PushQueue(storage, schemas, reader, writer, QueueOptions(poll_s=settings.push_poll_ms / 1000),
                           enabled=settings.push_worker, open_adapters=lambda: _push_adapters(settings))
    push = PushService(storage, writer, push_queue)
    # LiveQuery (WebSocket on the API's port): writes' after-commit events go through the pub/sub
    # adapter (the database's own channel unless --pubsub), so every process's subscribers get them.
    pubsub = open_pubsub(settings.pubsub, settings.database_url)
    livequery = LiveQuery(app_id=settings.app_id, mount=settings.mount, interest=interest,
                          authenticate=lambda keys, ip: authenticate(keys, settings, ip), schemas=schemas, reader=reader,
                          writer=writer, users=users, sessions=sessions, permissions=permissions, cloud=cloud,
                          pubsub=pubsub)
    # Tells other processes (through --pubsub) of changes to what every process caches.
    invalidation = Invalidation(settings.app_id or "", schemas, sessions, roles, cloud.webhooks, livequery)
    # After each write, the caches it may have made stale, here and in other processes.
    writer.written.bind(invalidation.written)
    # --idempotency-paths: write requests with X-Parse-Request-Id run once; None (the default)
    # costs a request one attribute test.
    idempotency = (Idempotency(storage, schemas, writer,
                               IdempotencyOptions(parse_paths(settings.idempotency_paths), settings.idempotency_ttl))
                   if settings.idempotency_paths else None)
    # Parse Dashboard's Logs page: cloud-code lines and errors, kept in the database (secrets masked).
    script_log = ScriptLog(storage, ScriptLogOptions(max_entries=settings.script_log_max_entries,
                                                     max_age_days=settings.script_log_max_age_days),
                           secrets=[settings.master_key, settings.read_only_master_key, settings.maintenance_key,
                                    settings.webhook_key])
    return Services(settings=settings, storage=storage, schemas=schemas, permissions=permissions, reader=reader,
                    writer=writer, sessions=sessions, roles=roles, users=users, installations=installations,
                    objects=objects, auth_providers=auth_providers, mailer=mailer, emails=emails, files=files,
                    pubsub=pubsub, cloud=cloud, cloud_server=cloud_server, cloud_reloader=cloud_reloader, jobs=jobs,
                    scheduler=scheduler, push_queue=push_queue, push=push, livequery=livequery,
                    invalidation=invalidation, idempotency=idempotency, script_log=script_log, file_url=file_url,
                    web_sign_in=web_sign_in)


def _push_adapters(settings: Settings) -> list[Any]:
    from bastion.adapters.push import open_push_adapters

    return open_push_adapters(settings, settings.data_dir)
