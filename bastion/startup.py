"""What `bastion serve` checks before it serves, and how it runs the server processes.

Every mistake found here stops the start with one line (a ``StartupError``, printed by the command
as ``Error: …``) and a non-zero exit, for one worker or many: the settings are checked, the data dir
written, the database opened and the port bound in the first process, before any worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bastion.config import ENV_FIELDS, Settings, make_data_dir
from bastion.logs import VERBOSE, log_config

CONFIG_FILE = "bastion.toml"  # read from the working directory when no --config is given
DATABASE_TIMEOUT = 10.0  # seconds the first connection may take before the start gives up
# uvicorn's exit status for a server (or one of its workers) that failed to start.
STARTUP_FAILURE = 3


class StartupError(Exception):
    """A setting that cannot work: its message is the one line the command prints."""


def redact(url: str) -> str:
    """A URL with its password hidden, for banners and error lines."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}{':***' if ':' in creds else ''}@{host}"
    return url


# --- the config file -------------------------------------------------------------------------------

def _toml_value(path: str, key: str, value: Any, multiple: bool) -> Any:
    """The value of ``key`` as click takes a default, or StartupError naming the key."""
    kind = ENV_FIELDS[key]
    if multiple:  # --schedule: one entry or a list of them
        entries = [value] if isinstance(value, str) else value
        if isinstance(entries, list) and all(isinstance(entry, str) for entry in entries):
            return entries
        raise StartupError(f"{path}: {key} must be a string or a list of strings")
    if kind is dict:  # JSON options (--auth, --protected-fields, …): a table in the file
        if isinstance(value, dict):
            return json.dumps(value)
        raise StartupError(f"{path}: {key} must be a table (e.g. [{key}] with its keys below it)")
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    names = {bool: "true or false", int: "an integer", str: "a string"}
    raise StartupError(f"{path}: {key} must be {names[kind]}, not {type(value).__name__} {value!r}")


def read_config_file(path: str, options: dict[str, bool]) -> dict[str, Any]:
    """The settings a TOML file gives, as click's ``default_map`` (flags and variables win over
    them). ``options``: the names of the command's options, each with whether it repeats."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise StartupError(f"config file {path}: cannot be read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise StartupError(f"config file {path}: not valid TOML: {error}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in options or key not in ENV_FIELDS:
            hint = f" (did you mean {key.replace('-', '_')}?)" if key.replace("-", "_") in options else ""
            raise StartupError(f"{path}: unknown key {key!r}{hint}: keys are the settings' names, as "
                               "max_body_bytes for --max-body-bytes")
        values[key] = _toml_value(path, key, value, options[key])
    return values


# --- checks before start ---------------------------------------------------------------------------

def check_database_url(url: str) -> None:
    """A --database URL Bastion can open, naming its database."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return
    if not url.startswith(("postgresql://", "postgres://")):
        raise StartupError(f"--database {redact(url)}: not a database URL (use sqlite:///path/to/file.db or "
                           "postgresql://user@host:5432/dbname)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as error:
        raise StartupError(f"--database {redact(url)}: malformed URL ({error})") from None
    query = parse_qs(parts.query)
    if not parts.path.strip("/") and not query.get("dbname") and not query.get("database"):
        # PostgreSQL would connect to the database named as the user (often `postgres`) and write there.
        raise StartupError(f"--database {redact(url)}: the URL names no database (add /dbname, "
                           "e.g. postgresql://user@host:5432/bastion)")


def check_data_dir(data_dir: Path) -> bool:
    """The data dir exists (made now, 0700) and this process can write in it. True when it already
    existed open to other users (the command warns; see config.make_data_dir)."""
    try:
        loose = make_data_dir(data_dir)
        probe = data_dir / ".bastion-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise StartupError(f"--data-dir {data_dir}: not a writable directory ({error.strerror or error})") from None
    return loose


def check_database(settings: Settings) -> None:
    """Opens the database once (creating its tables), so an unreachable one stops the start with one
    line before any worker starts."""
    from bastion.services import open_storage

    async def probe() -> None:
        storage = open_storage(settings.database_url, settings.query_timeout_ms)
        try:
            await asyncio.wait_for(storage.open(), DATABASE_TIMEOUT)
        finally:
            await storage.close()

    try:
        asyncio.run(probe())
    except TimeoutError:
        raise StartupError(f"database {redact(settings.database_url)}: no answer within "
                           f"{DATABASE_TIMEOUT:.0f} s") from None
    except Exception as error:  # noqa: BLE001 - whatever the driver raises, the operator gets one line
        raise StartupError(f"database {redact(settings.database_url)} cannot be opened: {_first_line(error)}") from None


def check_pubsub(settings: Settings) -> None:
    """Connects to the --pubsub service once, as check_database does for the database."""
    from bastion.adapters.pubsub import open_pubsub

    if not settings.pubsub:
        return
    try:
        pubsub = open_pubsub(settings.pubsub)
    except ValueError as error:
        raise StartupError(str(error)) from None

    async def probe() -> None:
        try:
            await asyncio.wait_for(pubsub.open(), DATABASE_TIMEOUT)
        finally:
            await pubsub.close()

    try:
        asyncio.run(probe())
    except TimeoutError:
        raise StartupError(f"--pubsub {redact(settings.pubsub)}: no answer within {DATABASE_TIMEOUT:.0f} s") from None
    except Exception as error:  # noqa: BLE001 - whatever the client raises, the operator gets one line
        raise StartupError(f"--pubsub {redact(settings.pubsub)}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound now: a port in use is one line, and port 0 becomes the port the
    system chose (printed in the banner and used in the public URL)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.set_inheritable(True)  # the workers serve it
    return sock


def pubsub_warning(settings: Settings) -> str | None:
    """The banner's warning when several processes have no pub/sub between them."""
    if settings.workers > 1 and settings.pubsub == "memory":
        return (f"--pubsub memory with {settings.workers} workers: each worker keeps its own caches and "
                "LiveQuery events, so answers may be stale for up to 5 s (unset --pubsub: the database's channel)")
    return None


# --- running ---------------------------------------------------------------------------------------

def _supervisor_class() -> Any:
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        """uvicorn's, noticing at once a worker that exited because it could not start (uvicorn's own
        check pings the workers in turn, waiting up to its health-check timeout on each)."""

        def keep_subprocess_alive(self) -> None:
            for process in self.processes:
                if process.exitcode == STARTUP_FAILURE:
                    logging.getLogger("uvicorn.error").error("worker [%s] failed to start, stopping", process.pid)
                    self.should_exit.set()
                    return
            super().keep_subprocess_alive()

    return Supervisor


def run(settings: Settings, sock: socket.socket) -> int:
    """Serves on ``sock`` with uvicorn, in one process or ``settings.workers``; the exit status:
    STARTUP_FAILURE when the server, or any worker, failed to start."""
    from uvicorn import Config, Server

    from bastion.livequery import MAX_MESSAGE_BYTES

    config = Config(
        "bastion.asgi:build",
        factory=True,
        host=settings.host,
        port=sock.getsockname()[1],
        workers=settings.workers,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="bastion.http.server:CoalescingHttpToolsProtocol",  # httptools, one send per answer
        access_log=settings.access_log,
        # uvicorn arms this timer after each answer (call_later: a float is fine, though typed int).
        timeout_keep_alive=settings.keep_alive_timeout / 1000,  # type: ignore[arg-type]
        # Each worker sets its logging up from this before it logs anything: JSON, at --log-level.
        log_config=log_config(settings.log_level),
        log_level=VERBOSE if settings.log_level == "verbose" else settings.log_level,
        server_header=False,
        date_header=False,
        proxy_headers=bool(settings.trust_proxy),
        forwarded_allow_ips=settings.trust_proxy or None,
        # LiveQuery's WebSockets: frames past its limit are refused, no per-socket compression state,
        # and keep-alive pings (a client that stops answering is dropped).
        ws_max_size=MAX_MESSAGE_BYTES,
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
    )
    if settings.workers > 1:
        supervisor = _supervisor_class()(config, sockets=[sock])
        supervisor.run()
        # uvicorn stops every worker when one fails to start, but exits 0: say it failed.
        failed = any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes)
        return STARTUP_FAILURE if failed else 0
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILURE


def load_auth_config(path: str) -> dict[str, Any]:
    """--auth-config FILE.json: Parse Server's `auth` option as a file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise StartupError(f"--auth-config {path}: cannot be read ({error.strerror or error})") from None
    try:
        auth = json.loads(text)
    except ValueError as error:
        raise StartupError(f"--auth-config {path}: not valid JSON: {error}") from None
    if not isinstance(auth, dict):
        raise StartupError(f"--auth-config {path}: must be a JSON object of provider names to options")
    return auth


def check_auth(settings: Settings, custom: dict[str, Any]) -> str:
    """Builds the sign-in providers once before the server starts, so a provider's bad option stops
    the start with one line naming the provider and the key; their names otherwise."""
    from bastion.domain.auth_providers import AuthConfigError, ProviderRegistry

    async def build() -> str:
        registry = ProviderRegistry.from_options(
            settings.auth, enable_anonymous_users=settings.enable_anonymous_users,
            enable_insecure_auth_adapters=settings.enable_insecure_auth_adapters, custom=custom)
        names = ", ".join(registry.names()) or "none"
        await registry.aclose()
        return names

    try:
        return asyncio.run(build())
    except AuthConfigError as error:
        raise StartupError(str(error)) from None
