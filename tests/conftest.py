"""Shared fixtures: a real Bastion server per storage backend, reached over HTTP.

``server`` is parametrised over SQLite and PostgreSQL; the PostgreSQL run creates a database with a
random name on 127.0.0.1:5432 and drops it afterwards, and is skipped (with the reason) when no
PostgreSQL answers there.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BASTION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed"
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return None
    except OSError as exc:
        return f"no PostgreSQL on 127.0.0.1:5432 ({exc})"


def _admin(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def create_pg_database() -> str:
    name = "bastion_test_" + secrets.token_hex(6)
    _admin(f'CREATE DATABASE "{name}"')
    return name


def drop_pg_database(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Server:
    backend: str
    url: str  # e.g. http://127.0.0.1:PORT/parse
    app_id: str
    master_key: str
    javascript_key: str
    process: subprocess.Popen[bytes]
    data_dir: Path

    def client(self, master: bool = False, **headers: str) -> httpx.Client:
        base = {"X-Parse-Application-Id": self.app_id, "X-Parse-Javascript-Key": self.javascript_key}
        if master:
            base["X-Parse-Master-Key"] = self.master_key
        base.update(headers)
        return httpx.Client(base_url=self.url, headers=base, timeout=30)


def start_server(backend: str, database: str | None, extra_args: list[str] | None = None) -> Server:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-test-"))
    port = free_port()
    app_id, master, js_key = "test-app", "test-master-" + secrets.token_hex(4), "test-js"
    args = [sys.executable, "-m", "bastion", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(data_dir), "--app-id", app_id, "--master-key", master,
            "--javascript-key", js_key, "--log-level", "warning", *(extra_args or [])]
    if database:
        args += ["--database", database]
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/parse"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bastion exited: {(data_dir / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).json().get("status") == "ok":
                return Server(backend, url, app_id, master, js_key, process, data_dir)
        except (httpx.HTTPError, ValueError):
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"bastion did not become healthy: {(data_dir / 'server.log').read_text()[-3000:]}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def backend_database(backend: str) -> Iterator[str | None]:
    """The ``--database`` for a server of ``backend``: None for SQLite (the server's own file in its
    data dir), else the URL of a fresh PostgreSQL database, dropped afterwards. Skips the test when
    PostgreSQL does not answer."""
    if backend != "postgres":
        yield None
        return
    reason = postgres_available()
    if reason:
        pytest.skip(f"PostgreSQL suite skipped: {reason}")
    db_name = create_pg_database()
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    finally:
        drop_pg_database(db_name)


@contextmanager
def running_server(backend: str, extra_args: list[str] | None = None) -> Iterator[Server]:
    """A Bastion of its own on ``backend`` (a fresh database), stopped and dropped afterwards."""
    with backend_database(backend) as database:
        srv = start_server(backend, database, extra_args)
        try:
            yield srv
        finally:
            stop_server(srv)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``--dist loadscope`` (as ./scripts/test runs), tests/parallel.py decides the work units."""
    if config.getoption("dist") != "loadscope":
        return None
    from tests.parallel import ModuleScheduling

    return ModuleScheduling(config, log)


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    # The API suite's server runs the cloud code of tests/cloud_app (triggers on Cloud* classes only).
    with running_server(request.param, ["--cloud", str(ROOT / "tests" / "cloud_app")]) as srv:
        yield srv


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    """A client with the app id and JavaScript key (no master key)."""
    with server.client() as client:
        yield client


@pytest.fixture
def master(server: Server) -> Iterator[httpx.Client]:
    """A client with the master key."""
    with server.client(master=True) as client:
        yield client


@pytest.fixture
def class_name() -> str:
    """A fresh class name for one test."""
    return "T" + secrets.token_hex(5)


def make_class(master: httpx.Client, name: str, fields: dict[str, Any] | None = None) -> None:
    response = master.post(f"/schemas/{name}", json={"className": name, "fields": fields or {}})
    assert response.status_code == 200, response.text


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[Any]:
    """A moto S3 server (tests/contract/s3_server.py) for the session, or the reason there is none
    (a string: tests skip with it)."""
    from tests.contract.s3_server import moto_s3_server, moto_unavailable

    reason = moto_unavailable()
    if reason:
        yield reason
        return
    with moto_s3_server() as moto:
        yield moto
