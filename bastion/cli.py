"""The ``bastion`` command."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from bastion import __version__
from bastion.config import settings_from_env, settings_to_env


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"
    return url


def _auth_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """The --auth JSON, refused at start when a provider's options are unusable."""
    if not value:
        return None
    try:
        auth = json.loads(value)
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}") from None
    if not isinstance(auth, dict):
        raise click.BadParameter("must be a JSON object of provider names to options")

    async def check() -> None:
        from bastion.domain.auth_providers import ProviderRegistry

        await ProviderRegistry.from_options(auth).aclose()

    try:
        asyncio.run(check())
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return auth


def _protected_fields_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """The --protected-fields JSON: {"<class>": {"<entity>": ["field", ...]}}."""
    if not value:
        return None
    from bastion.domain.permissions import check_protected_fields_option

    try:
        return check_protected_fields_option(json.loads(value))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


class _ScheduleEntry(click.ParamType):
    """One --schedule entry; in BASTION_SCHEDULE, entries are separated by ';'."""

    name = "NAME=CRON"
    envvar_list_splitter = ";"


def _schedule_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """The --schedule entries, checked now, as one setting ("NAME=CRON; NAME=CRON")."""
    from bastion.cloud.scheduler import parse_schedule

    text = "; ".join(item.strip() for item in value if item.strip())
    try:
        entries = parse_schedule(text)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return "; ".join(f"{entry.job}={entry.expr}" for entry in entries) or None


def _check_cloud(path: str | None) -> str:
    """Loads the cloud code once before the server starts, so a broken file stops the start with
    its file and line; the summary of what it registers otherwise."""
    if not path:
        return ""
    from bastion.cloud.loader import CloudLoadError, load_cloud

    try:
        return load_cloud(path).summary()
    except CloudLoadError as error:
        click.echo(f"Error: cloud code failed to load: {error}", err=True)
        raise SystemExit(1) from None


def _check_push(settings: Any) -> str:
    """Opens the push adapters once before the server starts (creating the VAPID keys on first use),
    so a broken push setting stops the start with its reason; a summary line otherwise."""
    from bastion.adapters.push import open_push_adapters
    from bastion.adapters.push.webpush import WebPushAdapter

    try:
        adapters = open_push_adapters(settings, settings.data_dir)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    web = next(adapter for adapter in adapters if isinstance(adapter, WebPushAdapter))
    return f"{', '.join(adapter.name for adapter in adapters)} (VAPID public key {web.keys.public_key})"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bastion")
def main() -> None:
    """Bastion: a self-hosted, Parse-compatible backend (REST API for objects, queries and schemas).

    Start it with `bastion serve`; every option can also be set with a BASTION_* environment variable.
    """


@main.command()
@click.option("--host", envvar="BASTION_HOST", default="127.0.0.1", show_default=True,
              help="Interface to listen on (0.0.0.0 for every interface).")
@click.option("--port", envvar="BASTION_PORT", default=1337, show_default=True, type=int, help="TCP port.")
@click.option("--mount", envvar="BASTION_MOUNT", default="/parse", show_default=True,
              help="Path the API is served under.")
@click.option("--app-id", envvar="BASTION_APP_ID", help="Application id clients send (generated once if unset).")
@click.option("--master-key", envvar="BASTION_MASTER_KEY",
              help="Master key that bypasses every permission (generated once if unset).")
@click.option("--read-only-master-key", envvar="BASTION_READ_ONLY_MASTER_KEY",
              help="A master key that can read everything and write nothing.")
@click.option("--javascript-key", envvar="BASTION_JAVASCRIPT_KEY", help="JavaScript key; required from clients if set.")
@click.option("--rest-key", envvar="BASTION_REST_KEY", help="REST API key; required from clients if set.")
@click.option("--client-key", envvar="BASTION_CLIENT_KEY", help="Client key; required from clients if set.")
@click.option("--database", envvar="BASTION_DATABASE",
              help="Database URL: sqlite:///path/to/file.db (default: <data-dir>/bastion.db) or "
                   "postgresql://user@host:5432/dbname.")
@click.option("--data-dir", envvar="BASTION_DATA_DIR", default="./bastion-data", show_default=True,
              type=click.Path(file_okay=False), help="Where the SQLite database, keys and files live.")
@click.option("--workers", envvar="BASTION_WORKERS", default=1, show_default=True, type=int,
              help="Server processes. Use PostgreSQL when running more than one on a busy app.")
@click.option("--server-url", envvar="BASTION_SERVER_URL",
              help="Public URL clients use, e.g. https://api.example.com/parse (default: from host, port, mount).")
