"""The ``bastion`` command."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bastion import __version__
from bastion.config import settings_from_env, settings_to_env
from bastion.logs import LEVELS
from bastion.startup import CONFIG_FILE, StartupError, read_config_file, redact

_F = TypeVar("_F", bound=Callable[..., Any])


def _auth_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """The --auth JSON: an object of provider names to options (checked once cloud code is loaded)."""
    if not value:
        return None
    try:
        auth = json.loads(value)
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}") from None
    if not isinstance(auth, dict):
        raise click.BadParameter("must be a JSON object of provider names to options")
    return auth


def _addresses_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--master-key-ips and the like: comma-separated addresses or CIDR networks, checked now."""
    if value is None:
        return None
    from bastion.keys import parse_addresses

    try:
        parse_addresses(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return value


def _protected_fields_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """The --protected-fields JSON: {"<class>": {"<entity>": ["field", ...]}}."""
    if not value:
        return None
    from bastion.core.permissions import check_protected_fields_option

    try:
        return check_protected_fields_option(json.loads(value))
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _account_option(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    """--account-lockout and --password-policy: JSON objects, checked as Parse Server's Config does."""
    if not value:
        return None
    from bastion.domain.account_policy import LockoutOptions, PasswordPolicyOptions

    try:
        parsed = json.loads(value)
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}") from None
    try:
        (LockoutOptions if param.name == "account_lockout" else PasswordPolicyOptions).from_json(parsed)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return parsed or None


def _idempotency_paths_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--idempotency-paths: each pattern must compile; kept as given (a list or comma-separated)."""
    if not value:
        return None
    from bastion.domain.idempotency import parse_paths

    try:
        return value if parse_paths(value) else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


class _ScheduleEntry(click.ParamType[str, str]):
    """One --schedule entry; in BASTION_SCHEDULE, entries are separated by ';'."""

    name = "NAME=CRON"
    envvar_list_splitter = ";"


def _schedule_option(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str | None:
    """The --schedule entries, checked now, as one setting ("NAME=CRON; NAME=CRON")."""
    from bastion.cloud._runtime.scheduler import parse_schedule

    text = "; ".join(item.strip() for item in value if item.strip())
    try:
        entries = parse_schedule(text)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    return "; ".join(f"{entry.job}={entry.expr}" for entry in entries) or None


def _check_cloud(path: str | None) -> tuple[str, dict[str, Any]]:
    """Loads the cloud code once before the server starts, so a broken file stops the start with
    its file and line; the summary of what it registers otherwise, and its auth adapters."""
    if not path:
        return "", {}
    from bastion.cloud._runtime.loader import CloudLoadError, load_cloud

    try:
        registry = load_cloud(path)
    except CloudLoadError as error:
        click.echo(f"Error: cloud code failed to load: {error}", err=True)
        raise SystemExit(1) from None
    return registry.summary(), dict(registry.auth_adapters)


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


def _setting(name: str, *flags: str, **kwargs: Any) -> Callable[[_F], _F]:
    """A `serve` option for the setting ``name`` (a key of bastion.config.ENV_FIELDS).

    Spelled --name-with-dashes (--x/--no-x when the default is a bool) unless ``flags`` are given, and
    read from BASTION_<NAME>, the variable settings_from_env reads too: deriving both from the one name
    keeps the flag, its variable and the setting from drifting apart. A default is shown in --help;
    every other keyword goes to click as is.
    """
    if not flags:
        flag = "--" + name.replace("_", "-")
        flags = (f"{flag}/--no-{flag[2:]}",) if isinstance(kwargs.get("default"), bool) else (flag,)
    kwargs.setdefault("envvar", "BASTION_" + name.upper())
    if "default" in kwargs:
        kwargs.setdefault("show_default", True)
    # `name` as a declaration too, so the keyword serve() gets is the setting's name whatever the flags.
    return click.option(name, *flags, **kwargs)


class _Commands(click.Group):
    """`bastion`'s commands: a mistake in a command's options is one line (``Error: …``), without
    the usage lines before it, so that it stands out in a service's log."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            error.ctx = None
            raise


def _config_option(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """--config FILE (or ./bastion.toml when there is one): its settings become the defaults of the
    other options, so flags and BASTION_* variables still win over them."""
    path = value or (CONFIG_FILE if Path(CONFIG_FILE).is_file() else None)
    if path is None:
        return
    options = {p.name: p.multiple for p in ctx.command.params
               if isinstance(p, click.Option) and p.name and p.name != "config"}
    try:
        ctx.default_map = {**(ctx.default_map or {}), **read_config_file(path, options)}
    except StartupError as error:
        raise click.UsageError(str(error)) from None
    ctx.meta["bastion.config"] = path


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="bastion")
def main() -> None:
    """Bastion: a self-hosted, Parse-compatible backend (REST API for objects, queries and schemas).

    Start it with `bastion serve`; every option can also be set with a BASTION_* environment variable.
    """


@main.command()
@_setting("host", default="127.0.0.1", help="Interface to listen on (0.0.0.0 for every interface).")
@_setting("port", default=1337, type=click.IntRange(0, 65535),
          help="TCP port (0: one the system picks, printed at start).")
@_setting("mount", default="/parse", help="Path the API is served under.")
@_setting("app_id", help="Application id clients send (generated once if unset).")
@_setting("master_key", help="Master key that bypasses every permission (generated once if unset).")
@_setting("read_only_master_key", help="A master key that can read everything and write nothing.")
@_setting("master_key_ips", default="127.0.0.1,::1", callback=_addresses_option,
          help="Addresses or CIDR networks, comma-separated, the master key is taken from (Parse Server's "
               "masterKeyIps); from elsewhere it is refused with 403. 0.0.0.0/0,::0 allows every address.")
@_setting("read_only_master_key_ips", default="0.0.0.0/0,::0", callback=_addresses_option,
          help="The same for the read-only master key (Parse Server's readOnlyMasterKeyIps).")
@_setting("maintenance_key",
          help="Parse Server's maintenanceKey (X-Parse-Maintenance-Key): past ACLs and class-level permissions "
               "for data corrections, but not on master-only routes (see docs/security.md).")
@_setting("maintenance_key_ips", default="127.0.0.1,::1", callback=_addresses_option,
          help="The same as --master-key-ips for the maintenance key (Parse Server's maintenanceKeyIps).")
@_setting("javascript_key", help="JavaScript key; required from clients if set.")
@_setting("rest_key", help="REST API key; required from clients if set.")
@_setting("client_key", help="Client key; required from clients if set.")
@_setting("database",
          help="Database URL: sqlite:///path/to/file.db (default: <data-dir>/bastion.db) or "
               "postgresql://user@host:5432/dbname.")
@_setting("data_dir", default="./bastion-data", type=click.Path(file_okay=False),
          help="Where the SQLite database, keys and files live.")
@_setting("workers", default=1, type=click.IntRange(min=1),
          help="Server processes. Use PostgreSQL when running more than one on a busy app.")
@_setting("server_url",
          help="Public URL clients use, e.g. https://api.example.com/parse (default: from host, port, mount).")
@_setting("trust_proxy",
          help="Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed: addresses or networks, "
               "comma-separated (e.g. 127.0.0.1,10.0.0.0/8), or * for any. Unset, as Parse Server's trustProxy, "
               "the client's address is the connection's peer.")
@_setting("allow_client_class_creation", default=False,
          help="Let clients without the master key create new classes.")
@_setting("auth", callback=_auth_option,
          help='Sign-in providers as JSON, Parse Server\'s `auth` option: {"apple": {"clientId": "…"}, '
               '"mfa": {"options": ["TOTP"]}, "corp": {"oidc": true, "issuer": "https://…", "clientId": "…"}} '
               '(the providers and their keys: docs/auth-providers.md).')
@_setting("auth_config", metavar="FILE.json",
          help="The same providers as a JSON file (Parse Server's `auth` option, e.g. {\"google\": {\"clientId\": "
               "\"…\"}, \"mfa\": {\"enabled\": true, \"options\": [\"TOTP\"]}}).")
@_setting("enable_anonymous_users", default=True, help="Accept the `anonymous` authData provider.")
@_setting("enable_insecure_auth_adapters", default=False,
          help="Parse 9's enableInsecureAuthAdapters: honour a provider's deprecated `enableInsecureAuth` "
               "(the client's id and access token, checked against the provider's API, instead of a code).")
@_setting("protected_fields", callback=_protected_fields_option,
          help='Fields hidden per class and caller, Parse Server\'s `protectedFields` option: {"<class>": '
               '{"*" | "authenticated" | "role:<name>" | "<user id>": ["field", ...]}}; merged into each '
               "class's CLP (_User's email is always hidden from other users).")
@_setting("protected_fields_owner_exempt", default=True,
          help="A user sees all of their own _User object whatever protectedFields say.")
@_setting("max_limit", type=click.IntRange(min=1), help="Largest `limit` a query may ask for.")
@_setting("max_include_depth", type=click.IntRange(min=0), default=5, help="Deepest `include` path.")
@_setting("max_or_breadth", type=click.IntRange(min=1), default=100,
          help="Most clauses in one $or, $and or $nor.")
@_setting("max_query_depth", type=click.IntRange(min=1), default=10,
          help="Deepest nesting of $or, $and, $nor and subqueries.")
@_setting("max_regex_length", type=click.IntRange(min=1), default=1000, help="Longest $regex.")
@_setting("query_timeout_ms", type=click.IntRange(min=1), default=30_000,
          help="PostgreSQL cancels a statement running longer, in milliseconds.")
@_setting("max_batch_requests", type=click.IntRange(min=-1),
          help="Most requests one /batch may hold without the master key (default 50; -1: no limit, "
               "Parse Server 9's default).")
@_setting("max_body_bytes", type=click.IntRange(min=1), default=20 * 1024 * 1024, help="Largest request body accepted.")
@_setting("request_timeout", type=click.IntRange(min=0), default=30_000,
          help="Milliseconds a request may take (a frozen database included) before it is answered 503 "
               "(code 124, retryable); 0: no deadline. File uploads are not bounded by it.")
@_setting("header_timeout", type=click.IntRange(min=1), default=20_000,
          help="Milliseconds a client has to send a request's head once it began, or its first one once "
               "connected; then the connection is closed (slowloris).")
@_setting("keep_alive_timeout", type=click.IntRange(min=1), default=5_000,
          help="Milliseconds an idle keep-alive connection stays open between requests.")
@_setting("max_connections", type=click.IntRange(min=1), default=10_000,
          help="Open connections per process; past it the longest idle one is closed to serve a new one.")
@_setting("files", default="local",
          help="Where uploaded files live: local (<data-dir>/files), postgres (the --database, when it is "
               "PostgreSQL), postgresql://… or s3://bucket/prefix?endpoint=…&region=…&presign=1 "
               "(see docs/files.md).")
@_setting("max_upload_bytes", type=click.IntRange(min=1), default=20 * 1024 * 1024,
          help="Largest file accepted (Parse Server's maxUploadSize).")
@_setting("file_upload_enable_for_public", default=False,
          help="Let requests without a user session upload files.")
@_setting("file_upload_enable_for_anonymous_user", default=False, help="Let anonymous users upload files.")
@_setting("file_upload_enable_for_authenticated_user", default=True, help="Let logged-in users upload files.")
@_setting("file_download_enable_for_public", default=True,
          help="Let requests without a user session (X-Parse-Session-Token) download files.")
@_setting("file_download_enable_for_anonymous_user", default=True, help="Let anonymous users download files.")
@_setting("file_download_enable_for_authenticated_user", default=True,
          help="Let logged-in users download files.")
@_setting("file_extensions",
          help='File extensions clients may upload: regular expressions, as a JSON list or comma-separated; '
               '"*" allows all (default: Parse Server\'s, refusing html, svg, xml and other types a browser '
               "would run).")
@_setting("session_length", type=click.IntRange(min=1), default=365 * 24 * 3600, help="Seconds a login session stays valid.")
@_setting("mail_url",
          help="SMTP server for verification and password-reset mails: smtp://user:pass@host:587?from="
               "app@example.com or smtps://… (default: .eml files under <data-dir>/mail, and a log line).")
@_setting("app_name", help="App name shown in mails and pages (default: the app id).")
@_setting("verify_user_emails", default=False,
          help="Mail new users a link that verifies their email (emailVerified).")
@_setting("prevent_login_with_unverified_email", default=False,
          help="Refuse log-in (205) until the email is verified; sign-up then answers no session token.")
@_setting("prevent_signup_with_unverified_email", default=False,
          help="With --prevent-login-with-unverified-email: answer sign-up with 205 instead of a user "
               "without session.")
@_setting("email_verify_token_validity", type=click.IntRange(min=1),
          help="Seconds a verification link stays valid (default: no expiry).")
@_setting("email_verify_token_reuse_if_valid", default=False,
          help="Resend a still valid verification token instead of a new one.")
@_setting("email_verify_success_on_invalid_email", default=True,
          help="Answer success to verification requests for unknown or verified emails.")
@_setting("password_reset_token_validity", type=click.IntRange(min=1),
          help="Seconds a password-reset link stays valid (default: no expiry).")
@_setting("password_reset_token_reuse_if_valid", default=False,
          help="Resend a still valid reset token instead of a new one.")
@_setting("password_reset_success_on_invalid_email", default=True,
          help="Answer success to reset requests for unknown emails (no account enumeration).")
@_setting("revoke_session_on_password_reset", default=True,
          help="End every session of a user whose password changes.")
@_setting("enforce_private_users", default=True,
          help="New users are readable by themselves only (Parse Server's enforcePrivateUsers).")
@_setting("account_lockout", callback=_account_option,
          help='Lock an account after failed log-ins, Parse Server\'s `accountLockout`: {"duration": <minutes>, '
               '"threshold": <failures>, "unlockOnPasswordReset": true} (see docs/users.md).')
@_setting("password_policy", callback=_account_option,
          help='Rules for new passwords, Parse Server\'s `passwordPolicy`: {"validatorPattern": "<regex>", '
               '"validationError": "…", "doNotAllowUsername": true, "maxPasswordAge": <days>, '
               '"maxPasswordHistory": <0-20>, …} (see docs/users.md).')
@_setting("cloud", type=click.Path(exists=True),
          help="Cloud code: a .py file or a package directory with functions, triggers and jobs "
               "(see docs/cloud-code.md).")
@_setting("dev", default=False, help="Development mode: reload the cloud code when its files change.")
@_setting("schedule", multiple=True, type=_ScheduleEntry(), callback=_schedule_option,
          help="Run a cloud job on a schedule: JOB_NAME=CRON, in UTC, e.g. --schedule 'cleanup=*/5 * * * *'. "
               "Repeatable; in BASTION_SCHEDULE separate entries with ';'. CRON has 5 fields (minute hour "
               "day-of-month month day-of-week) or 6 (seconds first). With several processes on one "
               "database each run happens once. Parse Dashboard's schedules (_JobSchedule) run too.")
@_setting("schedule_tick_ms", type=click.IntRange(min=10), default=5000,
          help="How often each process looks for scheduled jobs that are due, in milliseconds.")
@_setting("vapid_public_key",
          help="Web Push VAPID public key, base64url (default: the key pair in <data-dir>/vapid.json, "
               "created on first start; `bastion keys vapid` prints it).")
@_setting("vapid_private_key",
          help="Web Push VAPID private key: base64url (as web-push tools print it), PEM, or a file holding "
               "either.")
@_setting("vapid_subject",
          help="Contact the push services see in the VAPID JWT: mailto:you@example.com or an https URL "
               "(default: the https --server-url's origin).")
@_setting("fcm_service_account", type=click.Path(dir_okay=False),
          help="Firebase service-account key (JSON) for Android pushes over FCM HTTP v1.")
@_setting("fcm_endpoint", help="FCM API base URL (default: https://fcm.googleapis.com).")
@_setting("apns_key", type=click.Path(dir_okay=False),
          help="APNs token-authentication key (.p8) for Apple devices.")
@_setting("apns_key_id", help="The .p8 key's Key ID.")
@_setting("apns_team_id", help="Apple developer Team ID.")
@_setting("apns_topic", help="The app's bundle id, for installations without appIdentifier.")
@_setting("apns_production", "--apns-production/--apns-sandbox", default=False,
          help="Apple's production or sandbox (development builds) push service.")
@_setting("apns_endpoint", help="APNs base URL (default: Apple's production or sandbox host).")
@_setting("webhook_key",
          help="Sent as the X-Parse-Webhook-Key header with every webhook call (functions and triggers "
               "registered under /hooks), for the webhook to check (Parse Server's webhookKey).")
@_setting("live_query_classes",
          help="LiveQuery (WebSocket on the API's port) serves every class; A,B limits it to these classes.")
@_setting("pubsub",
          help="Pub/sub between processes for LiveQuery events and cache invalidation: redis://host:6379/0 "
               "(several hosts), memory (one process only); default: the database's own (PostgreSQL "
               "LISTEN/NOTIFY, or a polled table of the SQLite file).")
@_setting("allow_client_push", default=False,
          help="Let clients (not only the master key) send pushes with POST /push.")
@_setting("push_worker", default=True,
          help="Deliver queued pushes from this process (--no-push-worker: only accept them).")
@_setting("push_poll_ms", type=click.IntRange(min=10), default=1000,
          help="How often an idle push worker looks for pushes that are due, in milliseconds.")
@_setting("idempotency_paths", callback=_idempotency_paths_option,
          help="Run write requests that carry X-Parse-Request-Id once (Parse Server's idempotencyOptions.paths): "
               "path patterns after the mount path, regular expressions matched from the start, comma-separated "
               "or a JSON list, e.g. 'functions/.*,jobs/.*,classes/.*,users,installations'. A repeated id answers "
               "159 \"Duplicate request\". Off by default (see docs/configuration.md).")
@_setting("idempotency_ttl", type=click.IntRange(min=1), default=300,
          help="Seconds a request id of --idempotency-paths is remembered (Parse Server's idempotencyOptions.ttl).")
@_setting("log_level", default="info", type=click.Choice(list(LEVELS)),
          help="Least severe log lines written (JSON on standard error). 'verbose' is Parse Server's: every "
               "request and answer is logged too, and kept for the Logs page.")
@_setting("script_log_max_entries", type=click.IntRange(min=0), default=10_000,
          help="Log lines kept in the database for Parse Dashboard's Logs page (GET /scriptlog): cloud "
               "function and trigger runs, cloud code's request.log, warnings and errors; 0 keeps none.")
@_setting("script_log_max_age_days", type=click.IntRange(min=1), default=7,
          help="Days a kept log line stays before it is deleted.")
@_setting("access_log", default=False, help="Log a line per request.")
@click.option("--config", envvar="BASTION_CONFIG", metavar="FILE.toml", is_eager=True, expose_value=False,
              callback=_config_option, type=click.Path(dir_okay=False),
              help="Settings from a TOML file, keys named as the options (max_body_bytes = 1048576); flags and "
                   "BASTION_* variables win over it (default: ./bastion.toml when there is one).")
def serve(**options: object) -> None:
    """Run the API server.

    With no options it serves SQLite in ./bastion-data on http://127.0.0.1:1337/parse and prints
    the keys it generated for you.
    """
    try:
        _serve(options)
    except StartupError as error:
        raise click.ClickException(str(error)) from None


def _serve(options: dict[str, object]) -> None:
    from bastion import startup
    from bastion.adapters.pubsub import describe_pubsub
    from bastion.http.server import raise_open_file_limit
    from bastion.logs import configure
    from bastion.services import check_email_settings, check_files_settings

    config_file = click.get_current_context().meta.get("bastion.config")
    settings = settings_from_env({}, **{k: v for k, v in options.items() if v is not None})
    startup.check_database_url(settings.database_url)
    if settings.pubsub and settings.pubsub != "memory" and not settings.pubsub.startswith(
            ("redis://", "rediss://", "unix://")):
        raise click.UsageError("--pubsub must be redis://host:port/db or memory (unset: the database's own channel)")
    if startup.check_data_dir(settings.data_dir):
        click.echo(f"Warning: the data dir {settings.data_dir} is open to other users (mode "
                   f"{settings.data_dir.stat().st_mode & 0o777:o}); chmod 700 it to keep its keys and files private.",
                   err=True)
    try:
        generated = settings.ensure_keys()
        # a mistake in the mail or files settings stops the start, with its reason
        check_email_settings(settings)
        check_files_settings(settings)
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    cloud_summary, auth_adapters = _check_cloud(settings.cloud)
    if settings.auth_config:
        if settings.auth:
            raise click.UsageError("give the auth providers with --auth or with --auth-config, not both")
        try:
            settings.auth = startup.load_auth_config(settings.auth_config)
        except StartupError as error:
            raise click.UsageError(str(error)) from None
        settings.auth_config = None  # workers read the providers from BASTION_AUTH
    try:
        sign_in = startup.check_auth(settings, auth_adapters)
    except StartupError as error:  # a configuration mistake: exit 2, as a bad flag
        raise click.UsageError(str(error)) from None
    push_summary = _check_push(settings)
    if settings.schedule and not settings.cloud:
        raise click.UsageError("--schedule needs --cloud: the jobs it names are defined in cloud code")
    startup.check_database(settings)
    startup.check_pubsub(settings)
    sock = startup.listen(settings.host, settings.port)
    settings.port = sock.getsockname()[1]  # the system's choice for --port 0
    configure(settings.log_level)
    raise_open_file_limit()
    os.environ.update(settings_to_env(settings))
    click.echo(f"Bastion {__version__}", err=True)
    if config_file:
        click.echo(f"  Config file:  {Path(config_file).resolve()}", err=True)
    click.echo(f"  API:          {settings.public_url}", err=True)
    click.echo(f"  Health:       {settings.public_url}/health", err=True)
    live_url = "ws" + settings.public_url.removeprefix("http")  # https → wss
    classes = settings.live_query_classes or "every class"
    click.echo(f"  LiveQuery:    {live_url} ({classes})", err=True)
    click.echo(f"  App id:       {settings.app_id}", err=True)
    click.echo(f"  Master key:   {settings.master_key}" + ("  (generated; kept in "
               f"{Path(settings.data_dir) / 'keys.json'})" if generated else ""), err=True)
    click.echo(f"  Database:     {redact(settings.database_url)}", err=True)
    click.echo(f"  Data dir:     {Path(settings.data_dir).resolve()}", err=True)
    click.echo(f"  Files:        {redact(settings.files)}", err=True)
    click.echo(f"  Push:         {push_summary}", err=True)
    click.echo(f"  Pub/sub:      {describe_pubsub(settings.pubsub, settings.database_url)}", err=True)
    click.echo(f"  Workers:      {settings.workers}", err=True)
    click.echo(f"  Sign-in:      password, {sign_in}", err=True)
    if settings.trust_proxy:
        click.echo(f"  Proxies:      X-Forwarded-For believed from {settings.trust_proxy}", err=True)
    if settings.cloud:
        click.echo(f"  Cloud code:   {Path(settings.cloud).resolve()} ({cloud_summary})"
                   + (", reloads on change" if settings.dev else ""), err=True)
    if settings.schedule:
        click.echo(f"  Schedule:     {settings.schedule} (UTC)", err=True)
    if settings.idempotency_paths:
        click.echo(f"  Idempotency:  {settings.idempotency_paths} (request ids kept {settings.idempotency_ttl} s)",
                   err=True)
    warning = startup.pubsub_warning(settings)
    if warning:
        click.echo(f"  Warning:      {warning}", err=True)
    sys.exit(startup.run(settings, sock))


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
    from bastion.domain.file_orphans import find_orphans
    from bastion.services import open_storage

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
