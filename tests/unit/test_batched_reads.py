"""BatchedReads: reads run alone at once while few statements of their key run; past that, the
reads of one loop turn run together; when a shared statement fails, each reads alone."""

from __future__ import annotations

import asyncio

import pytest

from bastion.adapters.storage.postgres.batched_reads import BatchedReads

ROWS = {"a": "row-a", "b": "row-b", "c": "row-c", "d": "row-d"}


class Database:
    """What the reads asked for: the single reads and the batches, in order."""

    def __init__(self, fail_many: BaseException | None = None, delay: float = 0.01) -> None:
        self.singles: list[str] = []
        self.batches: list[list[str]] = []
        self.fail_many = fail_many
        self.delay = delay

    def one(self, object_id: str):  # noqa: ANN201 - the read_one callable
        async def read() -> str | None:
            self.singles.append(object_id)
            await asyncio.sleep(self.delay)
            return ROWS.get(object_id)
        return read

    async def many(self, ids: list[str]) -> list[str | None]:
        self.batches.append(ids)
        await asyncio.sleep(self.delay)
        if self.fail_many is not None:
            raise self.fail_many
        return [ROWS.get(oid) for oid in ids]


def read(reads: BatchedReads[str, str | None], db: Database, object_id: str,
         key: str = "k") -> asyncio.Future[str | None]:
    return asyncio.ensure_future(reads.read(key, object_id, db.one(object_id), db.many))


async def test_a_read_alone_runs_at_once() -> None:
    db = Database()
    assert await read(BatchedReads(max_batch=64), db, "a") == "row-a"
    assert db.singles == ["a"] and db.batches == []


async def test_reads_past_the_in_flight_limit_share_a_statement() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64, in_flight=1)
    results = await asyncio.gather(*(read(reads, db, oid) for oid in ["a", "b", "zz", "a", "c"]))
    assert results == ["row-a", "row-b", None, "row-a", "row-c"]
    assert db.singles == ["a"]  # the first ran at once
    assert db.batches == [["b", "zz", "a", "c"]]  # the others, of the same turn, went together


async def test_reads_of_later_turns_start_a_new_batch() -> None:
    db, reads = Database(delay=0.05), BatchedReads[str, str | None](max_batch=64, in_flight=1)
    first = [read(reads, db, oid) for oid in "abc"]
    await asyncio.sleep(0.01)
    second = [read(reads, db, oid) for oid in "da"]
    assert await asyncio.gather(*first, *second) == ["row-a", "row-b", "row-c", "row-d", "row-a"]
    assert db.singles == ["a"] and db.batches == [["b", "c"], ["d", "a"]]


async def test_reads_of_different_keys_never_share() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64)
    results = await asyncio.gather(read(reads, db, "a", "reader-1"), read(reads, db, "b", "reader-2"))
    assert results == ["row-a", "row-b"]
    assert sorted(db.singles) == ["a", "b"] and db.batches == []


async def test_in_flight_statements_per_key() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64)  # two by default
    results = await asyncio.gather(*(read(reads, db, oid) for oid in ["a", "b", "c", "d"]))
    assert results == ["row-a", "row-b", "row-c", "row-d"]
    assert db.singles == ["a", "b"] and db.batches == [["c", "d"]]


async def test_a_lone_waiting_read_runs_its_own_statement() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64, in_flight=1)
    assert await asyncio.gather(read(reads, db, "a"), read(reads, db, "b")) == ["row-a", "row-b"]
    assert db.singles == ["a", "b"] and db.batches == []


async def test_a_batch_holds_at_most_max_batch_reads() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=2, in_flight=1)
    results = await asyncio.gather(*(read(reads, db, oid) for oid in ["a", "b", "c", "d", "a"]))
    assert results == ["row-a", "row-b", "row-c", "row-d", "row-a"]
    assert db.singles == ["a"] and db.batches == [["b", "c"], ["d", "a"]]


async def test_a_failed_batch_lets_each_read_alone() -> None:
    db = Database(fail_many=RuntimeError("statement failed"))
    reads = BatchedReads[str, str | None](max_batch=64, in_flight=1)
    results = await asyncio.gather(*(read(reads, db, oid) for oid in ["a", "b", "c"]))
    assert results == ["row-a", "row-b", "row-c"]
    assert db.batches == [["b", "c"]] and sorted(db.singles) == ["a", "b", "c"]


async def test_a_cancelled_read_does_not_disturb_the_others() -> None:
    db, reads = Database(delay=0.05), BatchedReads[str, str | None](max_batch=64, in_flight=1)
    tasks = [read(reads, db, oid) for oid in ["a", "b", "c", "d"]]
    await asyncio.sleep(0.01)
    tasks[0].cancel()  # the one running alone
    tasks[2].cancel()  # one in the batch that is running
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError) and isinstance(results[2], asyncio.CancelledError)
    assert results[1] == "row-b" and results[3] == "row-d"
    assert db.batches == [["b", "c", "d"]]


async def test_nothing_is_left_behind() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64)
    await asyncio.gather(*(read(reads, db, oid) for oid in "abcd"))
    await asyncio.sleep(0)
    assert reads._running == {} and reads._open == {} and not reads._tasks


@pytest.mark.parametrize("failure", [RuntimeError("x"), asyncio.CancelledError()])
async def test_a_waiting_read_is_answered_whatever_happens(failure: BaseException) -> None:
    db, reads = Database(fail_many=failure), BatchedReads[str, str | None](max_batch=64, in_flight=1)
    results = await asyncio.gather(*(read(reads, db, oid) for oid in "abc"), return_exceptions=True)
    assert results == ["row-a", "row-b", "row-c"]