@click.option("--allow-client-class-creation/--no-allow-client-class-creation",
              envvar="BASTION_ALLOW_CLIENT_CLASS_CREATION", default=False, show_default=True,
              help="Let clients without the master key create new classes.")
@click.option("--auth", envvar="BASTION_AUTH", callback=_auth_option,
              help='authData providers as JSON, Parse Server\'s `auth` option: {"<name>": {"oidc": true, '
                   '"issuer": "https://…", "clientId": "…"}} (see docs/auth-providers.md).')
@click.option("--enable-anonymous-users/--no-enable-anonymous-users", envvar="BASTION_ENABLE_ANONYMOUS_USERS",
              default=True, show_default=True, help="Accept the `anonymous` authData provider.")
@click.option("--protected-fields", envvar="BASTION_PROTECTED_FIELDS", callback=_protected_fields_option,
              help='Fields hidden per class and caller, Parse Server\'s `protectedFields` option: {"<class>": '
                   '{"*" | "authenticated" | "role:<name>" | "<user id>": ["field", ...]}}; merged into each '
                   "class's CLP (_User's email is always hidden from other users).")
@click.option("--protected-fields-owner-exempt/--no-protected-fields-owner-exempt",
              envvar="BASTION_PROTECTED_FIELDS_OWNER_EXEMPT", default=True, show_default=True,
              help="A user sees all of their own _User object whatever protectedFields say.")
@click.option("--max-limit", envvar="BASTION_MAX_LIMIT", type=int, help="Largest `limit` a query may ask for.")
@click.option("--max-batch-requests", envvar="BASTION_MAX_BATCH_REQUESTS", type=int,
              help="Most requests one /batch may hold without the master key (default 50; -1: no limit, "
                   "Parse Server 9's default).")
@click.option("--max-body-bytes", envvar="BASTION_MAX_BODY_BYTES", type=int, default=20 * 1024 * 1024,
              show_default=True, help="Largest request body accepted.")
@click.option("--files", envvar="BASTION_FILES", default="local", show_default=True,
              help="Where uploaded files live: local (<data-dir>/files), postgres (the --database, when it is "
                   "PostgreSQL), postgresql://… or s3://bucket/prefix?endpoint=…&region=…&presign=1 "
                   "(see docs/files.md).")
@click.option("--max-upload-bytes", envvar="BASTION_MAX_UPLOAD_BYTES", type=int, default=20 * 1024 * 1024,
              show_default=True, help="Largest file accepted (Parse Server's maxUploadSize).")
@click.option("--file-upload-enable-for-public/--no-file-upload-enable-for-public",
              envvar="BASTION_FILE_UPLOAD_ENABLE_FOR_PUBLIC", default=False, show_default=True,
              help="Let requests without a user session upload files.")
@click.option("--file-upload-enable-for-anonymous-user/--no-file-upload-enable-for-anonymous-user",
              envvar="BASTION_FILE_UPLOAD_ENABLE_FOR_ANONYMOUS_USER", default=False, show_default=True,
              help="Let anonymous users upload files.")
@click.option("--file-upload-enable-for-authenticated-user/--no-file-upload-enable-for-authenticated-user",
              envvar="BASTION_FILE_UPLOAD_ENABLE_FOR_AUTHENTICATED_USER", default=True, show_default=True,
              help="Let logged-in users upload files.")
@click.option("--file-extensions", envvar="BASTION_FILE_EXTENSIONS",
              help='File extensions clients may upload: regular expressions, as a JSON list or comma-separated; '
                   '"*" allows all (default: Parse Server\'s, refusing html, svg, xml and other types a browser '
                   "would run).")
@click.option("--session-length", envvar="BASTION_SESSION_LENGTH", type=int, default=365 * 24 * 3600,
              show_default=True, help="Seconds a login session stays valid.")
@click.option("--mail-url", envvar="BASTION_MAIL_URL",
              help="SMTP server for verification and password-reset mails: smtp://user:pass@host:587?from="
                   "app@example.com or smtps://… (default: .eml files under <data-dir>/mail, and a log line).")
@click.option("--app-name", envvar="BASTION_APP_NAME", help="App name shown in mails and pages (default: the app id).")
@click.option("--verify-user-emails/--no-verify-user-emails", envvar="BASTION_VERIFY_USER_EMAILS", default=False,
              show_default=True, help="Mail new users a link that verifies their email (emailVerified).")
@click.option("--prevent-login-with-unverified-email/--no-prevent-login-with-unverified-email",
              envvar="BASTION_PREVENT_LOGIN_WITH_UNVERIFIED_EMAIL", default=False, show_default=True,
              help="Refuse log-in (205) until the email is verified; sign-up then answers no session token.")
