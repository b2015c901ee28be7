"""Files in a local directory: ``<root>/<name>``, with content type, metadata and tags beside them.

Layout: ``<root>/<name>`` holds the bytes, ``<root>/.meta/<name>.json`` what ``info`` answers, and
``<root>/.tmp/`` uploads in progress. A save writes to a temporary file and renames it into place
only when every byte arrived (and the metadata first), so a reader never sees half a file and a
failed or cancelled upload leaves nothing. File names never start with a dot, so the two working
directories cannot collide with a stored file. Blocking file calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from bastion.adapters.files.names import check_backend_name
from bastion.ports.files import CHUNK_SIZE, FileInfo, FilesAdapter, FileTooLarge


class LocalFiles(FilesAdapter):
    name = "local"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._meta = self.root / ".meta"
        self._tmp = self.root / ".tmp"

    async def open(self) -> None:
        def prepare() -> None:
            for directory in (self.root, self._meta, self._tmp):
                directory.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(prepare)

    async def close(self) -> None:
        return None

    def _path(self, name: str) -> Path:
        return self.root / check_backend_name(name)

    def _meta_path(self, name: str) -> Path:
        return self._meta / (check_backend_name(name) + ".json")

    async def save(self, name: str, chunks: AsyncIterator[bytes], content_type: str, *,
                   metadata: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
                   max_bytes: int | None = None) -> FileInfo:
        target, meta_target = self._path(name), self._meta_path(name)
        token = secrets.token_hex(8)
        tmp, meta_tmp = self._tmp / f"{token}.data", self._tmp / f"{token}.json"
        handle: BinaryIO = await asyncio.to_thread(open, tmp, "xb")
        size = 0
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise FileTooLarge(name)
                    if chunk:
                        await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(handle.flush)
            finally:
                await asyncio.to_thread(handle.close)
            info = FileInfo(name, size, content_type, dict(metadata or {}), dict(tags or {}))
            document = orjson.dumps({"size": size, "contentType": content_type,
                                     "metadata": info.metadata, "tags": info.tags})
            await asyncio.to_thread(meta_tmp.write_bytes, document)
            await asyncio.to_thread(os.replace, meta_tmp, meta_target)
            await asyncio.to_thread(os.replace, tmp, target)
            return info
        except BaseException:
            # Cancelled, too large or failed: nothing of this upload stays behind.
            await asyncio.to_thread(_remove_quietly, tmp, meta_tmp)
            if not target.exists():
                await asyncio.to_thread(_remove_quietly, meta_target)
            raise

    async def info(self, name: str) -> FileInfo | None:
        path, meta_path = self._path(name), self._meta_path(name)

        def load() -> FileInfo | None:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return None
            try:
                meta = orjson.loads(meta_path.read_bytes())
            except (FileNotFoundError, orjson.JSONDecodeError):
                meta = {}  # a file put there by hand: serve it as plain bytes
            return FileInfo(name, size, meta.get("contentType") or "application/octet-stream",
                            meta.get("metadata") or {}, meta.get("tags") or {})
        return await asyncio.to_thread(load)

    async def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(name)
        try:
            handle: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            return
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                chunk = await asyncio.to_thread(handle.read, want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, name: str) -> bool:
        path, meta_path = self._path(name), self._meta_path(name)

        def remove() -> bool:
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            _remove_quietly(meta_path)
            return True
        return await asyncio.to_thread(remove)

    async def names(self, prefix: str = "") -> AsyncIterator[str]:
        entries = await asyncio.to_thread(lambda: [e.name for e in os.scandir(self.root) if e.is_file()])
        for entry in entries:
            if entry.startswith(prefix) and not entry.startswith("."):
                yield entry


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
