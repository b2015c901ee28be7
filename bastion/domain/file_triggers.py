"""What the file pipeline asks of cloud code: the file triggers, as a protocol the domain owns.

``Files`` (``domain/files.py``) takes a ``FileTriggers`` in its constructor; cloud code's runtime
(``bastion/cloud/_runtime/file_triggers.py``) is the implementation the server passes, and
``NO_FILE_TRIGGERS`` (nothing registered) is the default. ``has`` is asked first, so a server
without file triggers never builds a trigger's file.

A trigger gets a ``TriggerFile`` and leaves one: the pipeline hands a ``DraftFile``, cloud code
hands back its own file object (``cloud.File``), which the pipeline may pass to the next trigger
as it is (an after_delete_file sees the file its before_delete_file left). Cloud code may set any
attribute to anything, so the pipeline checks what it reads of a file a trigger left.

``failure`` is the (code, message) a handler's own failure answers with, as Parse Server's
resolveError with the upload's, delete's or find's defaults: the code, and the exception's message
(``failure``'s message when it had none). A ``cloud.Error`` reaches the client as raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bastion.core.auth import Auth, CallInfo

Failure = tuple[int, str]


class TriggerFile(Protocol):
    """A file as the triggers see it: before it is stored ``url`` is None and ``name`` the name
    the client gave; after, ``name`` is the stored name and ``url`` its address."""

    @property
    def name(self) -> Any: ...

    @property
    def data(self) -> Any: ...

    @property
    def content_type(self) -> Any: ...

    @property
    def metadata(self) -> Any: ...

    @property
    def tags(self) -> Any: ...

    @property
    def url(self) -> Any: ...


@dataclass(slots=True)
class DraftFile:
    """The file the pipeline hands a trigger."""

    name: str
    data: bytes | None = None
    content_type: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    url: str | None = None


@dataclass(slots=True)
class AfterFind:
    """What an after_find on files leaves: the file (other bytes, another name or type), and the
    request's ``force_download`` and ``response_headers`` as the trigger left them (unchecked)."""

    file: TriggerFile
    force_download: Any
    response_headers: Any


class FileTriggers(Protocol):
    def has(self, kind: str) -> bool:
        """Whether a file trigger of ``kind`` ("beforeSave", "afterSave", "beforeDelete",
        "afterDelete", "beforeFind", "afterFind") is registered."""
        ...

    async def before_save_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                               file_size: int | None, content_length: int | None) -> TriggerFile:
        """The file to store (the one the trigger returned, else ``request.file``)."""
        ...

    async def after_save_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                              file_size: int | None) -> None: ...

    async def before_delete_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                                 failure: Failure) -> TriggerFile:
        """``request.file`` as the trigger left it (what after_delete_file will see)."""
        ...

    async def after_delete_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                                failure: Failure) -> None: ...

    async def before_find_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                               failure: Failure) -> TriggerFile:
        """The file to serve (the trigger may name another one)."""
        ...

    async def after_find_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                              file_size: int, force_download: bool,
                              response_headers: dict[str, str]) -> AfterFind: ...


class NoFileTriggers:
    """No cloud code: ``has`` is always False, so the pipeline never calls the others."""

    def has(self, kind: str) -> bool:
        return False

    async def before_save_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                               file_size: int | None, content_length: int | None) -> TriggerFile:
        return file

    async def after_save_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                              file_size: int | None) -> None:
        return None

    async def before_delete_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                                 failure: Failure) -> TriggerFile:
        return file

    async def after_delete_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                                failure: Failure) -> None:
        return None

    async def before_find_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                               failure: Failure) -> TriggerFile:
        return file

    async def after_find_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                              file_size: int, force_download: bool,
                              response_headers: dict[str, str]) -> AfterFind:
        return AfterFind(file, force_download, response_headers)


NO_FILE_TRIGGERS: FileTriggers = NoFileTriggers()
