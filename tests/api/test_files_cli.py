"""``bastion files orphans``: stored files no object refers to, listed (dry run) and deleted.

A Bastion of its own per combination (SQLite or PostgreSQL, files local or on S3 through moto)
holds objects created over HTTP; the command runs as a separate process on the same database and
files, as an operator would run it.
"""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from bastion.adapters.files import open_files
from bastion.domain.thumbnails import thumbnail
from bastion.ports.files import FilesAdapter
from tests.conftest import (
    PG_ADMIN_URL,
    ROOT,
    Server,
    create_pg_database,
    drop_pg_database,
    postgres_available,
    start_server,
    stop_server,
)
from tests.contract.s3_server import FAKE_CREDENTIALS


@dataclass
class Setup:
    server: Server
    args: list[str]  # what the command needs to find the same database and files
    files_url: str
    env: dict[str, str]


@pytest.fixture(scope="module", params=["sqlite+local", "postgres+local", "sqlite+s3"])
def setup(request: pytest.FixtureRequest, own_server: None, moto_s3: Any) -> Iterator[Setup]:
    database, files_url = request.param.split("+")
    env = dict(os.environ)
    db_name = None
    db_url = None
    if database == "postgres":
        reason = postgres_available()
        if reason:
            pytest.skip(f"PostgreSQL suite skipped: {reason}")
        db_name = create_pg_database()
        db_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    if files_url == "s3":
        if isinstance(moto_s3, str):
            pytest.skip(moto_s3)
        files_url = moto_s3.files_url(moto_s3.new_bucket(), "app")
        env.update(FAKE_CREDENTIALS)
    extra = ["--files", files_url]
    saved = dict(os.environ)
    os.environ.update(env)  # the server process inherits the S3 credentials
    try:
        server = start_server(database, db_url, extra)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    args = ["--data-dir", str(server.data_dir), "--files", files_url] + (["--database", db_url] if db_url else [])
    try:
        yield Setup(server, args, files_url, env)
    finally:
        stop_server(server)
        if db_name:
            drop_pg_database(db_name)


def orphans(setup: Setup, *extra: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "bastion", "files", "orphans", *setup.args, *extra],
                          cwd=ROOT, env=setup.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


class Backend:
    """The server's files, reached directly as the command reaches them."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup

    async def _with(self, work: Any) -> Any:
        saved = dict(os.environ)
        os.environ.update(self.setup.env)
        try:
            files: FilesAdapter = open_files(self.setup.files_url, self.setup.server.data_dir)
            await files.open()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        try:
            return await work(files)
        finally:
            await files.close()

    def store(self, *names: str) -> None:
        async def work(files: FilesAdapter) -> None:
            for name in names:
                await files.save(name, _one(_jpeg()), "image/jpeg")
        asyncio.run(self._with(work))

    def thumb(self, name: str, spec: str) -> str:
        async def work(files: FilesAdapter) -> str:
            return (await thumbnail(files, name, spec, None)).name
        return str(asyncio.run(self._with(work)))

    def names(self) -> set[str]:
        async def work(files: FilesAdapter) -> set[str]:
            return {name async for name in files.names()}
        return set(asyncio.run(self._with(work)))


def file_name(label: str) -> str:
    return f"{secrets.token_hex(16)}_{label}.jpg"


def file_json(name: str) -> dict[str, str]:
    return {"__type": "File", "name": name}


def test_orphans_are_listed_then_deleted_and_referenced_files_kept(setup: Setup) -> None:
    backend = Backend(setup)
    field, listed, nested, config, orphan, gone_with_object = (file_name(label) for label in (
        "field", "listed", "nested", "config", "orphan", "gone"))
    backend.store(field, listed, nested, config, orphan, gone_with_object)
    kept_thumb = backend.thumb(field, "16x16")
    orphan_thumb = backend.thumb(orphan, "16x16")
    with setup.server.client(master=True) as master:
        cls = "Orphans" + secrets.token_hex(3)
        assert master.post(f"/classes/{cls}", json={"pic": file_json(field)}).status_code == 201
        assert master.post(f"/classes/{cls}", json={"album": [file_json(listed), 3, "x"],
                                                    "extra": {"deep": {"cover": file_json(nested)}}}).status_code == 201
        doomed = master.post(f"/classes/{cls}", json={"pic": file_json(gone_with_object)})
        assert doomed.status_code == 201
        assert master.delete(f"/classes/{cls}/{doomed.json()['objectId']}").status_code == 200
        assert master.put("/config", json={"params": {"logo": file_json(config)}}).status_code == 200
    before = backend.names()
    assert {field, listed, nested, config, orphan, gone_with_object, kept_thumb, orphan_thumb} <= before

    dry = orphans(setup)
    expected = {orphan, orphan_thumb, gone_with_object}
    assert set(dry.stdout.split()) >= expected
    assert not set(dry.stdout.split()) & {field, listed, nested, config, kept_thumb}
    assert "dry run" in dry.stderr and "orphans" in dry.stderr
    assert backend.names() == before  # nothing deleted without --delete

    deleted = orphans(setup, "--delete")
    assert set(deleted.stdout.split()) == set(dry.stdout.split())
    assert "deleted" in deleted.stderr
    after = backend.names()
    assert not after & expected
    assert {field, listed, nested, config, kept_thumb} <= after

    again = orphans(setup, "--quiet")
    assert again.stdout == "" and again.stderr == ""


def test_a_thumbnail_whose_file_is_gone_is_an_orphan(setup: Setup) -> None:
    backend = Backend(setup)
    parent = file_name("parent")
    backend.store(parent)
    derived = backend.thumb(parent, "8")

    async def drop_parent(files: FilesAdapter) -> None:
        await files.delete(parent)
    asyncio.run(backend._with(drop_parent))
    assert derived in orphans(setup).stdout.split()


def test_bad_files_setting_is_a_usage_error(setup: Setup) -> None:
    done = subprocess.run([sys.executable, "-m", "bastion", "files", "orphans", "--files", "ftp://nowhere",
                           "--data-dir", str(setup.server.data_dir)], cwd=ROOT, env=setup.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unsupported --files value" in done.stderr
