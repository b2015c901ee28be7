"""The script log's storage (``_ScriptLog``: append, read, trim) on both backends, and the store
that feeds it (bastion/domain/script_log.py): lines kept or not, secrets masked, a failed write that
fails nothing and does not feed itself."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
import pytest

from bastion.domain.script_log import ScriptLog, ScriptLogOptions, kept, read_options
from bastion.ports.storage import StorageAdapter

T0 = 1_800_000_000_000  # milliseconds


def entry(ms: int, level: str, message: str) -> tuple[int, str, str]:
    return ms, level, orjson.dumps({"level": level, "message": message}).decode()


def messages(texts: list[str]) -> list[str]:
    return [orjson.loads(text)["message"] for text in texts]


async def test_append_read_order_level_window_and_limit(storage: StorageAdapter) -> None:
    await storage.log_append([entry(T0 + i, "error" if i % 2 else "info", f"m{i}") for i in range(6)])
    await storage.log_append([entry(T0 + 5, "info", "m5b")])  # same millisecond: the later write is newer
    assert messages(await storage.log_read(T0, T0 + 10, None, 100, True)) == ["m5b", "m5", "m4", "m3", "m2", "m1",
                                                                              "m0"]
    assert messages(await storage.log_read(T0, T0 + 10, None, 3, False)) == ["m0", "m1", "m2"]
    assert messages(await storage.log_read(T0 + 1, T0 + 3, None, 100, False)) == ["m1", "m2", "m3"]
    assert messages(await storage.log_read(T0, T0 + 10, "error", 100, True)) == ["m5", "m3", "m1"]
    assert await storage.log_read(T0 + 20, T0 + 30, None, 100, True) == []


async def test_trim_by_age_and_by_count(storage: StorageAdapter) -> None:
    await storage.log_append([entry(T0 + i, "info", f"m{i}") for i in range(10)])
    await storage.log_trim(T0 + 3, 100)  # older than T0+3 goes
    assert messages(await storage.log_read(0, T0 * 2, None, 100, False)) == [f"m{i}" for i in range(3, 10)]
    await storage.log_trim(0, 4)  # the 4 newest stay
    assert messages(await storage.log_read(0, T0 * 2, None, 100, False)) == ["m6", "m7", "m8", "m9"]
    await storage.log_trim(0, 0)
    assert await storage.log_read(0, T0 * 2, None, 100, False) == []


def record(name: str, level: int, message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_which_lines_are_kept() -> None:
    assert kept(record("bastion.cloud", logging.INFO, "Ran cloud function"))
    assert kept(record("bastion.cloud.x", logging.INFO, "a child of the cloud logger"))
    assert kept(record("bastion", logging.ERROR, "unhandled error"))
    assert kept(record("bastion.push", logging.WARNING, "a warning"))
    assert not kept(record("bastion.push", logging.INFO, "push chatter"))
    assert not kept(record("bastion.mail", logging.INFO, "a reset link with its token"))
    assert not kept(record("bastion.cloud", logging.DEBUG, "debug"))
    assert not kept(record("uvicorn.error", logging.ERROR, "another library"))
    assert not kept(record("bastionish", logging.ERROR, "a look-alike name"))
    assert not kept(record("bastion.scriptlog", logging.WARNING, "the store's own failures"))


def test_entries_mask_secrets() -> None:
    store = ScriptLog(None, secrets=["the-master-key-value", None, "x"])  # type: ignore[arg-type]
    rec = record("bastion.cloud", logging.INFO, "token %s key %s body %s", "r:" + "a1" * 16, "the-master-key-value",
                 '{"password": "hunter2", "Password":"x\\"y", "name": "n"} '
                 + repr({"password": "hunter3", "authData": {"a": "b"}, "sessionToken": "it's"}),
                 parse={"params": {"password": "p", "nested": {"sessionToken": "s", "authData": {"a": 1}}, "k": "v"}})
    ms, level, text = store.entry(rec)
    got = orjson.loads(text)
    assert level == "info" and ms == int(rec.created * 1000)
    assert got["message"] == ('token r:******** key ******** body {"password": "********", "Password":"********", '
                              '"name": "n"} {\'password\': \'********\', \'authData\': \'********\', '
                              '\'sessionToken\': \'********\'}')
    assert got["params"] == {"password": "********", "nested": {"sessionToken": "********", "authData": "********"},
                             "k": "v"}
    assert list(got) == sorted(got)


def test_read_options_as_parse_server() -> None:
    now = int(time.time() * 1000)
    since, until, size, descending, level = read_options({}, 10_000)
    assert abs(until - now) < 5000 and abs(now - since - 7 * 86_400_000) < 5000
    assert (size, descending, level) == (10, True, None)
    assert read_options({"size": "3", "n": "5", "order": "asc", "level": "error"}, 10_000)[2:] == (5, False, "error")
    assert read_options({"size": "nan"}, 10_000)[2] == 10
    assert read_options({"size": "1e9"}, 50)[2] == 10_000  # at most 10 000 lines (or the bound) per answer
    assert read_options({"size": "1e9"}, 20_000)[2] == 20_000
    assert read_options({"from": "2026-01-02T03:04:05.678Z"}, 10)[0] == 1767323045678
    assert read_options({"until": "2026-01-02"}, 10)[1] == 1767312000000


class FailingStorage:
    def __init__(self) -> None:
        self.calls = 0

    async def log_append(self, rows: list[tuple[int, str, str]]) -> None:
        self.calls += 1
        logging.getLogger("bastion").error("the database logs its own failure")
        raise ConnectionError("database down")

    async def log_trim(self, before: int, keep: int) -> None:
        raise ConnectionError("database down")


async def test_a_failing_write_fails_nothing_and_does_not_feed_itself(caplog: pytest.LogCaptureFixture) -> None:
    storage = FailingStorage()
    store = ScriptLog(storage, ScriptLogOptions(flush_s=0.01, buffer_max=50))  # type: ignore[arg-type]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    await store.start()
    try:
        for i in range(200):  # past the buffer's bound: counted and dropped, never raised
            logging.getLogger("bastion.cloud").info("line %d", i)
        await asyncio.sleep(0.3)
    finally:
        await store.stop()
        root.setLevel(level)
    # The store's warning was logged once and not kept; the storage's own error line was not kept
    # either (it would make the next write fail, and so on).
    warnings = [r for r in caplog.records if r.name == "bastion.scriptlog" and "could not write" in r.getMessage()]
    assert len(warnings) == 1
    assert storage.calls == 1  # the next write waits a second
    assert store.dropped == 200  # 150 past the bound, 50 in the failed batch
    assert not any("its own failure" in row[2] for row in store._buffer)
    assert store.handler not in root.handlers
