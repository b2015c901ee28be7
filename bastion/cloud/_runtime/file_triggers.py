"""Runs the file triggers (``cloud.before_save_file`` and the others) for the files routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.cloud._runtime.registry import FILE_CLASS
from bastion.cloud.errors import ScriptFailure
from bastion.cloud.files import File
from bastion.cloud.request import FileTriggerRequest
from bastion.errors import Code, ParseError

if TYPE_CHECKING:
    from bastion.cloud._runtime.runtime import CloudRuntime
    from bastion.core.auth import Auth, CallInfo


async def run_file_trigger(cloud: CloudRuntime, kind: str, file: File, auth: Auth, info: CallInfo | None,
                           failure: tuple[int, str], **fields: Any) -> File:
    """Runs the file trigger ``kind`` ("beforeSave", "afterSave", "beforeDelete", "afterDelete",
    "beforeFind", "afterFind"); the file it leaves (see ``run_file_trigger_request``)."""
    return (await run_file_trigger_request(cloud, kind, file, auth, info, failure, **fields))[0]


async def run_file_trigger_request(cloud: CloudRuntime, kind: str, file: File, auth: Auth, info: CallInfo | None,
                                   failure: tuple[int, str], **fields: Any) -> tuple[File, FileTriggerRequest | None]:
    """Runs the file trigger ``kind``; the file it leaves (the one a before_save, before_find or
    after_find returned, else ``request.file``), and the request (None without a trigger), whose
    other fields the trigger may have set.

    As Parse Server: ``cloud.Error`` reaches the client as raised; any other failure of the handler
    answers with the upload's or delete's own code (``failure``: 130 "Could not store file: …",
    153 "Could not delete file.") and the exception's message (``failure``'s without one)."""
    entry = cloud.registry.trigger(kind, FILE_CLASS)
    if entry is None:
        return file, None
    request = cloud.request_for(FileTriggerRequest, auth, info, trigger_name=kind, file=file, **fields)
    try:
        result = await cloud.invoke(entry, request, auth)
    except ScriptFailure as exc:
        if exc.code != Code.SCRIPT_FAILED:
            raise  # a validator's 142
        # Parse's resolveError with the upload's or delete's defaults: their code, the message
        # the exception had (the default message when it had none).
        raise ParseError(failure[0], exc.detail or failure[1]) from None
    if kind in ("beforeSave", "beforeFind", "afterFind") and isinstance(result, File):
        return result, request
    left = getattr(request, "file", None)
    return (left if isinstance(left, File) else file), request
