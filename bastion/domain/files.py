"""The files service: uploads, downloads, metadata and deletes as Parse Server's FilesRouter and
FilesController run them, with cloud code's file triggers around them.

The rules (names, content types, fileUpload options) are in ``file_rules.py``; the checks of what
an upload's and a download's triggers leave in ``file_uploads.py`` and ``file_downloads.py``; the
bytes stream through a FilesAdapter. The files routes decode requests and encode answers only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bastion.core.auth import Auth, CallInfo
from bastion.core.query import ir
from bastion.domain.file_downloads import Download, FindRefused, Found, check_after_find, check_before_find
from bastion.domain.file_rules import (
    UploadRules,
    is_stored_name,
    stored_name,
    type_for_name,
    validate_filename,
)
from bastion.domain.file_triggers import NO_FILE_TRIGGERS, DraftFile, Failure, FileTriggers, TriggerFile
from bastion.domain.file_uploads import (
    Upload,
    UploadAborted,
    apply_before_save,
    check_content_type,
    first_chunk,
    prepend,
)
from bastion.domain.schema_registry import SchemaRegistry
from bastion.errors import Code, ParseError, Unauthorized
from bastion.ports.files import FileInfo, FilesAdapter, FileTooLarge
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

log = logging.getLogger("bastion")


class Files:
    """What the files routes do, in Parse Server's order of checks."""

    def __init__(self, adapter: FilesAdapter, rules: UploadRules, storage: StorageAdapter,
                 schemas: SchemaRegistry, url_for: Callable[[str], str],
                 triggers: FileTriggers = NO_FILE_TRIGGERS) -> None:
        self.adapter = adapter
        self.rules = rules
        self.storage = storage
        self.schemas = schemas
        self.url_for = url_for
        self.triggers = triggers

    # --- who may ------------------------------------------------------------------------------

    async def check_upload_allowed(self, auth: Auth) -> None:
        """fileUpload's enableFor… options; the master key may always upload."""
        if auth.is_read_only:
            raise Unauthorized("Permission denied")  # Parse Server 9: 403, sanitized, no code
        if auth.is_master:
            return
        rules = self.rules
        await self._check_caller(auth, "upload", Code.FILE_SAVE_ERROR, rules.enable_for_public,
                                 rules.enable_for_anonymous_user, rules.enable_for_authenticated_user)

    async def check_download_allowed(self, auth: Auth) -> None:
        """fileDownload's enableFor… options (the master key is not read on downloads, as in Parse
        Server: a download's caller is its session's user, or nobody)."""
        rules = self.rules.download
        if auth.is_master or not rules.restricted:
            return
        await self._check_caller(auth, "download", Code.OPERATION_FORBIDDEN, rules.public, rules.anonymous_user,
                                 rules.authenticated_user)

    async def _check_caller(self, auth: Auth, action: str, code: int, public: bool, anonymous_user: bool,
                            authenticated_user: bool) -> None:
        """Parse Server's enableForPublic / enableForAnonymousUser / enableForAuthenticatedUser for
        ``action`` ("upload", "download"): who the caller is decides which flag applies."""
        if auth.user_id is None:
            if not public:
                raise ParseError(code, f"File {action} by public is disabled.")
            return
        anonymous = await self._is_anonymous(auth.user_id)
        if anonymous and not anonymous_user:
            raise ParseError(code, f"File {action} by anonymous user is disabled.")
        if not anonymous and not authenticated_user:
            raise ParseError(code, f"File {action} by authenticated user is disabled.")

    async def _is_anonymous(self, user_id: str) -> bool:
        """Parse.AnonymousUtils.isLinked: the user has anonymous authData."""
        schema = self.schemas.get("_User")
        if schema is None or "authData" not in schema.fields:
            return False
        where = ir.Compare(ir.Field("objectId", "String"), ir.EQ, user_id)
        found = await self.storage.find(schema, FindQuery(where, limit=1, columns=("objectId", "authData")), MASTER)
        auth_data = found[0].get("authData") if found else None
        return isinstance(auth_data, dict) and isinstance(auth_data.get("anonymous"), dict)

    # --- upload -------------------------------------------------------------------------------

    def prepare(self, name: str, content_type: str | None, auth: Auth) -> tuple[str, str]:
        """Checks a new file's name and type; its unique stored name and content type."""
        validate_filename(name)
        if not auth.is_master:
            self.rules.check_extension(name, content_type)
        unique, resolved = stored_name(name, content_type)
        return unique, resolved or "application/octet-stream"

    async def upload(self, upload: Upload, auth: Auth, info: CallInfo | None) -> dict[str, str]:
        """Stores an upload, with before_save_file and after_save_file around it; ``{"url", "name"}``
        as Parse Server answers. FileTooLarge past maxUploadSize, nothing kept (the caller answers
        it as Parse Server does: that depends on how the request came)."""
        check_content_type(upload.content_type)
        metadata = upload.metadata if isinstance(upload.metadata, dict) else {}
        tags = upload.tags if isinstance(upload.tags, dict) else {}
        name, content_type = upload.name, upload.content_type
        failure = (Code.FILE_SAVE_ERROR, f"Could not store file: {upload.given_name}.")
        triggers = self.triggers
        left: TriggerFile | None = None
        if triggers.has("beforeSave"):
            if upload.data == b"":
                raise ParseError(Code.FILE_SAVE_ERROR, "Invalid file upload.")  # before the trigger, as Parse
            # Before a byte of a raw upload is read, so that a refusal reads none.
            left = await triggers.before_save_file(
                DraftFile(upload.given_name, upload.data, content_type, metadata=metadata, tags=tags), auth, info,
                failure, file_size=upload.size, content_length=upload.content_length)
            if left.url:
                # The trigger answered with a file stored elsewhere: nothing of this upload is kept.
                answer = {"url": left.url, "name": left.name}
                await triggers.after_save_file(left, auth, info, failure, file_size=None)
                return answer
            name, content_type = apply_before_save(upload, left, content_type, self.rules.max_upload_bytes, failure)
            metadata, tags = left.metadata, left.tags
        answer, size = await self._store(upload, name, content_type, metadata, tags)
        if triggers.has("afterSave"):
            saved = DraftFile(answer["name"], upload.data if left is None else left.data, content_type,
                              metadata=metadata, tags=tags, url=answer["url"])
            await triggers.after_save_file(saved, auth, info, failure, file_size=size)
        return answer

    async def _store(self, upload: Upload, name: str, content_type: str, metadata: dict[str, Any],
                     tags: dict[str, Any]) -> tuple[dict[str, str], int]:
        """The upload's bytes into the backend; a failed store answers 130, as Parse Server."""
        try:
            first = await first_chunk(upload.chunks)
            if first is None and not upload.may_be_empty:
                raise ParseError(Code.FILE_SAVE_ERROR, "Invalid file upload.")
            return await self.save(name, prepend(first or b"", upload.chunks), content_type, metadata, tags)
        except (FileTooLarge, ParseError, Unauthorized):
            raise
        except UploadAborted:  # nothing was kept, nobody reads the answer
            raise ParseError(Code.FILE_SAVE_ERROR, f"Could not store file: {name}.") from None
        except Exception:  # noqa: BLE001 - Parse Server answers a failed store with 130 and logs it
            log.exception("could not store file %s", name)
            raise ParseError(Code.FILE_SAVE_ERROR, f"Could not store file: {name}.") from None

    async def save(self, name: str, chunks: AsyncIterator[bytes], content_type: str,
                   metadata: dict[str, Any], tags: dict[str, Any]) -> tuple[dict[str, str], int]:
        """Streams an upload into the backend; ``{"url", "name"}`` as Parse Server answers, and
        the number of bytes stored."""
        info = await self.adapter.save(name, chunks, content_type, metadata=metadata, tags=tags,
                                       max_bytes=self.rules.max_upload_bytes)
        return {"url": self.url_for(name), "name": name}, info.size

    # --- download -----------------------------------------------------------------------------

    async def download(self, name: str, caller: Callable[[], Awaitable[Auth]], info: CallInfo | None, *,
                       thumb: str | None = None, fit: str | None = None, whole: bool = True) -> Download | None:
        """The file to serve, with before_find and after_find on files around the lookup; None when
        there is none. ``caller`` says who downloads, asked only when the fileDownload options or a
        trigger need it; ``whole``: an after_find sees the file's bytes (not for a range or a HEAD).
        FindRefused when a find trigger refuses."""
        triggers = self.triggers
        before, after = triggers.has("beforeFind"), triggers.has("afterFind")
        auth = Auth()
        if self.rules.download.restricted or before or after:
            auth = await caller()
            await self.check_download_allowed(auth)
        failure = (Code.SCRIPT_FAILED, f"Could not find file: {name}.")
        if before:
            try:
                name = await self._before_find(name, auth, info, failure)
            except ParseError as exc:
                raise FindRefused(exc) from None
        # ?thumb=200x200&fit=cover: a thumbnail, made once and then served like any file (Parse has none).
        stored = await (self.info(name) if thumb is None else self.thumbnail(name, thumb, fit))
        if stored is None:
            return None
        if not after:
            return Download(stored)
        try:
            return Download(stored, await self._after_find(stored, auth, info, failure, whole))
        except ParseError as exc:
            raise FindRefused(exc) from None

    async def _before_find(self, name: str, auth: Auth, info: CallInfo | None, failure: Failure) -> str:
        """The name to serve (before_find may name another file)."""
        file = DraftFile(name, content_type=type_for_name(name), url=self.url_for(name))
        left = await self.triggers.before_find_file(file, auth, info, failure)
        return check_before_find(name, left.name, failure)

    async def _after_find(self, stored: FileInfo, auth: Auth, info: CallInfo | None, failure: Failure,
                          whole: bool) -> Found:
        """After_find on files. As Parse Server, the trigger sees the file's bytes unless the
        request asks for a range (then the file streams, and only the headers can change)."""
        name = stored.name
        data = b"".join([chunk async for chunk in self.adapter.read(name)]) if whole else None
        file = DraftFile(name, data, stored.content_type, url=self.url_for(name))
        after = await self.triggers.after_find_file(file, auth, info, failure, file_size=stored.size,
                                                    force_download=False,
                                                    response_headers={"X-Content-Type-Options": "nosniff"})
        return check_after_find(after, name, stored.content_type, failure)

    async def info(self, name: str) -> FileInfo | None:
        return await self.adapter.info(name) if is_stored_name(name) else None

    async def metadata(self, name: str) -> dict[str, Any]:
        """A file's metadata and tags as Parse Server answers them; {} without the file."""
        info = await self.info(name)
        if info is None:
            return {}
        answer: dict[str, Any] = {"metadata": info.metadata}
        if info.tags:
            answer["tags"] = info.tags
        return answer

    async def thumbnail(self, name: str, spec: str, fit: str | None) -> FileInfo | None:
        """The thumbnail of a stored image (made once, domain/thumbnails.py); None without the file."""
        from bastion.domain.thumbnails import thumbnail

        if await self.info(name) is None:
            return None
        return await thumbnail(self.adapter, name, spec, fit)

    # --- delete -------------------------------------------------------------------------------

    async def delete(self, name: str, auth: Auth, info: CallInfo | None) -> None:
        """The file and its thumbnails, with before_delete_file and after_delete_file around it
        (before_delete_file runs whether or not the file exists, and may refuse, as Parse Server)."""
        triggers = self.triggers
        if not (triggers.has("beforeDelete") or triggers.has("afterDelete")):
            await self._remove(name)
            return
        failure = (Code.FILE_DELETE_ERROR, "Could not delete file.")
        file = await triggers.before_delete_file(DraftFile(name, url=self.url_for(name)), auth, info, failure)
        await self._remove(name)
        await triggers.after_delete_file(file, auth, info, failure)

    async def _remove(self, name: str) -> None:
        """153 when there is no such file, as Parse Server."""
        from bastion.domain.thumbnails import delete_thumbnails

        if not is_stored_name(name) or not await self.adapter.delete(name):
            raise ParseError(Code.FILE_DELETE_ERROR, "Could not delete file.")
        await delete_thumbnails(self.adapter, name)
