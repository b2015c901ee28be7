"""The database-kept sign-in challenges: used once (even by racing requests), gone once expired,
counted per subject for rate limits; on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bastion.domain.auth_challenges import ChallengeStore, digest
from bastion.domain.schema_registry import SchemaRegistry
from bastion.ports.storage import StorageAdapter
from bastion.services import open_storage
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'c.sqlite3'}"
        return
    database = create_pg_database()
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{database}"
    finally:
        drop_pg_database(database)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ChallengeStore]:
    storage: StorageAdapter = open_storage(database_url)
    await storage.open()
    schemas = SchemaRegistry(storage)
    await schemas.load()
    try:
        yield ChallengeStore(storage, schemas)
    finally:
        await storage.close()


async def test_a_challenge_is_taken_once(store: ChallengeStore) -> None:
    key = await store.put("passkey", {"challenge": "abc"}, 60)
    taken = await store.take("passkey", key)
    assert taken is not None and taken.data == {"challenge": "abc"}
    assert await store.take("passkey", key) is None
    assert await store.take("passkey", "no-such-key") is None


async def test_a_challenge_of_another_purpose_is_not_taken(store: ChallengeStore) -> None:
    key = await store.put("email", {}, 60)
    assert await store.take("passkey", key) is None
    assert await store.take("email", key) is not None


async def test_racing_takes_get_it_once(store: ChallengeStore) -> None:
    key = await store.put("email", {"n": 1}, 60, key=digest("123456"))
    results = await asyncio.gather(*(store.take("email", key) for _ in range(8)))
    assert sum(result is not None for result in results) == 1


async def test_an_expired_challenge_is_not_taken(store: ChallengeStore) -> None:
    key = await store.put("email", {}, 0.05)
    await asyncio.sleep(0.2)
    assert await store.take("email", key) is None
    await store.put("email", {}, 0.01)
    await asyncio.sleep(0.05)
    assert await store.sweep() >= 1


async def test_challenges_are_counted_per_subject(store: ChallengeStore) -> None:
    for _ in range(3):
        await store.put("email", {}, 60, subject="a")
    await store.put("email", {}, 60, subject="b")
    assert await store.count("email", "a", 60) == 3
    assert await store.count("email", "b", 60) == 1
    assert await store.count("web", "a", 60) == 0
