"""BatchedReads: reads of one loop turn share one statement; alone, or when it fails, each reads alone."""

from __future__ import annotations

import asyncio

import pytest

from bastion.adapters.storage.batched_reads import BatchedReads

ROWS = {"a": "row-a", "b": "row-b", "c": "row-c"}


class Database:
    """What the reads asked for: the single reads and the batches, in order."""

    def __init__(self, fail_many: BaseException | None = None, many_delay: float = 0.0) -> None:
        self.singles: list[str] = []
        self.batches: list[list[str]] = []
        self.fail_many = fail_many
        self.many_delay = many_delay

    def one(self, object_id: str):  # noqa: ANN201 - the read_one callable
        async def read() -> str | None:
            self.singles.append(object_id)
            await asyncio.sleep(0)
            return ROWS.get(object_id)
        return read

    async def many(self, ids: list[str]) -> list[str | None]:
        self.batches.append(ids)
        if self.many_delay:
            await asyncio.sleep(self.many_delay)
        await asyncio.sleep(0)
        if self.fail_many is not None:
            raise self.fail_many
        return [ROWS.get(oid) for oid in ids]


def read(reads: BatchedReads[str, str | None], db: Database, object_id: str,
         key: str = "k") -> asyncio.Future[str | None]:
    return asyncio.ensure_future(reads.read(key, object_id, db.one(object_id), db.many))


async def test_a_read_alone_reads_alone() -> None:
    db = Database()
    assert await read(BatchedReads(max_batch=64), db, "a") == "row-a"
    assert db.singles == ["a"] and db.batches == []


async def test_reads_of_one_turn_share_one_statement() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64)
    results = await asyncio.gather(*(read(reads, db, oid) for oid in ["a", "b", "zz", "a", "c"]))
    assert results == ["row-a", "row-b", None, "row-a", "row-c"]
    assert db.singles == []
    assert db.batches == [["a", "b", "zz", "a", "c"]]  # in the order the reads began, the leader's first


async def test_reads_of_different_keys_never_share() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64)
    results = await asyncio.gather(read(reads, db, "a", "reader-1"), read(reads, db, "b", "reader-2"))
    assert results == ["row-a", "row-b"]
    assert sorted(db.singles) == ["a", "b"] and db.batches == []


async def test_reads_of_later_turns_start_a_new_batch() -> None:
    db, reads = Database(many_delay=0.01), BatchedReads[str, str | None](max_batch=64)
    first = [read(reads, db, "a"), read(reads, db, "b")]
    await asyncio.sleep(0.001)  # the first batch's statement is running
    second = [read(reads, db, "c"), read(reads, db, "a")]
    assert await asyncio.gather(*first, *second) == ["row-a", "row-b", "row-c", "row-a"]
    assert db.batches == [["a", "b"], ["c", "a"]]


async def test_a_batch_holds_at_most_max_batch_ids() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=2)
    results = await asyncio.gather(*(read(reads, db, oid) for oid in ["a", "b", "c"]))
    assert results == ["row-a", "row-b", "row-c"]
    assert db.batches == [["a", "b"]] and db.singles == ["c"]


async def test_a_failed_batch_lets_each_read_alone() -> None:
    db, reads = Database(fail_many=RuntimeError("statement failed")), BatchedReads[str, str | None](max_batch=64)
    tasks = [read(reads, db, oid) for oid in ["a", "b", "c"]]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    # Every read, the leader's too, reads alone and gets what it would have got unbatched.
    assert results == ["row-a", "row-b", "row-c"]
    assert sorted(db.singles) == ["a", "b", "c"]


async def test_a_cancelled_leader_lets_the_others_read_alone() -> None:
    db, reads = Database(many_delay=0.05), BatchedReads[str, str | None](max_batch=64)
    leader, *others = [read(reads, db, oid) for oid in ["a", "b", "c"]]
    await asyncio.sleep(0.01)
    leader.cancel()
    assert await asyncio.gather(*others) == ["row-b", "row-c"]
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_a_leader_cancelled_before_its_turn_ends_releases_its_followers() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64)
    leader = read(reads, db, "a")
    await asyncio.sleep(0)  # the leader is waiting for its turn to end
    follower = read(reads, db, "b")
    leader.cancel()
    assert await follower == "row-b"
    assert db.batches == [] and db.singles == ["b"]


async def test_a_cancelled_follower_does_not_disturb_the_batch() -> None:
    db, reads = Database(many_delay=0.05), BatchedReads[str, str | None](max_batch=64)
    tasks = [read(reads, db, oid) for oid in ["a", "b", "c"]]
    await asyncio.sleep(0.01)
    tasks[1].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == "row-a" and results[2] == "row-c"
    assert isinstance(results[1], asyncio.CancelledError)
    assert db.batches == [["a", "b", "c"]]


async def test_a_read_may_lower_the_batch_size_of_its_key() -> None:
    db, reads = Database(), BatchedReads[str, str | None](max_batch=64)
    tasks = [asyncio.ensure_future(reads.read("k", oid, db.one(oid), db.many, max_batch=2)) for oid in "abc"]
    assert await asyncio.gather(*tasks) == ["row-a", "row-b", "row-c"]
    assert db.batches == [["a", "b"]] and db.singles == ["c"]
