"""Settings: one typed source for flags, ``BASTION_*`` environment variables and defaults."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KEYS_FILE = "keys.json"


@dataclass(slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 1337
    mount: str = "/parse"
    app_id: str | None = None
    master_key: str | None = None
    read_only_master_key: str | None = None
    # Parse Server's masterKeyIps, readOnlyMasterKeyIps, maintenanceKey and maintenanceKeyIps: the
    # addresses or networks (comma-separated) each key is taken from, with Parse Server 9's defaults.
    master_key_ips: str = "127.0.0.1,::1"
    read_only_master_key_ips: str = "0.0.0.0/0,::0"
    maintenance_key: str | None = None
    maintenance_key_ips: str = "127.0.0.1,::1"
    javascript_key: str | None = None
    rest_key: str | None = None
    client_key: str | None = None
    database: str | None = None
    data_dir: Path = field(default_factory=lambda: Path("bastion-data"))
    workers: int = 1
    server_url: str | None = None
    # Parse Server's trustProxy: the proxies whose X-Forwarded-For/-Proto are believed (addresses or
    # networks, comma-separated, or *). None: nobody's, the client is the peer of the connection.
    trust_proxy: str | None = None
    allow_client_class_creation: bool = False
    # authData providers, Parse Server's `auth` option: {"<name>": {"oidc": true, "issuer": …, "clientId": …}}.
    auth: dict[str, Any] | None = None
    # The same, read from a JSON file (--auth-config): the command loads it into `auth`.
    auth_config: str | None = None
    enable_anonymous_users: bool = True
    # Parse 9's enableInsecureAuthAdapters: adapters' deprecated id + access token checks (a
    # provider's `enableInsecureAuth`) are honoured only when this is on.
    enable_insecure_auth_adapters: bool = False
    # Parse Server's `protectedFields` option ({"<class>": {"<entity>": [fields]}}), merged into each
    # class's CLP; _User's email is always protected from `*`. And its protectedFieldsOwnerExempt.
    protected_fields: dict[str, Any] | None = None
    protected_fields_owner_exempt: bool = True
    max_body_bytes: int = 20 * 1024 * 1024
    max_limit: int | None = None
    max_include_depth: int = 5
    max_or_breadth: int = 100
    max_query_depth: int = 10
    max_regex_length: int = 1000
    max_batch_requests: int = 50
    query_timeout_ms: int = 30_000
    # Connections and deadlines (docs/deploy.md, "Timeouts and outages"), in milliseconds: a request
    # head must arrive whole within header_timeout; an idle keep-alive connection is closed after
    # keep_alive_timeout; a request is answered within request_timeout (0: no deadline). Past
    # max_connections open connections per process, the longest idle one is closed for a new one.
    request_timeout: int = 30_000
    header_timeout: int = 20_000
    keep_alive_timeout: int = 5_000
    max_connections: int = 10_000
    session_length: int = 365 * 24 * 3600  # seconds a session lives (Parse Server's sessionLength)
    log_level: str = "info"
    access_log: bool = False  # a line per request (uvicorn's access log)
    # Parse Dashboard's Logs page (GET /scriptlog): how many lines the database keeps, and for how
    # many days (bastion/domain/script_log.py). 0 entries: nothing is kept.
    script_log_max_entries: int = 10_000
    script_log_max_age_days: int = 7
    # Email verification and password reset (Parse Server's options of the same names).
    files: str = "local"  # local, postgres, postgresql://…, s3://bucket/prefix?… (see docs/files.md)
    max_upload_bytes: int = 20 * 1024 * 1024  # Parse Server's maxUploadSize
    file_upload_enable_for_public: bool = False  # Parse Server's fileUpload options
    file_upload_enable_for_anonymous_user: bool = False
    file_upload_enable_for_authenticated_user: bool = True
    file_download_enable_for_public: bool = True  # Parse Server's fileDownload options
    file_download_enable_for_anonymous_user: bool = True
    file_download_enable_for_authenticated_user: bool = True
    file_extensions: str | None = None  # regular expressions, JSON list or comma-separated; None: Parse's
    mail_url: str | None = None  # smtp://…, smtps://…; unset: .eml files under <data_dir>/mail
    app_name: str | None = None  # shown in mails and pages (default: the app id)
    verify_user_emails: bool = False
    prevent_login_with_unverified_email: bool = False
    prevent_signup_with_unverified_email: bool = False
    email_verify_token_validity: int | None = None  # seconds; None: never expires
    email_verify_token_reuse_if_valid: bool = False
    email_verify_success_on_invalid_email: bool = True
    password_reset_token_validity: int | None = None  # seconds; None: never expires
    password_reset_token_reuse_if_valid: bool = False
    password_reset_success_on_invalid_email: bool = True
    revoke_session_on_password_reset: bool = True
    enforce_private_users: bool = True  # Parse Server's enforcePrivateUsers: new users readable by themselves only
    # Parse Server's accountLockout ({"duration", "threshold", "unlockOnPasswordReset"}) and
    # passwordPolicy options, as JSON objects (bastion/domain/account_policy.py checks them).
    account_lockout: dict[str, Any] | None = None
    password_policy: dict[str, Any] | None = None
    # Push adapters (docs/push.md, "Adapters"): Web Push's VAPID keys (created once in
    # <data_dir>/vapid.json when unset) and subject; FCM HTTP v1 with a service-account key file;
    # APNs with a .p8 token key. Endpoints are overridable (local stand-ins, proxies).
    vapid_public_key: str | None = None
    vapid_private_key: str | None = None  # base64url or PEM text, or a file holding it
    vapid_subject: str | None = None  # mailto:… or https://…; default: the https server URL's origin
    fcm_service_account: str | None = None  # path of the service-account JSON
    fcm_endpoint: str | None = None  # default https://fcm.googleapis.com
    apns_key: str | None = None  # path of the .p8 key (or its PEM text)
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = None  # the app's bundle id, when installations have no appIdentifier
    apns_production: bool = False
    apns_endpoint: str | None = None  # default: Apple's production or sandbox host
    cloud: str | None = None  # cloud code: a .py file or a package directory (docs/cloud-code.md)
    dev: bool = False  # development mode: cloud code reloads when its files change
    # Scheduled jobs: "NAME=CRON" entries separated by ";" (bastion/cloud/_runtime/scheduler.py), and how often
    # each process looks at what is due.
    schedule: str | None = None
    schedule_tick_ms: int = 5000
    # Sent as X-Parse-Webhook-Key with every webhook call (/hooks), so the webhook can tell it is us.
    webhook_key: str | None = None
    # LiveQuery serves every class unless this names some ("A,B"); --pubsub carries its events (and
    # cache invalidation) between processes: unset for in-process, redis://host:port/db for Redis.
    live_query_classes: str | None = None
    pubsub: str | None = None
    # Push (docs/push.md): clients may POST /push (Parse's allowClientPush); this process runs a
    # push worker; how often an idle worker looks for due pushes.
    allow_client_push: bool = False
    push_worker: bool = True
    push_poll_ms: int = 1000
    # Parse Server's idempotencyOptions: path patterns (regular expressions after the mount path,
    # comma-separated or a JSON list) whose write requests with X-Parse-Request-Id run once, and how
    # many seconds a request id is remembered. No paths: the feature is off (bastion/domain/idempotency.py).
    idempotency_paths: str | None = None
    idempotency_ttl: int = 300

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        mount = "/" + self.mount.strip("/")
        self.mount = "" if mount == "/" else mount

    @property
    def database_url(self) -> str:
        return self.database or f"sqlite:///{(self.data_dir / 'bastion.db').resolve()}"

    @property
    def public_url(self) -> str:
        if self.server_url:
            return self.server_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}{self.mount}"

    def ensure_keys(self) -> bool:
        """Fill a missing app id or master key from the data dir, generating them once.

        Returns True when keys were generated now (the CLI then prints them prominently); ValueError
        when the kept keys cannot be read.
        """
        if self.app_id and self.master_key:
            return False
        path = self.data_dir / KEYS_FILE
        stored: dict[str, str] = {}
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, ValueError) as error:
                raise ValueError(f"{path} cannot be read ({error}): fix it, or remove it to generate new keys "
                                 "(clients then need the new ones)") from None
            if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):
                raise ValueError(f"{path} is not a JSON object of keys: fix it, or remove it to generate new keys")
        generated = False
        if not stored.get("appId") or not stored.get("masterKey"):
            stored = {"appId": secrets.token_hex(12), "masterKey": secrets.token_urlsafe(30)}
            make_data_dir(self.data_dir)
            # Created 0600, so the key is never readable by others, not even for a moment.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(json.dumps(stored, indent=2) + "\n")
            path.chmod(0o600)
            generated = True
        self.app_id = self.app_id or stored["appId"]
        self.master_key = self.master_key or stored["masterKey"]
        return generated

    @property
    def client_keys(self) -> dict[str, str]:
        keys = {"javascript": self.javascript_key, "rest": self.rest_key, "client": self.client_key}
        return {name: value for name, value in keys.items() if value}


def make_data_dir(path: Path) -> bool:
    """Creates the data dir readable by its owner only (0700; missing parents as usual). True when it
    already existed open to others: it is left as it is (it may be a directory the operator shares
    on purpose), and the command warns."""
    if path.is_dir():
        return bool(path.stat().st_mode & 0o077)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return False


# Settings that flags and BASTION_* variables can set, with how to read them from text.
ENV_FIELDS: dict[str, type] = {
    "host": str,
    "port": int,
    "mount": str,
    "app_id": str,
    "master_key": str,
    "read_only_master_key": str,
    "master_key_ips": str,
    "read_only_master_key_ips": str,
    "maintenance_key": str,
    "maintenance_key_ips": str,
    "javascript_key": str,
    "rest_key": str,
    "client_key": str,
    "database": str,
    "data_dir": str,
    "workers": int,
    "server_url": str,
    "trust_proxy": str,
    "allow_client_class_creation": bool,
    "auth": dict,
    "auth_config": str,
    "enable_anonymous_users": bool,
    "enable_insecure_auth_adapters": bool,
    "protected_fields": dict,
    "protected_fields_owner_exempt": bool,
    "max_body_bytes": int,
    "max_limit": int,
    "max_include_depth": int,
    "max_or_breadth": int,
    "max_query_depth": int,
    "max_regex_length": int,
    "max_batch_requests": int,
    "query_timeout_ms": int,
    "request_timeout": int,
    "header_timeout": int,
    "keep_alive_timeout": int,
    "max_connections": int,
    "session_length": int,
    "log_level": str,
    "access_log": bool,
    "script_log_max_entries": int,
    "script_log_max_age_days": int,
    "files": str,
    "max_upload_bytes": int,
    "file_upload_enable_for_public": bool,
    "file_upload_enable_for_anonymous_user": bool,
    "file_upload_enable_for_authenticated_user": bool,
    "file_download_enable_for_public": bool,
    "file_download_enable_for_anonymous_user": bool,
    "file_download_enable_for_authenticated_user": bool,
    "file_extensions": str,
    "mail_url": str,
    "app_name": str,
    "verify_user_emails": bool,
    "prevent_login_with_unverified_email": bool,
    "prevent_signup_with_unverified_email": bool,
    "email_verify_token_validity": int,
    "email_verify_token_reuse_if_valid": bool,
    "email_verify_success_on_invalid_email": bool,
    "password_reset_token_validity": int,
    "password_reset_token_reuse_if_valid": bool,
    "password_reset_success_on_invalid_email": bool,
    "revoke_session_on_password_reset": bool,
    "enforce_private_users": bool,
    "account_lockout": dict,
    "password_policy": dict,
    "cloud": str,
    "dev": bool,
    "vapid_public_key": str,
    "vapid_private_key": str,
    "vapid_subject": str,
    "fcm_service_account": str,
    "fcm_endpoint": str,
    "apns_key": str,
    "apns_key_id": str,
    "apns_team_id": str,
    "apns_topic": str,
    "apns_production": bool,
    "apns_endpoint": str,
    "schedule": str,
    "schedule_tick_ms": int,
    "webhook_key": str,
    "live_query_classes": str,
    "pubsub": str,
    "allow_client_push": bool,
    "push_worker": bool,
    "push_poll_ms": int,
    "idempotency_paths": str,
    "idempotency_ttl": int,
}


def _parse_env(kind: type, text: str) -> object:
    if kind is bool:
        return text.strip().lower() in ("1", "true", "yes", "on")
    if kind is int:
        return int(text)
    if kind is dict:
        return json.loads(text)
    return text


def settings_from_env(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    import os

    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, kind in ENV_FIELDS.items():
        text = env.get("BASTION_" + name.upper())
        if text is not None and text != "":
            values[name] = _parse_env(kind, text)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)  # type: ignore[arg-type]


def settings_to_env(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {}
    for name in ENV_FIELDS:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            env["BASTION_" + name.upper()] = "true" if value else "false"
        elif isinstance(value, dict):
            env["BASTION_" + name.upper()] = json.dumps(value)
        else:
            env["BASTION_" + name.upper()] = str(value)
    env["BASTION_MOUNT"] = settings.mount or "/"
    return env
