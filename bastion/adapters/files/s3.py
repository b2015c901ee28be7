"""Files in an S3-compatible object store (AWS S3, MinIO, Ceph, R2, …): one object per file.

An object's key is ``<prefix><name>``; its Content-Type is the file's, and the file's metadata and
tags ride along as user metadata (JSON, ASCII-escaped, since S3 sends user metadata as HTTP
headers). Uploads stream: a file smaller than one part is a single PUT, anything larger a multipart
upload of ``part_size`` parts (S3 wants at least 5 MiB per part but the last) sent while the next
part is read, aborted when the body fails, is cancelled or goes past ``max_bytes``, so no half file
ever becomes visible. Downloads are ranged GETs read chunk by chunk.

boto3 is synchronous, so every call runs in a small thread pool of this adapter; the event loop never
waits on the network. Credentials come from the arguments or boto3's usual chain (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, profiles, instance roles) and are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bastion.adapters.files.base import CHUNK_SIZE, FileInfo, FilesAdapter, FileTooLarge

T = TypeVar("T")

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
DEFAULT_PART_SIZE = MIN_PART_SIZE  # two parts at most in memory per upload: 10 MiB
MAX_PARTS = 10_000  # S3's limit per multipart upload
_MAX_KEY_BYTES = 1024  # S3's limit for a whole key
_META_KEY, _TAGS_KEY = "bastion-metadata", "bastion-tags"
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def check_s3_name(name: str) -> str:
    """``name`` when it can only mean one object directly under the prefix (no ``/``, no dot names,
    no control characters): domain/files.py validated it already; this is the backend's own check."""
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
                 part_size: int = DEFAULT_PART_SIZE, max_threads: int = 8) -> None:
        if not bucket:
            raise ValueError("S3 files need a bucket")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part)")
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
        self._credentials = (access_key, secret_key)
        self._max_threads = max_threads
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None

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
        self._pool = ThreadPoolExecutor(self._max_threads, thread_name_prefix="bastion-s3")
        session = boto3.session.Session()
        self._client = await self._run(functools.partial(
            session.client, "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, config=config))
        try:
            await self._call("head_bucket", Bucket=self.bucket)
        except ClientError as error:
            await self.close()
            raise RuntimeError(f"S3 bucket {self.bucket!r} is not usable: {_error_code(error) or error}") from None
        except BotoCoreError as error:  # no credentials, endpoint unreachable, …
            await self.close()
            raise RuntimeError(f"S3 bucket {self.bucket!r} is not reachable: {error}") from None

    async def close(self) -> None:
        client, pool = self._client, self._pool
        self._client = self._pool = None
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
        # Once an upload is known to span parts, each part is filled in place in a buffer of exactly
        # its size: no growing bytearray that reallocates (two copies alive at once), no slicing off
        # of what spilled over. The first grows, so a small file never touches a whole part.
        buffer, filled = bytearray(), 0
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        pending: asyncio.Future[Any] | None = None  # the part on its way while the next one is read

        async def upload(number: int, data: bytes | bytearray) -> None:
            answer = await self._call("upload_part", Bucket=self.bucket, Key=key, UploadId=upload_id,
                                      PartNumber=number, Body=data)
            parts[number - 1]["ETag"] = answer["ETag"]

        async def send_part(data: bytes | bytearray) -> None:
            nonlocal pending
            if pending is not None:
                await pending
            parts.append({"PartNumber": len(parts) + 1})
            pending = asyncio.ensure_future(upload(len(parts), data))

        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise FileTooLarge(name)
                view = memoryview(chunk)
                while view:
                    taken = min(len(view), part_size - filled)
                    buffer[filled:filled + taken] = view[:taken]
                    filled += taken
                    view = view[taken:]
                    if filled == part_size:
                        if upload_id is None:
                            upload_id = (await self._call("create_multipart_upload", **head))["UploadId"]
                        await send_part(buffer)  # the full buffer is the part itself, no copy
                        buffer, filled = bytearray(part_size), 0
            del buffer[filled:]
            if upload_id is None:
                await self._call("put_object", Body=buffer, **head)
            else:
                if buffer or not parts:
                    await send_part(buffer)
                buffer = bytearray()
                if pending is not None:
                    await pending
                    pending = None
                await self._call("complete_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id,
                                 MultipartUpload={"Parts": parts})
        except BaseException:
            # Too large, failed or cancelled: drop the parts so nothing (and no bill) stays behind.
            if pending is not None:
                if not pending.done():
                    await asyncio.shield(asyncio.wait([pending]))
                if not pending.cancelled():
                    pending.exception()  # retrieved: the error that matters is the one raised here
            if upload_id is not None:
                await asyncio.shield(self._abort(key, upload_id))
            raise
        return FileInfo(name, size, content_type, info.metadata, info.tags)

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


def _json_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
