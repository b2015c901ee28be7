"""The file storage contract: what the files API asks of a backend.

Bodies move as async iterators of byte chunks in both directions, so that no backend ever holds a
whole file in memory. Names reaching a backend were validated and made unique by
``domain/file_rules.py``; backends still refuse anything that could escape their namespace.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

CHUNK_SIZE = 256 * 1024  # bytes per chunk read from or written to a backend


@dataclass(frozen=True, slots=True)
class FileInfo:
    name: str
    size: int
    content_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)


class FileTooLarge(Exception):
    """The upload went past the size limit; nothing was kept."""


class FilesAdapter(ABC):
    """One place files live. Every method is a coroutine and never blocks the event loop."""

    name: str = "files"

    @abstractmethod
    async def open(self) -> None:
        """Prepare (create a directory, a table, check a bucket)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def save(self, name: str, chunks: AsyncIterator[bytes], content_type: str, *,
                   metadata: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
                   max_bytes: int | None = None) -> FileInfo:
        """Store ``chunks`` under ``name`` (which is new), streaming. Raises FileTooLarge past
        ``max_bytes``, leaving nothing behind; a failed or cancelled save leaves nothing either."""

    @abstractmethod
    async def info(self, name: str) -> FileInfo | None:
        """Size, content type, metadata and tags, or None when there is no such file."""

    @abstractmethod
    def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start`` to ``end`` (exclusive; None: to the end), as chunks. The caller
        checked the range against ``info``; a file deleted meanwhile ends the stream early."""

    @abstractmethod
    async def delete(self, name: str) -> bool:
        """Remove the file (and anything derived from it); False when there was none."""

    @abstractmethod
    def names(self, prefix: str = "") -> AsyncIterator[str]:
        """Every stored file name starting with ``prefix``, in no particular order."""

    def direct_url(self, name: str) -> str | None:
        """A URL clients may fetch the file from directly (presigned), or None to serve it here."""
        return None
