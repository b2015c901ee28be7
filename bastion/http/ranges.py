"""HTTP range requests (RFC 9110 §14): reading ``Range`` and framing ``multipart/byteranges``."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable

MAX_RANGES = 16  # more parts than this is no sane client; the whole file is sent instead
_SPEC = re.compile(r"^(\d*)-(\d*)$")


class Unsatisfiable(Exception):
    """No range of the header lies in the file: 416."""


def parse_range(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The ``(start, end)`` byte ranges (end exclusive) a ``Range`` header asks of a ``size``-byte
    file, or None to ignore the header and send everything (absent, another unit, malformed, too
    many or overlapping ranges: RFC 9110 lets a server ignore those). Raises Unsatisfiable when the
    header is well formed but no range overlaps the file."""
    if not header:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    parts = [part.strip() for part in specs.split(",") if part.strip()]
    if not parts or len(parts) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for part in parts:
        found = _SPEC.match(part)
        if found is None or found.group(0) == "-":
            return None
        first, last = found.group(1), found.group(2)
        if first:
            start = int(first)
            if last and int(last) < start:
                return None
            if start >= size:
                continue  # this one lies past the end; the others may still be served
            end = min(int(last) + 1, size) if last else size
        else:
            suffix = int(last)
            if suffix == 0 or size == 0:
                continue
            start, end = max(0, size - suffix), size
        ranges.append((start, end))
    if not ranges:
        raise Unsatisfiable()
    ordered = sorted(ranges)
    if any(a_end > b_start for (_, a_end), (b_start, _) in zip(ordered, ordered[1:], strict=False)):
        return None  # overlapping ranges could multiply the bytes sent; send the file once instead
    return ranges


def content_range(start: int, end: int, size: int) -> str:
    return f"bytes {start}-{end - 1}/{size}"


class Multipart:
    """A ``multipart/byteranges`` body of several ranges, its length known before sending."""

    def __init__(self, ranges: list[tuple[int, int]], size: int, content_type: str) -> None:
        self.ranges = ranges
        self.boundary = secrets.token_hex(16)
        self.content_type = f"multipart/byteranges; boundary={self.boundary}"
        self._heads = [(f"\r\n--{self.boundary}\r\nContent-Type: {content_type}\r\n"
                        f"Content-Range: {content_range(start, end, size)}\r\n\r\n").encode("latin-1")
                       for start, end in ranges]
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("latin-1")
        self.length = sum(len(h) for h in self._heads) + sum(e - s for s, e in ranges) + len(self._tail)

    async def chunks(self, read: Callable[[int, int], AsyncIterator[bytes]]) -> AsyncIterator[bytes]:
        for head, (start, end) in zip(self._heads, self.ranges, strict=True):
            yield head
            async for chunk in read(start, end):
                yield chunk
        yield self._tail
