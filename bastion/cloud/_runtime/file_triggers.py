"""The file pipeline's triggers (``FileTriggers``, ``domain/file_triggers.py``) run by cloud code:
``cloud.before_save_file`` and the others, each seeing a ``cloud.File``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.cloud._runtime.registry import FILE_CLASS
from bastion.cloud.errors import ScriptFailure
from bastion.cloud.files import File
from bastion.cloud.request import FileTriggerRequest
from bastion.domain.file_triggers import AfterFind, Failure, TriggerFile
from bastion.errors import Code, ParseError

if TYPE_CHECKING:
    from bastion.cloud._runtime.runtime import CloudRuntime
    from bastion.core.auth import Auth, CallInfo


class CloudFileTriggers:
    """The file triggers of a CloudRuntime's registry (looked up on each call, so a --dev reload
    or a webhook registered meanwhile counts)."""

    def __init__(self, cloud: CloudRuntime) -> None:
        self.cloud = cloud

    def has(self, kind: str) -> bool:
        return self.cloud.has(kind, FILE_CLASS)

    async def before_save_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                               file_size: int | None, content_length: int | None) -> TriggerFile:
        left, _ = await self._run("beforeSave", file, auth, info, failure, file_size=file_size,
                                  content_length=content_length)
        return left

    async def after_save_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                              file_size: int | None) -> None:
        await self._run("afterSave", file, auth, info, failure, file_size=file_size)

    async def before_delete_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                                 failure: Failure) -> TriggerFile:
        left, _ = await self._run("beforeDelete", file, auth, info, failure, file_size=None)
        return left

    async def after_delete_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                                failure: Failure) -> None:
        await self._run("afterDelete", file, auth, info, failure, file_size=None)

    async def before_find_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None,
                               failure: Failure) -> TriggerFile:
        left, _ = await self._run("beforeFind", file, auth, info, failure, file_size=None)
        return left

    async def after_find_file(self, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure, *,
                              file_size: int, force_download: bool,
                              response_headers: dict[str, str]) -> AfterFind:
        left, request = await self._run("afterFind", file, auth, info, failure, file_size=file_size,
                                        force_download=force_download, response_headers=response_headers)
        # Without a trigger (gone since ``has``) there are no headers: the pipeline answers ``failure``.
        return AfterFind(left, getattr(request, "force_download", False), getattr(request, "response_headers", None))

    async def _run(self, kind: str, file: TriggerFile, auth: Auth, info: CallInfo | None, failure: Failure,
                   **fields: Any) -> tuple[File, FileTriggerRequest | None]:
        """Runs the file trigger ``kind``; the file it leaves (the one a before_save, before_find or
        after_find returned, else ``request.file``), and the request (None without a trigger), whose
        other fields the trigger may have set.

        As Parse Server: ``cloud.Error`` reaches the client as raised; any other failure of the handler
        answers with the upload's or delete's own code (``failure``: 130 "Could not store file: …",
        153 "Could not delete file.") and the exception's message (``failure``'s without one)."""
        given = _cloud_file(file)
        entry = self.cloud.registry.trigger(kind, FILE_CLASS)
        if entry is None:
            return given, None
        request = self.cloud.request_for(FileTriggerRequest, auth, info, trigger_name=kind, file=given, **fields)
        try:
            result = await self.cloud.invoke(entry, request, auth)
        except ScriptFailure as exc:
            if exc.code != Code.SCRIPT_FAILED:
                raise  # a validator's 142
            # Parse's resolveError with the upload's or delete's defaults: their code, the message
            # the exception had (the default message when it had none).
            raise ParseError(failure[0], exc.detail or failure[1]) from None
        if kind in ("beforeSave", "beforeFind", "afterFind") and isinstance(result, File):
            return result, request
        left = getattr(request, "file", None)
        return (left if isinstance(left, File) else given), request


def _cloud_file(file: TriggerFile) -> File:
    """The ``cloud.File`` a handler sees: a file a trigger left, as it is; the pipeline's, as a new one."""
    if isinstance(file, File):
        return file
    return File(file.name, file.data, file.content_type, metadata=file.metadata, tags=file.tags, url=file.url)
