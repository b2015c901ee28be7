"""Files in an S3-compatible object store (AWS S3, MinIO, Ceph, R2, …): one object per file.

An object's key is ``<prefix><name>``; its Content-Type is the file's, and the file's metadata and
tags ride along as user metadata (JSON, ASCII-escaped, since S3 sends user metadata as HTTP
headers). Uploads stream: a file smaller than one part is a single PUT, anything larger a multipart
upload of ``part_size`` parts (S3 wants at least 5 MiB per part but the last) sent while the next
part is read, aborted when the body fails, is cancelled or goes past ``max_bytes``, so no half file
ever becomes visible. Downloads are ranged GETs read chunk by chunk.

Memory: part buffers are the only large thing an upload holds, and at most ``max_buffered_parts``
of them exist at once in the whole adapter; an upload that needs one waits (and stops reading its
body) until another upload's part is sent. Files up to ``SMALL_FILE_BYTES`` need no part buffer.
Opening the adapter also fixes glibc's malloc thresholds for the whole process (see
``_fix_malloc_thresholds``), or the heaps of the worker threads keep what downloads went through.

botocore (boto3's core, used directly: boto3 itself would cost 2-3 MB more and add nothing here) is
synchronous, so every call runs in a small thread pool of this adapter; the event loop never waits on
the network. Credentials come from the arguments or boto3's usual chain (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, profiles, instance roles) and are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import mmap
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bastion.ports.files import CHUNK_SIZE, FileInfo, FilesAdapter, FileTooLarge

T = TypeVar("T")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
DEFAULT_PART_SIZE = MIN_PART_SIZE
DEFAULT_BUFFERED_PARTS = 2  # part buffers in memory at once, all uploads together
SMALL_FILE_BYTES = 256 * 1024  # a body up to this size is kept as it came and sent in one PUT
MAX_PARTS = 10_000  # S3's limit per multipart upload
_MAX_KEY_BYTES = 1024  # S3's limit for a whole key
_META_KEY, _TAGS_KEY = "bastion-metadata", "bastion-tags"
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def check_s3_name(name: str) -> str:
    """``name`` when it can only mean one object directly under the prefix (no ``/``, no dot names,
    no control characters): domain/file_rules.py validated it already; this is the backend's own check."""
    if (not name or name.startswith(".") or "/" in name or "\\" in name
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)):
        raise ValueError(f"unusable file name: {name[:80]!r}")
    return name


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Files(FilesAdapter):
    name = "s3"
    page_size = 1000  # keys per listing request (S3's maximum)

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, access_key: str | None = None, secret_key: str | None = None,
                 presigned_urls: bool = False, presign_ttl: int = 3600,
                 part_size: int = DEFAULT_PART_SIZE, max_buffered_parts: int = DEFAULT_BUFFERED_PARTS,
                 max_threads: int = 8) -> None:
        if not bucket:
            raise ValueError("S3 files need a bucket")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part)")
        if max_buffered_parts < 1:
            raise ValueError("max_buffered_parts must be at least 1")
        if presign_ttl <= 0 or presign_ttl > 7 * 24 * 3600:
            raise ValueError("presign_ttl must be between 1 second and 7 days (S3's limit)")
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = prefix + "/" if prefix else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.presigned_urls = presigned_urls
        self.presign_ttl = presign_ttl
        self.part_size = part_size
        self.max_buffered_parts = max_buffered_parts
        self._credentials = (access_key, secret_key)
        self._max_threads = max_threads
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._budget: asyncio.Semaphore | None = None  # part buffers that may still be made

    def __repr__(self) -> str:  # never shows the credentials
        return f"S3Files(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"

    # --- plumbing -------------------------------------------------------------------------------

    async def open(self) -> None:
        access_key, secret_key = self._credentials
        config = Config(
            max_pool_connections=self._max_threads,
            retries={"max_attempts": 5, "mode": "standard"},
            signature_version="s3v4",
            # A custom endpoint (MinIO, moto, …) rarely has a DNS name per bucket.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            # Checksums only where S3 requires them: many S3-compatible stores reject the newer
            # default (CRC trailers on every upload).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        _fix_malloc_thresholds()
        self._pool = ThreadPoolExecutor(self._max_threads, thread_name_prefix="bastion-s3")
        self._budget = asyncio.Semaphore(self.max_buffered_parts)
        session = botocore.session.Session()
        self._client = await self._run(functools.partial(
            session.create_client, "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, config=config))
        try:
            await self._call("head_bucket", Bucket=self.bucket)
        except ClientError as error:
            await self.close()
            raise RuntimeError(f"S3 bucket {self.bucket!r} is not usable: {_error_code(error) or error}") from None
        except BotoCoreError as error:  # no credentials, endpoint unreachable, …
            await self.close()
            raise RuntimeError(f"S3 bucket {self.bucket!r} is not reachable: {error}") from None
        _release_free_memory()  # what loading botocore's models (tens of MB of JSON) left behind

    async def close(self) -> None:
        client, pool = self._client, self._pool
        self._client = self._pool = None
        self._budget = None
        if client is not None:
            client.close()
        if pool is not None:
            pool.shutdown(wait=False)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def _call(self, operation: str, **params: Any) -> Any:
        if self._client is None:
            raise RuntimeError("S3Files is not open")
        return await self._run(functools.partial(getattr(self._client, operation), **params))

    def _key(self, name: str) -> str:
        key = self.prefix + check_s3_name(name)
        if len(key.encode()) > _MAX_KEY_BYTES:
            raise ValueError(f"file name too long for S3: {name[:80]!r}")
        return key

    # --- the contract ---------------------------------------------------------------------------

    async def save(self, name: str, chunks: AsyncIterator[bytes], content_type: str, *,
                   metadata: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
                   max_bytes: int | None = None) -> FileInfo:
        key = self._key(name)
        info = FileInfo(name, 0, content_type, dict(metadata or {}), dict(tags or {}))
        head = {"Bucket": self.bucket, "Key": key, "ContentType": content_type,
                "Metadata": {_META_KEY: json.dumps(info.metadata, separators=(",", ":")),
                             _TAGS_KEY: json.dumps(info.tags, separators=(",", ":"))}}
        # Parts grow for uploads allowed past what 10,000 parts of the usual size hold (48 GiB).
        part_size = max(self.part_size, -(-(max_bytes or 0) // MAX_PARTS))
        small: list[bytes] = []  # a body's first chunks, while it may still be a small file
        small_size = size = 0
        part: _Part | None = None  # the part being filled; it holds a place in the budget
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        pending: asyncio.Future[Any] | None = None  # the part on its way while the next one is read

        async def upload(number: int, data: _Part) -> None:
            answer = await self._send(data, "upload_part", Bucket=self.bucket, Key=key, UploadId=upload_id,
                                      PartNumber=number)
            parts[number - 1]["ETag"] = answer["ETag"]

        async def send_part(data: _Part) -> None:
            nonlocal pending
            if pending is not None:
                try:
                    await pending
                except BaseException:
                    self._drop(data)  # never sent: its place in the budget must come back
                    raise
            parts.append({"PartNumber": len(parts) + 1})
            pending = asyncio.ensure_future(upload(len(parts), data))

        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise FileTooLarge(name)
                if part is None and not parts and small_size + len(chunk) <= SMALL_FILE_BYTES:
                    small.append(chunk)  # no part (nor a wait for the budget) for a small file
                    small_size += len(chunk)
                    continue
                view = memoryview(chunk)
                while view:
                    if part is None:
                        part = await self._new_part(part_size)
                        for held in small:
                            part.fill(memoryview(held))
                        small, small_size = [], 0
                    view = view[part.fill(view):]
                    if part.full:
                        if upload_id is None:
                            upload_id = (await self._call("create_multipart_upload", **head))["UploadId"]
                        data, part = part, None
                        await send_part(data)
            if upload_id is None:
                if part is None:
                    await self._call("put_object", Body=b"".join(small), **head)
                else:
                    data, part = part, None
                    await self._send(data, "put_object", **head)
            else:
                if part is not None:
                    data, part = part, None
                    await send_part(data)
                if pending is not None:
                    await pending
                    pending = None
                await self._call("complete_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
        except BaseException:
            # Too large, failed or cancelled: drop the parts so nothing (and no bill) stays behind.
            if part is not None:
                self._drop(part)
            if pending is not None:
                if not pending.done():
                    await asyncio.shield(asyncio.wait([pending]))
                if not pending.cancelled():
                    pending.exception()  # retrieved: the error that matters is the one raised here
            if upload_id is not None:
                await asyncio.shield(self._abort(key, upload_id))
            raise
        return FileInfo(name, size, content_type, info.metadata, info.tags)

    # --- part buffers ---------------------------------------------------------------------------

    async def _new_part(self, capacity: int) -> _Part:
        """An empty part buffer, once the budget has room for one (parts of every upload count)."""
        if self._budget is None:
            raise RuntimeError("S3Files is not open")
        await self._budget.acquire()
        try:
            return _Part(capacity)
        except BaseException:
            self._budget.release()
            raise

    def _drop(self, part: _Part) -> None:
        """A part never handed to a worker thread: its memory and its place in the budget go back."""
        part.close()
        if self._budget is not None:
            self._budget.release()

    async def _send(self, part: _Part, operation: str, **params: Any) -> Any:
        """``operation`` with ``part`` as its body. The worker thread closes the part when botocore is
        done with it and only then gives its place in the budget back, even if the caller was
        cancelled meanwhile (a thread cannot be stopped: until it ends, the part is still in use)."""
        if self._client is None or self._budget is None:
            self._drop(part)
            raise RuntimeError("S3Files is not open")
        loop, budget = asyncio.get_running_loop(), self._budget
        method = getattr(self._client, operation)

        def call() -> Any:
            try:
                return method(Body=part, **params)
            finally:
                part.close()
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                    loop.call_soon_threadsafe(budget.release)

        try:
            future = loop.run_in_executor(self._pool, call)
        except BaseException:  # the pool was shut down: the call never runs
            self._drop(part)
            raise
        # Shielded: cancelling a call still queued would lose the part (and its place in the budget).
        return await asyncio.shield(future)

    async def _abort(self, key: str, upload_id: str) -> None:
        # Already gone, or S3 unreachable: a bucket lifecycle rule cleans what an abort could not.
        with contextlib.suppress(ClientError):
            await self._call("abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id)

    async def info(self, name: str) -> FileInfo | None:
        try:
            head = await self._call("head_object", Bucket=self.bucket, Key=self._key(name))
        except ClientError as error:
            if _error_code(error) in _MISSING:
                return None
            raise
        meta = head.get("Metadata") or {}
        return FileInfo(name, int(head["ContentLength"]), head.get("ContentType") or "application/octet-stream",
                        _json_dict(meta.get(_META_KEY)), _json_dict(meta.get(_TAGS_KEY)))

    async def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(name)}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            answer = await self._call("get_object", **params)
        except ClientError as error:
            if _error_code(error) in _MISSING or _error_code(error) == "InvalidRange":
                return  # deleted meanwhile, or a range past an end that moved: the stream just ends
            raise
        body = answer["Body"]
        try:
            while True:
                chunk = await self._run(functools.partial(body.read, CHUNK_SIZE))
                if not chunk:
                    return
                yield chunk
        finally:
            await self._run(body.close)

    async def delete(self, name: str) -> bool:
        if await self.info(name) is None:
            return False  # S3 answers a delete of nothing with success; the contract wants False
        await self._call("delete_object", Bucket=self.bucket, Key=self._key(name))
        return True

    async def names(self, prefix: str = "") -> AsyncIterator[str]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix,
                                  "MaxKeys": self.page_size}
        while True:
            page = await self._call("list_objects_v2", **params)
            for item in page.get("Contents") or ():
                name = item["Key"][len(self.prefix):]
                if name and "/" not in name:  # keys under deeper "folders" are no files of ours
                    yield name
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params["ContinuationToken"] = token

    def direct_url(self, name: str) -> str | None:
        """A presigned GET valid for ``presign_ttl`` seconds (computed locally, no request), when
        enabled. It is served from the bucket's origin, never Bastion's."""
        if not self.presigned_urls or self._client is None:
            return None
        return str(self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(name)}, ExpiresIn=self.presign_ttl))


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
_MMAP_THRESHOLD = 1024 * 1024  # blocks this large are mapped, and unmapped when freed
_TRIM_THRESHOLD = 128 * 1024  # free memory a heap keeps at its top (glibc's default)


def _glibc() -> Any:
    """The C library when it is glibc, else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc


def _fix_malloc_thresholds() -> None:
    """Stops glibc's malloc from raising its thresholds as large blocks come and go.

    By default each large block freed raises the mmap threshold to its size (up to 32 MiB) and the
    trim threshold to twice that, so after one burst of big buffers the heaps, one per thread, keep
    megabytes of freed memory for good. Every chunk a download reads is made in a worker thread: after
    eight concurrent 10 MB downloads the process held 10-15 MB more than before, never given back.
    Fixed thresholds (what MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ in the environment do,
    for the whole process) keep that to a megabyte or two. The mmap threshold stays above the event
    loop's 256 KiB socket reads: mapping each of those costs uploads about 15% of their speed."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


def _release_free_memory() -> None:
    """Gives the system back the free pages glibc's heaps hold (a no-op elsewhere)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


class _Part:
    """One part's bytes, in an anonymous memory map of the part's size. A page takes memory only once
    written, and all of it goes back to the system on close: parts of several MiB made and freed on
    the heap instead raise glibc's mmap threshold and linger as fragments, so the process kept the
    peak of every burst of uploads. To botocore it is a file (read, seek, tell, len over the bytes
    written); reads hand out views of the map, not copies."""

    __slots__ = ("_map", "_position", "_view", "capacity", "size")

    def __init__(self, capacity: int) -> None:
        self._map = mmap.mmap(-1, capacity)
        self._view = memoryview(self._map)
        self.capacity, self.size, self._position = capacity, 0, 0

    @property
    def full(self) -> bool:
        return self.size == self.capacity

    def fill(self, data: memoryview) -> int:
        """Copies in as much of ``data`` as fits; how many bytes that was."""
        taken = min(len(data), self.capacity - self.size)
        self._view[self.size:self.size + taken] = data[:taken]
        self.size += taken
        return taken

    def read(self, amount: int | None = -1) -> memoryview:
        end = self.size if amount is None or amount < 0 else min(self.size, self._position + amount)
        chunk = self._view[self._position:end]
        self._position = end
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, self.size)[whence]
        self._position = max(0, min(self.size, base + offset))
        return self._position

    def tell(self) -> int:
        return self._position

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        # A view still held somewhere keeps the map open; it goes when the last view does.
        with contextlib.suppress(BufferError):
            self._view.release()
            self._map.close()


def _json_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