@click.option("--prevent-signup-with-unverified-email/--no-prevent-signup-with-unverified-email",
              envvar="BASTION_PREVENT_SIGNUP_WITH_UNVERIFIED_EMAIL", default=False, show_default=True,
              help="With --prevent-login-with-unverified-email: answer sign-up with 205 instead of a user "
                   "without session.")
@click.option("--email-verify-token-validity", envvar="BASTION_EMAIL_VERIFY_TOKEN_VALIDITY", type=int,
              help="Seconds a verification link stays valid (default: no expiry).")
@click.option("--email-verify-token-reuse-if-valid/--no-email-verify-token-reuse-if-valid",
              envvar="BASTION_EMAIL_VERIFY_TOKEN_REUSE_IF_VALID", default=False, show_default=True,
              help="Resend a still valid verification token instead of a new one.")
@click.option("--email-verify-success-on-invalid-email/--no-email-verify-success-on-invalid-email",
              envvar="BASTION_EMAIL_VERIFY_SUCCESS_ON_INVALID_EMAIL", default=True, show_default=True,
              help="Answer success to verification requests for unknown or verified emails.")
@click.option("--password-reset-token-validity", envvar="BASTION_PASSWORD_RESET_TOKEN_VALIDITY", type=int,
              help="Seconds a password-reset link stays valid (default: no expiry).")
@click.option("--password-reset-token-reuse-if-valid/--no-password-reset-token-reuse-if-valid",
              envvar="BASTION_PASSWORD_RESET_TOKEN_REUSE_IF_VALID", default=False, show_default=True,
              help="Resend a still valid reset token instead of a new one.")
@click.option("--password-reset-success-on-invalid-email/--no-password-reset-success-on-invalid-email",
              envvar="BASTION_PASSWORD_RESET_SUCCESS_ON_INVALID_EMAIL", default=True, show_default=True,
              help="Answer success to reset requests for unknown emails (no account enumeration).")
@click.option("--revoke-session-on-password-reset/--no-revoke-session-on-password-reset",
              envvar="BASTION_REVOKE_SESSION_ON_PASSWORD_RESET", default=True, show_default=True,
              help="End every session of a user whose password changes.")
@click.option("--enforce-private-users/--no-enforce-private-users", envvar="BASTION_ENFORCE_PRIVATE_USERS",
              default=True, show_default=True,
              help="New users are readable by themselves only (Parse Server's enforcePrivateUsers).")
@click.option("--cloud", envvar="BASTION_CLOUD", type=click.Path(exists=True),
              help="Cloud code: a .py file or a package directory with functions, triggers and jobs "
                   "(see docs/cloud-code.md).")
@click.option("--dev/--no-dev", envvar="BASTION_DEV", default=False, show_default=True,
              help="Development mode: reload the cloud code when its files change.")
@click.option("--schedule", envvar="BASTION_SCHEDULE", multiple=True, type=_ScheduleEntry(),
              callback=_schedule_option,
              help="Run a cloud job on a schedule: JOB_NAME=CRON, in UTC, e.g. --schedule 'cleanup=*/5 * * * *'. "
                   "Repeatable; in BASTION_SCHEDULE separate entries with ';'. CRON has 5 fields (minute hour "
                   "day-of-month month day-of-week) or 6 (seconds first). With several processes on one "
                   "database each run happens once. Parse Dashboard's schedules (_JobSchedule) run too.")
@click.option("--schedule-tick-ms", envvar="BASTION_SCHEDULE_TICK_MS", type=int, default=5000, show_default=True,
              help="How often each process looks for scheduled jobs that are due, in milliseconds.")
@click.option("--vapid-public-key", envvar="BASTION_VAPID_PUBLIC_KEY",
              help="Web Push VAPID public key, base64url (default: the key pair in <data-dir>/vapid.json, "
                   "created on first start; `bastion keys vapid` prints it).")
@click.option("--vapid-private-key", envvar="BASTION_VAPID_PRIVATE_KEY",
              help="Web Push VAPID private key: base64url (as web-push tools print it), PEM, or a file holding "
                   "either.")
@click.option("--vapid-subject", envvar="BASTION_VAPID_SUBJECT",
              help="Contact the push services see in the VAPID JWT: mailto:you@example.com or an https URL "
                   "(default: the https --server-url's origin).")
@click.option("--fcm-service-account", envvar="BASTION_FCM_SERVICE_ACCOUNT", type=click.Path(dir_okay=False),
              help="Firebase service-account key (JSON) for Android pushes over FCM HTTP v1.")
