"""A download on its way out: what the pipeline found to serve, and the checks of what cloud code's
before_find and after_find on files left (``Files.download`` in ``domain/files.py`` runs it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bastion.domain.file_rules import is_header_name, is_header_value, type_for_name, validate_filename
from bastion.domain.file_triggers import AfterFind, Failure
from bastion.errors import ParseError
from bastion.ports.files import FileInfo

log = logging.getLogger("bastion")


class FindRefused(Exception):
    """A find trigger on files refused (or failed): Parse Server answers its error with 403."""

    def __init__(self, error: ParseError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(slots=True)
class Found:
    """What cloud code's after_find on files leaves: other bytes to send, a download, headers."""

    data: bytes | None
    content_type: str  # the type of the bytes it left
    force_download: bool
    name: str
    response_headers: dict[str, str]  # header names and values, checked

    @property
    def content_type_given(self) -> str | None:
        """A Content-Type among ``response_headers`` (it overrides the file's)."""
        return next((v for k, v in self.response_headers.items() if k.lower() == "content-type"), None)


@dataclass(slots=True)
class Download:
    """The stored file (or thumbnail) to serve and, when an after_find on files ran, what it left."""

    file: FileInfo
    found: Found | None = None


def check_before_find(name: str, left_name: str, failure: Failure) -> str:
    """The name to serve after before_find on files: another file's, when it is a file name."""
    if left_name != name:
        try:
            validate_filename(left_name)
        except ParseError:
            log.error("before_find on files named the file %r, which cannot be a file's name", left_name[:100])
            raise ParseError(*failure) from None
    return left_name


def check_after_find(after: AfterFind, name: str, content_type: str, failure: Failure) -> Found:
    """What after_find on files left, checked: headers it may send, a name that fits in a header,
    bytes; the type served is that of the name it left (as Parse Server) or the type it left."""
    headers = after.response_headers
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and is_header_name(k) and isinstance(v, str) and is_header_value(v)
            for k, v in headers.items()):
        log.error("after_find on files left response_headers that are not a dict of header names and values")
        raise ParseError(*failure)
    left = after.file
    if not is_header_value(left.name) or '"' in left.name:
        log.error("after_find on files left a file name that cannot go into a header")
        raise ParseError(*failure)
    if left.data is not None and not isinstance(left.data, (bytes, bytearray)):
        log.error("after_find on files left data that is not bytes")
        raise ParseError(*failure)
    if left.name != name:  # as Parse Server: the type of the name the trigger left
        served_type = type_for_name(left.name) or left.content_type or "application/octet-stream"
    else:
        served_type = left.content_type or content_type
    return Found(None if left.data is None else bytes(left.data), served_type, bool(after.force_download),
                 left.name, headers)
