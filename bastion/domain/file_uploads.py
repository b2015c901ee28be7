"""An upload on its way into the store: what the route decoded, and the checks of what cloud
code's before_save_file left (``Files.upload`` in ``domain/files.py`` runs the pipeline).

A raw upload's bytes stream from the request into the backend chunk by chunk; the pipeline reads
the first chunk only after before_save_file, so a trigger's refusal reads none of the body.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bastion.core.names import check_no_denylisted_keys
from bastion.domain.file_rules import is_header_value, stored_name, validate_filename
from bastion.domain.file_triggers import Failure, TriggerFile
from bastion.errors import Code, ParseError
from bastion.ports.files import FileTooLarge

log = logging.getLogger("bastion")


class UploadAborted(Exception):
    """The upload's source went away midway (the client disconnected): nothing is kept, and as
    nobody reads the answer, nothing is logged."""


@dataclass(slots=True)
class Upload:
    """A new file as the client sent it, named and typed by ``Files.prepare``."""

    given_name: str  # the name the client gave (in the URL)
    name: str  # the unique name to store it under
    content_type: str
    chunks: AsyncIterator[bytes]  # a raw body: not read yet
    data: bytes | None = None  # the SDK's JSON form: the decoded base64, in memory already
    may_be_empty: bool = False  # a request without any body stores an empty file
    content_length: int | None = None  # the request's Content-Length, when it gave one
    metadata: Any = None
    tags: Any = None

    @property
    def size(self) -> int | None:
        """The file's size as far as it is known before its bytes are read."""
        return len(self.data) if self.data is not None else self.content_length


def check_content_type(content_type: str) -> None:
    """A stored content type is sent back in a header as it is."""
    if not is_header_value(content_type):
        raise ParseError(Code.FILE_SAVE_ERROR, "Invalid Content-Type.")


def apply_before_save(upload: Upload, left: TriggerFile, content_type: str, max_upload_bytes: int,
                      failure: Failure) -> tuple[str, str]:
    """Checks the file before_save_file left (without a ``url``); the stored name and content type
    to use. Bytes it left replace the upload's (a raw body is then never read)."""
    name = upload.name
    if not isinstance(left.metadata, dict) or not isinstance(left.tags, dict):
        log.error("before_save_file left metadata or tags that are not dicts")
        raise ParseError(*failure)
    check_no_denylisted_keys(left.metadata)
    check_no_denylisted_keys(left.tags)
    if left.name != upload.given_name or left.content_type != content_type:
        name, content_type = renamed(left.name, left.content_type)
        check_content_type(content_type)
    if left.data is not None:
        if not isinstance(left.data, (bytes, bytearray)):
            log.error("before_save_file left data that is not bytes")
            raise ParseError(*failure)
        if len(left.data) > max_upload_bytes:
            raise FileTooLarge()
        upload.chunks, upload.may_be_empty = chunks_of(bytes(left.data)), True
    return name, content_type


def renamed(name: Any, content_type: Any) -> tuple[str, str]:
    """The stored name and content type of a file before_save_file renamed (or retyped): the name
    must still be a valid file name; the extension rules, which apply to clients, do not apply to
    cloud code."""
    if not isinstance(name, str) or not name:
        raise ParseError(Code.INVALID_FILE_NAME, "Filename not provided.")
    if content_type is not None and not isinstance(content_type, str):
        raise ParseError(Code.FILE_SAVE_ERROR, "Invalid Content-Type.")
    validate_filename(name)
    unique, resolved = stored_name(name, content_type or None)
    return unique, resolved or "application/octet-stream"


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    """Bytes held whole, as the chunks a backend stores."""
    if data:
        yield data


async def first_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    async for chunk in chunks:
        if chunk:
            return chunk
    return None


async def prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk
