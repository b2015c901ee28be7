"""The ``bastion`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
@click.option("--max-limit", envvar="BASTION_MAX_LIMIT", type=int, help="Largest `limit` a query may ask for.")
@click.option("--max-body-bytes", envvar="BASTION_MAX_BODY_BYTES", type=int, default=20 * 1024 * 1024,
              show_default=True, help="Largest request body accepted.")
@click.option("--log-level", envvar="BASTION_LOG_LEVEL", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
def serve(access_log: bool, **options: object) -> None:
    """Run the API server.

    With no options it serves SQLite in ./bastion-data on http://127.0.0.1:1337/parse and prints
    the keys it generated for you.
    """
    import uvicorn

    from bastion.logs import configure

    settings = settings_from_env({}, **{k: v for k, v in options.items() if v is not None})
    generated = settings.ensure_keys()
    configure(settings.log_level)
    os.environ.update(settings_to_env(settings))
    db = _redact(settings.database_url)
    click.echo(f"Bastion {__version__}", err=True)
    click.echo(f"  API:          {settings.public_url}", err=True)
    click.echo(f"  Health:       {settings.public_url}/health", err=True)
    click.echo(f"  App id:       {settings.app_id}", err=True)
    click.echo(f"  Master key:   {settings.master_key}" + ("  (generated; kept in "
               f"{Path(settings.data_dir) / 'keys.json'})" if generated else ""), err=True)
    click.echo(f"  Database:     {db}", err=True)
    click.echo(f"  Data dir:     {Path(settings.data_dir).resolve()}", err=True)
    click.echo(f"  Workers:      {settings.workers}", err=True)
    uvicorn.run(
        "bastion.asgi:build",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        access_log=access_log,
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
