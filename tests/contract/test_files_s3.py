"""What only the S3 backend has: multipart uploads, aborted uploads leaving nothing, listing pages,
prefixes, presigned URLs. Against moto in server mode over HTTP (the shared contract suite,
test_files.py, runs S3Files too)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from bastion.adapters.files import s3 as s3_module
from bastion.adapters.files.s3 import MIN_PART_SIZE, S3Files
from bastion.ports.files import FileTooLarge
from tests.contract.s3_server import FAKE_CREDENTIALS, MotoS3

KEYS = {"access_key": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], "secret_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
PIECE = bytes(range(256)) * 1024  # 256 KiB


@pytest.fixture
def moto(moto_s3: MotoS3 | str) -> MotoS3:
    if isinstance(moto_s3, str):
        pytest.skip(moto_s3)
    return moto_s3


@pytest.fixture
async def s3(moto: MotoS3) -> AsyncIterator[S3Files]:
    files = S3Files(moto.new_bucket(), "/app/files/", endpoint_url=moto.endpoint, region="us-east-1",
                    part_size=MIN_PART_SIZE, **KEYS)
    await files.open()
    try:
        yield files
    finally:
        await files.close()


async def body(total: int, fail_after: int | None = None) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        if fail_after is not None and sent >= fail_after:
            raise RuntimeError("the client went away")
        chunk = PIECE[: min(len(PIECE), total - sent)]
        sent += len(chunk)
        yield chunk


def expected(total: int) -> bytes:
    return (PIECE * (total // len(PIECE) + 1))[:total]


async def read_all(files: S3Files, name: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in files.read(name, start, end)])


def pending_uploads(moto: MotoS3, files: S3Files) -> list[Any]:
    return list(moto.client().list_multipart_uploads(Bucket=files.bucket).get("Uploads") or [])


async def test_a_large_file_goes_up_in_parts_and_ranges_cross_them(s3: S3Files, moto: MotoS3) -> None:
    total = 2 * MIN_PART_SIZE + 12345
    info = await s3.save("big.bin", body(total), "application/octet-stream")
    assert info.size == total
    head = moto.client().head_object(Bucket=s3.bucket, Key="app/files/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of three parts
    data = expected(total)
    assert hashlib.sha256(await read_all(s3, "big.bin")).digest() == hashlib.sha256(data).digest()
    for start, end in ((MIN_PART_SIZE - 10, MIN_PART_SIZE + 10), (0, 1), (total - 5, total), (7, None)):
        assert await read_all(s3, "big.bin", start, end) == data[start:end]
    assert await read_all(s3, "big.bin", 10, 10) == b""


async def test_a_file_of_exactly_two_parts_and_an_empty_file(s3: S3Files, moto: MotoS3) -> None:
    # A file ending on a part boundary sends no empty last part; an empty one is a single PUT.
    total = 2 * MIN_PART_SIZE
    assert (await s3.save("even.bin", body(total), "application/octet-stream")).size == total
    head = moto.client().head_object(Bucket=s3.bucket, Key="app/files/even.bin")
    assert head["ETag"].strip('"').endswith("-2")
    assert await read_all(s3, "even.bin") == expected(total)
    assert (await s3.save("empty.bin", body(0), "text/plain")).size == 0
    assert await read_all(s3, "empty.bin") == b""
    assert (await s3.info("empty.bin")).size == 0  # type: ignore[union-attr]


async def test_too_large_aborts_the_multipart_upload(s3: S3Files, moto: MotoS3) -> None:
    with pytest.raises(FileTooLarge):
        await s3.save("huge.bin", body(3 * MIN_PART_SIZE), "application/octet-stream",
                      max_bytes=MIN_PART_SIZE + 1000)
    assert await s3.info("huge.bin") is None
    assert pending_uploads(moto, s3) == []
    assert [name async for name in s3.names()] == []


async def test_a_failing_or_cancelled_body_leaves_nothing(s3: S3Files, moto: MotoS3) -> None:
    with pytest.raises(RuntimeError):
        await s3.save("broken.bin", body(3 * MIN_PART_SIZE, fail_after=MIN_PART_SIZE + 1),
                      "application/octet-stream")
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        for _ in range(8):  # 8 MiB: one part sent, the next one started
            yield PIECE * 4
        started.set()
        await asyncio.sleep(60)
        yield b"never"

    task = asyncio.create_task(s3.save("cancelled.bin", slow(), "application/octet-stream"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await s3.info("broken.bin") is None and await s3.info("cancelled.bin") is None
    assert pending_uploads(moto, s3) == []


async def test_part_buffers_stay_within_the_budget_of_all_uploads(moto: MotoS3,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    live: set[int] = set()
    most = 0

    class CountedPart(s3_module._Part):
        __slots__ = ()

        def __init__(self, capacity: int) -> None:
            nonlocal most
            super().__init__(capacity)
            live.add(id(self))
            most = max(most, len(live))

        def close(self) -> None:
            live.discard(id(self))
            super().close()

    monkeypatch.setattr(s3_module, "_Part", CountedPart)
    files = S3Files(moto.new_bucket(), endpoint_url=moto.endpoint, region="us-east-1", max_buffered_parts=1,
                    **KEYS)
    await files.open()
    try:
        sizes = {"a.bin": 2 * MIN_PART_SIZE + 5, "b.bin": MIN_PART_SIZE + 7, "c.bin": 3 * MIN_PART_SIZE,
                 "small.bin": 1000}
        # Three uploads that each need several parts, at once, with one part buffer for them all;
        # a failed one gives its buffer back (or the others would wait for ever).
        failing = files.save("broken.bin", body(3 * MIN_PART_SIZE, fail_after=MIN_PART_SIZE + 1), "x/y")
        results = await asyncio.wait_for(asyncio.gather(
            failing, *(files.save(name, body(size), "application/octet-stream") for name, size in sizes.items()),
            return_exceptions=True), 60)
        assert isinstance(results[0], RuntimeError)
        assert [info.size for info in results[1:]] == list(sizes.values())  # type: ignore[union-attr]
        for name, size in sizes.items():
            assert await read_all(files, name) == expected(size)
        assert most == 1 and not live
        assert pending_uploads(moto, files) == []
    finally:
        await files.close()
    with pytest.raises(ValueError):
        S3Files("b", max_buffered_parts=0)


async def test_a_failed_part_gives_its_buffers_back(s3: S3Files, moto: MotoS3) -> None:
    client, calls = s3._client, 0
    real = client.upload_part

    def upload_part(**params: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "UploadPart")
        return real(**params)

    client.upload_part = upload_part
    s3.max_buffered_parts = 1
    s3._budget = asyncio.Semaphore(1)  # as open() makes it
    with pytest.raises(ClientError):
        await s3.save("failed.bin", body(3 * MIN_PART_SIZE), "application/octet-stream")
    info = await asyncio.wait_for(s3.save("next.bin", body(2 * MIN_PART_SIZE + 1), "x/y"), 20)
    assert info.size == 2 * MIN_PART_SIZE + 1 and await s3.info("failed.bin") is None
    assert pending_uploads(moto, s3) == []


def test_a_part_reads_as_a_file_botocore_can_rewind() -> None:
    part = s3_module._Part(MIN_PART_SIZE)
    assert part.fill(memoryview(b"abcdef")) == 6 and len(part) == 6 and not part.full
    assert bytes(part.read(4)) == b"abcd" and part.tell() == 4
    assert bytes(part.read()) == b"ef" and part.read(10) == b""
    assert part.seek(0) == 0 and bytes(part.read(100)) == b"abcdef"  # a retry starts over
    assert part.seek(-2, 2) == 4 and bytes(part.read()) == b"ef"
    assert part.fill(memoryview(bytes(MIN_PART_SIZE))) == MIN_PART_SIZE - 6 and part.full
    part.close()


async def test_metadata_tags_and_content_type_round_trip(s3: S3Files) -> None:
    metadata = {"author": "Zoë", "nested": {"n": 1, "list": [True, None]}, "emoji": "📷"}
    tags = {"album": "été 2026"}
    await s3.save("meta.jpg", body(10), "image/jpeg", metadata=metadata, tags=tags)
    info = await s3.info("meta.jpg")
    assert info is not None
    assert (info.size, info.content_type, info.metadata, info.tags) == (10, "image/jpeg", metadata, tags)
    assert await s3.info("nothing.jpg") is None
    assert await s3.delete("nothing.jpg") is False
    assert await s3.delete("meta.jpg") is True
    assert await s3.info("meta.jpg") is None


async def test_names_page_through_and_stay_under_the_prefix(s3: S3Files, moto: MotoS3) -> None:
    s3.page_size = 2
    names = {f"f{i}.txt" for i in range(7)}
    for name in names:
        await s3.save(name, body(1), "text/plain")
    client = moto.client()
    client.put_object(Bucket=s3.bucket, Key="elsewhere.txt", Body=b"x")  # outside the prefix
    client.put_object(Bucket=s3.bucket, Key="app/files/deeper/x.txt", Body=b"x")  # no name of ours
    assert {name async for name in s3.names()} == names
    assert {name async for name in s3.names("f1")} == {"f1.txt"}
    other = S3Files(s3.bucket, "other", endpoint_url=moto.endpoint, region="us-east-1", **KEYS)
    await other.open()
    try:
        assert [name async for name in other.names()] == []
        assert await other.info("f1.txt") is None
    finally:
        await other.close()


async def test_presigned_urls_serve_the_file_directly(moto: MotoS3) -> None:
    files = S3Files(moto.new_bucket(), endpoint_url=moto.endpoint, region="us-east-1", presigned_urls=True,
                    presign_ttl=60, **KEYS)
    await files.open()
    try:
        await files.save("hello.txt", body(100), "text/plain")
        url = files.direct_url("hello.txt")
        assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
        answer = httpx.get(url)
        assert answer.status_code == 200 and answer.content == expected(100)
    finally:
        await files.close()
    plain = S3Files("b", endpoint_url=moto.endpoint)
    assert plain.direct_url("hello.txt") is None


async def test_names_that_could_leave_the_prefix_are_refused(s3: S3Files) -> None:
    for name in ("", "../x", "a/b", ".hidden", "tab\there", "back\\slash"):
        with pytest.raises(ValueError):
            await s3.save(name, body(1), "text/plain")
        with pytest.raises(ValueError):
            await s3.info(name)


async def test_a_missing_bucket_is_a_clear_error_and_settings_are_checked(moto: MotoS3) -> None:
    files = S3Files("no-such-bucket-" + "x" * 8, endpoint_url=moto.endpoint, region="us-east-1", **KEYS)
    with pytest.raises(RuntimeError, match="no-such-bucket"):
        await files.open()
    unreachable = S3Files("b", endpoint_url="http://127.0.0.1:9", region="us-east-1", **KEYS)
    with pytest.raises(RuntimeError, match="not reachable"):
        await unreachable.open()
    with pytest.raises(ValueError):
        S3Files("b", part_size=1024)
    with pytest.raises(ValueError):
        S3Files("b", presign_ttl=0)
    assert "secret" not in repr(S3Files("b", access_key="AK", secret_key="secret"))
