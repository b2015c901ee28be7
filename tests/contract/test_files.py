"""The files contract (bastion/ports/files.py), held against every backend: a local
directory, PostgreSQL and S3 (moto over HTTP) through the ``files_backend`` fixture."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from bastion.ports.files import CHUNK_SIZE, FilesAdapter, FileTooLarge


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


async def read_all(files: FilesAdapter, name: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in files.read(name, start, end)])


async def names(files: FilesAdapter, prefix: str = "") -> set[str]:
    return {name async for name in files.names(prefix)}


async def test_save_info_read_delete(files_backend: FilesAdapter) -> None:
    data = b"hello, files\n" * 100
    info = await files_backend.save("abc_hello.txt", chunks_of(data, 7), "text/plain",
                                    metadata={"owner": "me", "n": 1}, tags={"kind": "greeting"})
    assert (info.name, info.size, info.content_type) == ("abc_hello.txt", len(data), "text/plain")
    stored = await files_backend.info("abc_hello.txt")
    assert stored is not None
    assert (stored.size, stored.content_type) == (len(data), "text/plain")
    assert stored.metadata == {"owner": "me", "n": 1}
    assert stored.tags == {"kind": "greeting"}
    assert await read_all(files_backend, "abc_hello.txt") == data
    assert await files_backend.delete("abc_hello.txt") is True
    assert await files_backend.info("abc_hello.txt") is None
    assert await read_all(files_backend, "abc_hello.txt") == b""
    assert await files_backend.delete("abc_hello.txt") is False


async def test_missing_file(files_backend: FilesAdapter) -> None:
    assert await files_backend.info("nothing_here.bin") is None
    assert await files_backend.delete("nothing_here.bin") is False


async def test_ranges(files_backend: FilesAdapter) -> None:
    data = bytes(range(256)) * 40  # 10 240 bytes
    await files_backend.save("r_bytes.bin", chunks_of(data, 1000), "application/octet-stream")
    for start, end in [(0, 1), (0, 10), (5, 6), (100, 5000), (10_000, 10_240), (10_239, None), (0, None),
                       (3000, 3000)]:
        assert await read_all(files_backend, "r_bytes.bin", start, end) == data[start:end], (start, end)


async def test_big_file_streams_in_chunks(files_backend: FilesAdapter) -> None:
    """A file several chunks long, its bytes unaligned to CHUNK_SIZE, read back whole and across
    chunk boundaries; no chunk read is larger than CHUNK_SIZE."""
    size = 3 * CHUNK_SIZE + 12_345
    data = os.urandom(size)
    info = await files_backend.save("big_file.bin", chunks_of(data, 100_000), "application/octet-stream")
    assert info.size == size
    digest = hashlib.sha256()
    async for chunk in files_backend.read("big_file.bin"):
        assert 0 < len(chunk) <= CHUNK_SIZE
        digest.update(chunk)
    assert digest.digest() == hashlib.sha256(data).digest()
    start, end = CHUNK_SIZE - 10, 2 * CHUNK_SIZE + 10
    assert await read_all(files_backend, "big_file.bin", start, end) == data[start:end]
    tail = size - 5
    assert await read_all(files_backend, "big_file.bin", tail) == data[tail:]


async def test_too_large_leaves_nothing(files_backend: FilesAdapter) -> None:
    with pytest.raises(FileTooLarge):
        await files_backend.save("too_big.bin", chunks_of(b"x" * (CHUNK_SIZE + 10), 4096),
                                 "application/octet-stream", max_bytes=CHUNK_SIZE)
    assert await files_backend.info("too_big.bin") is None
    assert await names(files_backend) == set()
    # Exactly the limit is fine.
    info = await files_backend.save("just_fits.bin", chunks_of(b"y" * 1000), "application/octet-stream",
                                    max_bytes=1000)
    assert info.size == 1000


async def test_failed_upload_leaves_nothing(files_backend: FilesAdapter) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * CHUNK_SIZE
        yield b"b" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await files_backend.save("broken.bin", broken(), "application/octet-stream")
    assert await files_backend.info("broken.bin") is None
    assert await names(files_backend) == set()


async def test_cancelled_upload_leaves_nothing(files_backend: FilesAdapter) -> None:
    started = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        started.set()
        await asyncio.sleep(60)
        yield b"never"

    task = asyncio.create_task(files_backend.save("cancelled.bin", slow(), "application/octet-stream"))
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await files_backend.info("cancelled.bin") is None
    assert await names(files_backend) == set()


async def test_names_by_prefix(files_backend: FilesAdapter) -> None:
    for name in ("aa_one.txt", "aa_two.txt", "ab_three.txt", "b%_four.txt"):
        await files_backend.save(name, chunks_of(b"."), "text/plain")
    assert await names(files_backend) == {"aa_one.txt", "aa_two.txt", "ab_three.txt", "b%_four.txt"}
    assert await names(files_backend, "aa_") == {"aa_one.txt", "aa_two.txt"}
    assert await names(files_backend, "a") == {"aa_one.txt", "aa_two.txt", "ab_three.txt"}
    # Prefixes are literal: no wildcard characters.
    assert await names(files_backend, "b%") == {"b%_four.txt"}
    assert await names(files_backend, "a%") == set()


async def test_concurrent_saves(files_backend: FilesAdapter) -> None:
    blobs = {f"c{i:02d}_file.bin": os.urandom(CHUNK_SIZE // 2 + i * 977) for i in range(12)}
    await asyncio.gather(*(files_backend.save(name, chunks_of(data, 30_000), "application/octet-stream")
                           for name, data in blobs.items()))
    assert await names(files_backend, "c") == set(blobs)
    contents = await asyncio.gather(*(read_all(files_backend, name) for name in blobs))
    assert contents == list(blobs.values())


async def test_empty_metadata_and_odd_names(files_backend: FilesAdapter) -> None:
    name = "0123456789abcdef_My File @2x ~v1.tar.gz"
    await files_backend.save(name, chunks_of(b"\x00\x01\x02"), "application/gzip")
    info = await files_backend.info(name)
    assert info is not None
    assert (info.size, info.content_type, info.metadata, info.tags) == (3, "application/gzip", {}, {})
    assert await read_all(files_backend, name) == b"\x00\x01\x02"
    assert await names(files_backend, "0123") == {name}


@pytest.mark.parametrize("name", ["../escape.txt", "a/b.txt", ".hidden", "a\\b.txt", "nul\x00.txt", ""])
async def test_names_that_could_escape_are_refused(files_backend: FilesAdapter, name: str) -> None:
    with pytest.raises(ValueError):
        await files_backend.save(name, chunks_of(b"x"), "text/plain")
    assert await names(files_backend) == set()