@click.option("--fcm-endpoint", envvar="BASTION_FCM_ENDPOINT",
              help="FCM API base URL (default: https://fcm.googleapis.com).")
@click.option("--apns-key", envvar="BASTION_APNS_KEY", type=click.Path(dir_okay=False),
              help="APNs token-authentication key (.p8) for Apple devices.")
@click.option("--apns-key-id", envvar="BASTION_APNS_KEY_ID", help="The .p8 key's Key ID.")
@click.option("--apns-team-id", envvar="BASTION_APNS_TEAM_ID", help="Apple developer Team ID.")
@click.option("--apns-topic", envvar="BASTION_APNS_TOPIC",
              help="The app's bundle id, for installations without appIdentifier.")
@click.option("--apns-production/--apns-sandbox", envvar="BASTION_APNS_PRODUCTION", default=False,
              show_default=True, help="Apple's production or sandbox (development builds) push service.")
@click.option("--apns-endpoint", envvar="BASTION_APNS_ENDPOINT",
              help="APNs base URL (default: Apple's production or sandbox host).")
@click.option("--webhook-key", envvar="BASTION_WEBHOOK_KEY",
              help="Sent as the X-Parse-Webhook-Key header with every webhook call (functions and triggers "
                   "registered under /hooks), for the webhook to check (Parse Server's webhookKey).")
@click.option("--live-query-classes", envvar="BASTION_LIVE_QUERY_CLASSES",
              help="LiveQuery (WebSocket on the API's port) serves every class; A,B limits it to these classes.")
@click.option("--pubsub", envvar="BASTION_PUBSUB",
              help="Pub/sub between processes for LiveQuery events and cache invalidation: "
                   "redis://host:6379/0 (default: in-process, for one process).")
@click.option("--allow-client-push/--no-allow-client-push", envvar="BASTION_ALLOW_CLIENT_PUSH", default=False,
              show_default=True, help="Let clients (not only the master key) send pushes with POST /push.")
@click.option("--push-worker/--no-push-worker", envvar="BASTION_PUSH_WORKER", default=True, show_default=True,
              help="Deliver queued pushes from this process (--no-push-worker: only accept them).")
@click.option("--push-poll-ms", envvar="BASTION_PUSH_POLL_MS", type=int, default=1000, show_default=True,
              help="How often an idle push worker looks for pushes that are due, in milliseconds.")
@click.option("--log-level", envvar="BASTION_LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
def serve(access_log: bool, **options: object) -> None:
    """Run the API server.

    With no options it serves SQLite in ./bastion-data on http://127.0.0.1:1337/parse and prints
    the keys it generated for you.
    """
    import uvicorn

    from bastion.app import check_email_settings, check_files_settings
    from bastion.livequery import MAX_MESSAGE_BYTES
    from bastion.logs import configure

    settings = settings_from_env({}, **{k: v for k, v in options.items() if v is not None})
    generated = settings.ensure_keys()
    try:  # a mistake in the mail or files settings stops the start, with its reason
        check_email_settings(settings)
        check_files_settings(settings)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    cloud_summary = _check_cloud(settings.cloud)
    push_summary = _check_push(settings)
    if settings.schedule and not settings.cloud:
        raise click.UsageError("--schedule needs --cloud: the jobs it names are defined in cloud code")
    if settings.schedule_tick_ms < 10:
        raise click.UsageError("--schedule-tick-ms must be at least 10")
    if settings.push_poll_ms < 10:
        raise click.UsageError("--push-poll-ms must be at least 10")
    configure(settings.log_level)
    os.environ.update(settings_to_env(settings))
    db = _redact(settings.database_url)
    click.echo(f"Bastion {__version__}", err=True)
    click.echo(f"  API:          {settings.public_url}", err=True)
    click.echo(f"  Health:       {settings.public_url}/health", err=True)
    live_url = "ws" + settings.public_url.removeprefix("http")  # https → wss
    classes = settings.live_query_classes or "every class"
    click.echo(f"  LiveQuery:    {live_url} ({classes})", err=True)
    click.echo(f"  App id:       {settings.app_id}", err=True)
    click.echo(f"  Master key:   {settings.master_key}" + ("  (generated; kept in "
               f"{Path(settings.data_dir) / 'keys.json'})" if generated else ""), err=True)
    click.echo(f"  Database:     {db}", err=True)
    click.echo(f"  Data dir:     {Path(settings.data_dir).resolve()}", err=True)
    click.echo(f"  Files:        {_redact(settings.files)}", err=True)
    click.echo(f"  Push:         {push_summary}", err=True)
    click.echo(f"  Pub/sub:      {_redact(settings.pubsub) if settings.pubsub else 'in-process (one process)'}",
               err=True)
    click.echo(f"  Workers:      {settings.workers}", err=True)
    if settings.cloud:
        click.echo(f"  Cloud code:   {Path(settings.cloud).resolve()} ({cloud_summary})"
                   + (", reloads on change" if settings.dev else ""), err=True)
    if settings.schedule:
        click.echo(f"  Schedule:     {settings.schedule} (UTC)", err=True)
    uvicorn.run(
        "bastion.asgi:build",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="bastion.http.server:CoalescingHttpToolsProtocol",  # httptools, one send per answer
        access_log=access_log,
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
        date_header=False,
        # LiveQuery's WebSockets: frames past its limit are refused, no per-socket compression state,
        # and keep-alive pings (a client that stops answering is dropped).
        ws_max_size=MAX_MESSAGE_BYTES,
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
    )


@main.group()
def files() -> None:
    """Maintenance of stored files (the backend of --files)."""


@files.command()
@click.option("--database", envvar="BASTION_DATABASE",
              help="Database URL (default: <data-dir>/bastion.db), as for `bastion serve`.")
@click.option("--files", "files_url", envvar="BASTION_FILES", default="local", show_default=True,
              help="Where the files live, as for `bastion serve`.")
@click.option("--data-dir", envvar="BASTION_DATA_DIR", default="./bastion-data", show_default=True,
              type=click.Path(file_okay=False), help="The data directory of `bastion serve`.")
@click.option("--delete", is_flag=True, help="Delete the orphans (default: only list them).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines, only the orphans' names.")
def orphans(database: str | None, files_url: str, data_dir: str, delete: bool, quiet: bool) -> None:
    """List stored files that no object refers to; with --delete, delete them.

    Referred to means held by a File field, inside an Array or Object field, or by Parse Config; a
    thumbnail is kept with its file. Names go to stdout (one a line), progress to stderr. A dry run
    unless --delete is given.
    """
    from bastion.adapters.files import open_files
    from bastion.app import open_storage
    from bastion.domain.file_orphans import find_orphans

    settings = settings_from_env({}, database=database, files=files_url, data_dir=data_dir)

    def progress(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    async def run() -> int:
        try:
            store = open_files(settings.files, settings.data_dir, settings.database_url)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        storage = open_storage(settings.database_url)
        await storage.open()
        try:
            await store.open()
            try:
                report = await find_orphans(storage, store, progress)
                for name in report.orphans:
                    click.echo(name)
                progress(f"{report.stored} stored files, {report.referenced} referred to by "
                         f"{report.objects} objects, {len(report.orphans)} orphans")
                if not delete:
                    if report.orphans:
                        progress("dry run: nothing deleted (add --delete to delete them)")
                    return 0
                deleted = 0
                for index, name in enumerate(report.orphans, 1):
                    if await store.delete(name):
                        deleted += 1
                    if index % 100 == 0 or index == len(report.orphans):
                        progress(f"deleted {deleted} of {len(report.orphans)}")
                return 0
            finally:
                await store.close()
        finally:
            await storage.close()

    sys.exit(asyncio.run(run()))


@main.group()
def keys() -> None:
    """Keys Bastion keeps for you."""


@keys.command()
@click.option("--data-dir", envvar="BASTION_DATA_DIR", default="./bastion-data", show_default=True,
              type=click.Path(file_okay=False), help="The data directory of `bastion serve`.")
@click.option("--vapid-public-key", envvar="BASTION_VAPID_PUBLIC_KEY", help="As for `bastion serve`.")
@click.option("--vapid-private-key", envvar="BASTION_VAPID_PRIVATE_KEY", help="As for `bastion serve`.")
def vapid(data_dir: str, vapid_public_key: str | None, vapid_private_key: str | None) -> None:
    """Print the Web Push application server key (VAPID public key, base64url).

    The web app passes it as `applicationServerKey` to `pushManager.subscribe()`. Without configured
    keys it is the pair in <data-dir>/vapid.json, created now if `bastion serve` has not yet.
    """
    from bastion.adapters.push.webpush import vapid_keys_from_settings

    settings = settings_from_env({}, data_dir=data_dir, vapid_public_key=vapid_public_key,
                                 vapid_private_key=vapid_private_key)
    try:
        keys = vapid_keys_from_settings(settings, settings.data_dir)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(keys.public_key)


if __name__ == "__main__":
    main()
