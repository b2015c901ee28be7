"""/files: upload (raw body or the JS SDK's JSON with base64), download with ranges, metadata, delete.

As Parse Server's FilesRouter: an upload whose headers name the application carries the file as its
raw body, which streams from ASGI ``receive`` into the backend chunk by chunk; without the header
the body is the JS SDK's JSON (keys, ``base64``, ``_ContentType``, ``fileData``), necessarily read
whole (bounded by ``max_body_bytes``). Downloads need no keys; they stream the backend's chunks.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from bastion.cloud._runtime.file_triggers import run_file_trigger, run_file_trigger_request
from bastion.cloud._runtime.registry import FILE_CLASS
from bastion.cloud.files import File
from bastion.core.auth import Auth
from bastion.core.names import check_no_denylisted_keys
from bastion.domain.files import Files, type_for_name, validate_filename
from bastion.errors import Code, ParseError, Unauthorized
from bastion.http.context import RequestContext, decode_body, extract_keys, read_body
from bastion.http.ranges import Multipart, Unsatisfiable, content_range, parse_range
from bastion.http.responses import Response, StreamResponse
from bastion.http.router import Router
from bastion.http.routes.common import PERMISSION_DENIED, require_master
from bastion.keys import authenticate
from bastion.ports.files import FilesAdapter, FileTooLarge

log = logging.getLogger("bastion")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]{1,255}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # an HTTP token
# Headers that frame the answer: Bastion sets them, whatever a trigger says.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
                              "trailer", "content-range"})
# What a browser shows in place without running anything; every other type is sent as an attachment.
_INLINE_TYPES = re.compile(
    r"^(image/(png|jpeg|gif|webp|avif|bmp|x-icon|vnd\.microsoft\.icon|heic|heif|tiff)|audio/[\w.+-]+|"
    r"video/[\w.+-]+|text/plain|text/csv|application/json|application/pdf|application/octet-stream)$")
# A file is never a page of this origin: no script, no plugin, no form, even if a browser renders it.
_SAFETY_HEADERS = [(b"x-content-type-options", b"nosniff"),
                   (b"content-security-policy", b"default-src 'none'; sandbox"),
                   (b"accept-ranges", b"bytes")]


def _files(req: RequestContext) -> Files:
    return req.services.files


# --- upload ---------------------------------------------------------------------------------------


async def filename_missing(req: RequestContext) -> Response:
    raise ParseError(Code.INVALID_FILE_NAME, "Filename not provided.")


async def create(req: RequestContext) -> Response:
    try:
        return await _create(req)
    except _EntityTooLarge:
        return Response({"error": "request entity too large"}, status=413)


@dataclass(slots=True)
class _Upload:
    """What an upload request carries, whichever of its two forms it took."""

    raw: bool  # the body is the file (else the SDK's JSON)
    content_type: str | None
    chunks: AsyncIterator[bytes]
    metadata: Any = None
    tags: Any = None
    may_be_empty: bool = False
    data: bytes | None = None  # the SDK's JSON form only: the decoded base64, in memory already


async def _read_upload(req: RequestContext, files: Files) -> _Upload:
    """The keys and the file of an upload; the raw body is not read yet, only wrapped."""
    if req.headers.get("x-parse-application-id") == req.services.settings.app_id:
        length = req.headers.get("content-length", "")
        # As Parse Server's body limit, before anything else: a body announced too large is refused unread.
        if length.isdigit() and int(length) > files.rules.max_upload_bytes:
            raise _too_large(req, files)
        req.keys, req.context = extract_keys(req.headers, None)
        # Parse Server streams a request without any body (no length, not chunked) into an empty file;
        # an announced body that turns out empty is "Invalid file upload." as in its buffered path.
        bodiless = "content-length" not in req.headers and "transfer-encoding" not in req.headers
        return _Upload(True, req.headers.get("content-type"), _receive_chunks(req.receive), may_be_empty=bodiless)
    body = await _json_upload(req)
    content_type = req.headers.get("content-type")
    if "_ContentType" in body:
        if not isinstance(body["_ContentType"], str):
            raise Unauthorized()
        content_type = body["_ContentType"]
    req.keys, req.context = extract_keys(req.headers, body)
    file_data = body.get("fileData")
    if not isinstance(file_data, dict):
        file_data = {}
    data = _decode_base64(body.get("base64"))
    if len(data) > files.rules.max_upload_bytes:
        raise _too_large(req, files)
    return _Upload(False, content_type, _single(data), file_data.get("metadata"), file_data.get("tags"), data=data)


async def _create(req: RequestContext) -> Response:
    files = _files(req)
    upload = await _read_upload(req, files)
    req.auth = authenticate(req.keys, req.services.settings)
    if req.keys.session_token and not req.auth.is_master:
        req.auth = await req.services.users.authenticate(req.auth, req.keys.session_token)
    await files.check_upload_allowed(req.auth)
    name, content_type = files.prepare(req.path_params["filename"], upload.content_type, req.auth)
    if upload.raw and req.headers.get("x-parse-upload-mode") == "stream":
        # Parse Server's streaming mode takes metadata and tags from headers.
        upload.metadata = _header_object(req, "x-parse-file-metadata", "X-Parse-File-Metadata")
        upload.tags = _header_object(req, "x-parse-file-tags", "X-Parse-File-Tags")
    if not _HEADER_VALUE.match(content_type):
        raise ParseError(Code.FILE_SAVE_ERROR, "Invalid Content-Type.")
    metadata = upload.metadata if isinstance(upload.metadata, dict) else {}
    tags = upload.tags if isinstance(upload.tags, dict) else {}
    cloud = req.services.cloud
    failure = (Code.FILE_SAVE_ERROR, f"Could not store file: {req.path_params['filename']}.")
    file: File | None = None
    if cloud.has("beforeSave", FILE_CLASS):
        if upload.data == b"":
            raise ParseError(Code.FILE_SAVE_ERROR, "Invalid file upload.")  # before the trigger, as Parse
        file, name, content_type = await _before_save_file(req, files, upload, name, content_type,
                                                           metadata, tags, failure)
        if file.url:
            # The trigger answered with a file stored elsewhere: nothing of this upload is kept.
            answer = {"url": file.url, "name": file.name}
            await run_file_trigger(cloud, "afterSave", file, req.auth, req.call_info(), failure, file_size=None)
            return Response(answer, status=201, headers=[(b"location", answer["url"].encode())])
        metadata, tags = file.metadata, file.tags
    try:
        first = await _first_chunk(upload.chunks)
        if first is None and not upload.may_be_empty:
            raise ParseError(Code.FILE_SAVE_ERROR, "Invalid file upload.")
        answer, size = await files.save(name, _prepend(first or b"", upload.chunks), content_type, metadata, tags)
    except FileTooLarge:
        raise _too_large(req, files) from None
    except (ParseError, Unauthorized):
        raise
    except _Disconnected:  # the client went away mid-upload: nothing was kept, nobody reads the answer
        raise ParseError(Code.FILE_SAVE_ERROR, f"Could not store file: {name}.") from None
    except Exception:  # noqa: BLE001 - Parse Server answers a failed store with 130 and logs it
        log.exception("could not store file %s", name)
        raise ParseError(Code.FILE_SAVE_ERROR, f"Could not store file: {name}.") from None
    if cloud.has("afterSave", FILE_CLASS):
        saved = File(answer["name"], upload.data if file is None else file.data, content_type,
                     metadata=metadata, tags=tags, url=answer["url"])
        await run_file_trigger(cloud, "afterSave", saved, req.auth, req.call_info(), failure, file_size=size)
    return Response(answer, status=201, headers=[(b"location", answer["url"].encode())])


async def _before_save_file(req: RequestContext, files: Files, upload: _Upload, name: str, content_type: str,
                            metadata: dict[str, Any], tags: dict[str, Any],
                            failure: tuple[int, str]) -> tuple[File, str, str]:
    """Cloud code's before_save_file, before a byte of a raw upload is read (so a refusal reads
    none); the file it leaves, and the stored name and content type to use."""
    given = req.path_params["filename"]
    length = req.headers.get("content-length", "")
    size = len(upload.data) if upload.data is not None else (int(length) if length.isdigit() else None)
    file = File(given, upload.data, content_type, metadata=metadata, tags=tags)
    result = await run_file_trigger(req.services.cloud, "beforeSave", file, req.auth, req.call_info(), failure,
                                    file_size=size, content_length=int(length) if length.isdigit() else None)
    if result.url:
        return result, result.name, content_type
    if not isinstance(result.metadata, dict) or not isinstance(result.tags, dict):
        log.error("before_save_file left metadata or tags that are not dicts")
        raise ParseError(*failure)
    check_no_denylisted_keys(result.metadata)
    check_no_denylisted_keys(result.tags)
    if result.name != given or result.content_type != content_type:
        name, content_type = files.prepare_renamed(result.name, result.content_type)
        if not _HEADER_VALUE.match(content_type):
            raise ParseError(Code.FILE_SAVE_ERROR, "Invalid Content-Type.")
    if result.data is not None:
        # The bytes to store, the upload's own or the trigger's (a raw body is then never read).
        if not isinstance(result.data, (bytes, bytearray)):
            log.error("before_save_file left data that is not bytes")
            raise ParseError(*failure)
        if len(result.data) > files.rules.max_upload_bytes:
            raise _too_large(req, files)
        upload.chunks, upload.may_be_empty = _single(bytes(result.data)), True
    return result, name, content_type


def _too_large(req: RequestContext, files: Files) -> Exception:
    """Parse Server's answers to a file over maxUploadSize: its streaming mode's 130, else the 413
    of the body parser that reads the whole request first."""
    if req.headers.get("x-parse-upload-mode") == "stream":
        return ParseError(Code.FILE_SAVE_ERROR,
                          f"File size exceeds maximum allowed: {files.rules.max_upload_bytes} bytes.")
    return _EntityTooLarge()


class _EntityTooLarge(Exception):
    """Answered as Parse Server's body parser does: 413 {"error": "request entity too large"}."""


async def _json_upload(req: RequestContext) -> dict[str, Any]:
    """The JS SDK's form: without keys in the headers the body must be JSON naming the app
    (Parse Server answers anything else 403 unauthorized)."""
    try:
        raw = await read_body(req.receive, req.services.settings.max_body_bytes)
    except ParseError:
        raise _EntityTooLarge() from None
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Unauthorized() from None
    body = decode_body(raw)
    if not isinstance(body, dict) or "_ApplicationId" not in body:
        raise Unauthorized()
    return body


def _decode_base64(value: Any) -> bytes:
    if value is None or value == "":
        return b""
    if not isinstance(value, str):
        raise Unauthorized()
    try:
        # Node's Buffer.from(…, "base64") is lenient; so is this, but it never decodes garbage silently.
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise ParseError(Code.FILE_SAVE_ERROR, "Invalid file upload.") from None


def _header_object(req: RequestContext, key: str, label: str) -> dict[str, Any]:
    text = req.headers.get(key)
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ParseError(Code.INVALID_JSON, f"Invalid JSON in {label} header.")
    check_no_denylisted_keys(value)  # 105, as Parse Server's checkProhibitedKeywords
    return value


class _Disconnected(Exception):
    """The client went away mid-upload."""


async def _receive_chunks(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body"):
            return


async def _single(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


async def _first_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    async for chunk in chunks:
        if chunk:
            return chunk
    return None


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


# --- download -------------------------------------------------------------------------------------


def _not_found() -> Response:
    return Response(raw=b"File not found.", status=404, content_type=(b"content-type", b"text/plain; charset=utf-8"))


def _with_charset(content_type: str) -> str:
    """As Express sets it: text types without a charset are sent as UTF-8."""
    if content_type.lower().startswith("text/") and "charset=" not in content_type.lower():
        return content_type + "; charset=utf-8"
    return content_type


async def download(req: RequestContext) -> Response:
    if req.path_params["appId"] != req.services.settings.app_id:
        return Response({"error": PERMISSION_DENIED}, status=403)
    files, cloud = _files(req), req.services.cloud
    name = req.path_params["filename"]
    before, after = cloud.has("beforeFind", FILE_CLASS), cloud.has("afterFind", FILE_CLASS)
    auth = Auth()
    if files.rules.download.restricted or before or after:
        auth = await _download_auth(req)
        await files.check_download_allowed(auth)
    failure = (Code.SCRIPT_FAILED, f"Could not find file: {name}.")
    if before:
        try:
            name = await _before_find_file(req, auth, name, failure)
        except ParseError as exc:  # as Parse Server: a find trigger's refusal answers 403
            return Response({"code": exc.code, "error": exc.message}, status=403)
    spec = req.query.get("thumb")
    # ?thumb=200x200&fit=cover: a thumbnail, made once and then served like any file (Parse has none).
    info = await (files.info(name) if spec is None else files.thumbnail(name, spec, req.query.get("fit")))
    if info is None:
        return _not_found()
    name = info.name
    headers = list(_SAFETY_HEADERS)
    base_type = info.content_type.split(";", 1)[0].strip().lower()
    if not _INLINE_TYPES.match(base_type):
        headers.append((b"content-disposition", b"attachment"))
    if after:
        try:
            found = await _after_find_file(req, auth, name, info.content_type, info.size, failure)
        except ParseError as exc:
            return Response({"code": exc.code, "error": exc.message}, status=403)
        headers = found.headers(headers)
        if found.data is not None:
            served = found.content_type_given or found.content_type
            return StreamResponse(None if req.method == "HEAD" else _single(found.data), len(found.data),
                                  headers=headers, content_type=(b"content-type", served.encode()),
                                  receive=req.receive)
        if found.content_type_given:
            info = replace(info, content_type=found.content_type_given)
    else:
        direct = files.adapter.direct_url(name)
        if direct is not None:
            return Response(raw=b"", status=302, headers=[(b"location", direct.encode())], content_type=None)
    head = req.method == "HEAD"
    content_type = (b"content-type", _with_charset(info.content_type).encode("latin-1"))
    try:
        ranges = parse_range(req.headers.get("range"), info.size)
    except Unsatisfiable:
        headers.append((b"content-range", f"bytes */{info.size}".encode()))
        return Response(raw=b"", status=416, headers=headers, content_type=None)
    adapter: FilesAdapter = files.adapter
    if ranges is None:
        return StreamResponse(None if head else adapter.read(name), info.size, headers=headers,
                              content_type=content_type, receive=req.receive)
    if len(ranges) == 1:
        start, end = ranges[0]
        headers.append((b"content-range", content_range(start, end, info.size).encode()))
        return StreamResponse(None if head else adapter.read(name, start, end), end - start, status=206,
                              headers=headers, content_type=content_type, receive=req.receive)
    multipart = Multipart(ranges, info.size, info.content_type)
    return StreamResponse(None if head else multipart.chunks(lambda s, e: adapter.read(name, s, e)),
                          multipart.length, status=206, headers=headers,
                          content_type=(b"content-type", multipart.content_type.encode()), receive=req.receive)


async def _download_auth(req: RequestContext) -> Auth:
    """Who downloads, as Parse Server's file routes read it: the user of X-Parse-Session-Token, or
    nobody. No keys are read (a browser's <img> sends none), so the master key counts for nothing."""
    auth = Auth(installation_id=req.headers.get("x-parse-installation-id"))
    token = req.headers.get("x-parse-session-token")
    return await req.services.users.authenticate(auth, token) if token else auth


async def _before_find_file(req: RequestContext, auth: Auth, name: str, failure: tuple[int, str]) -> str:
    """Cloud code's before_find on files: the name to serve (the trigger may name another file)."""
    file = File(name, content_type=type_for_name(name), url=_files(req).url_for(name))
    result = await run_file_trigger(req.services.cloud, "beforeFind", file, auth, req.call_info(), failure,
                                    file_size=None)
    if result.name != name:
        try:
            validate_filename(result.name)
        except ParseError:
            log.error("before_find on files named the file %r, which cannot be a file's name", result.name[:100])
            raise ParseError(*failure) from None
    return result.name


@dataclass(slots=True)
class _Found:
    """What cloud code's after_find on files leaves: other bytes to send, a download, headers."""

    data: bytes | None
    content_type: str
    force_download: bool
    name: str
    response_headers: dict[str, str]

    def headers(self, defaults: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The answer's headers: Bastion's safety headers, except nosniff which the trigger's
        ``response_headers`` carry (as Parse Server's defaults do), then the trigger's. The framing
        headers stay Bastion's; a Content-Type given there is ``content_type_given``."""
        given = {key.lower(): value for key, value in self.response_headers.items()
                 if key.lower() not in _FRAMING_HEADERS}
        out = [(k, v) for k, v in defaults
               if k != b"x-content-type-options" and k.decode() not in given
               and not (self.force_download and k == b"content-disposition")]
        if self.force_download:
            out.append((b"content-disposition", f"attachment;filename={self.name}".encode()))
        out += [(key.encode(), value.encode()) for key, value in given.items() if key != "content-type"]
        return out

    @property
    def content_type_given(self) -> str | None:
        return next((v for k, v in self.response_headers.items() if k.lower() == "content-type"), None)


async def _after_find_file(req: RequestContext, auth: Auth, name: str, content_type: str, size: int,
                           failure: tuple[int, str]) -> _Found:
    """Cloud code's after_find on files. As Parse Server, the trigger sees the file's bytes unless
    the request asks for a range (then the file streams, and only the headers can change)."""
    files = _files(req)
    data = None
    if "range" not in req.headers and req.method != "HEAD":
        data = b"".join([chunk async for chunk in files.adapter.read(name)])
    file = File(name, data, content_type, url=files.url_for(name))
    left, request = await run_file_trigger_request(
        req.services.cloud, "afterFind", file, auth, req.call_info(), failure, file_size=size, force_download=False,
        response_headers={"X-Content-Type-Options": "nosniff"})
    headers = getattr(request, "response_headers", None)
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and _HEADER_NAME.match(k) and isinstance(v, str) and _HEADER_VALUE.match(v)
            for k, v in headers.items()):
        log.error("after_find on files left response_headers that are not a dict of header names and values")
        raise ParseError(*failure)
    if not _HEADER_VALUE.match(left.name) or '"' in left.name:
        log.error("after_find on files left a file name that cannot go into a header")
        raise ParseError(*failure)
    if left.data is not None and not isinstance(left.data, (bytes, bytearray)):
        log.error("after_find on files left data that is not bytes")
        raise ParseError(*failure)
    if left.name != name:  # as Parse Server: the type of the name the trigger left
        served_type = type_for_name(left.name) or left.content_type or "application/octet-stream"
    else:
        served_type = left.content_type or content_type
    return _Found(None if left.data is None else bytes(left.data), _with_charset(served_type),
                  bool(getattr(request, "force_download", False)), left.name, headers)


async def metadata(req: RequestContext) -> Response:
    if req.path_params["appId"] != req.services.settings.app_id:
        return Response({})  # as Parse Server for an application it does not know
    info = await _files(req).info(req.path_params["filename"])
    if info is None:
        return Response({})
    answer: dict[str, Any] = {"metadata": info.metadata}
    if info.tags:
        answer["tags"] = info.tags
    return Response(answer)


# --- delete ---------------------------------------------------------------------------------------


async def delete(req: RequestContext) -> Response:
    require_master(req)
    if req.auth.is_read_only:
        raise Unauthorized(PERMISSION_DENIED)
    files, name, cloud = _files(req), req.path_params["filename"], req.services.cloud
    if not (cloud.has("beforeDelete", FILE_CLASS) or cloud.has("afterDelete", FILE_CLASS)):
        await files.delete(name)
        return Response(raw=b"", content_type=None)  # Parse Server answers 200 with an empty body
    # As Parse Server: before_delete_file runs whether or not the file exists (and may refuse).
    failure = (Code.FILE_DELETE_ERROR, "Could not delete file.")
    file = File(name, url=files.url_for(name))
    file = await run_file_trigger(cloud, "beforeDelete", file, req.auth, req.call_info(), failure, file_size=None)
    await files.delete(name)
    await run_file_trigger(cloud, "afterDelete", file, req.auth, req.call_info(), failure, file_size=None)
    return Response(raw=b"", content_type=None)


def register(router: Router) -> None:
    for path in ("/files", "/files/"):  # Express matches both
        router.add("POST", path, filename_missing, public=True, streams_body=True)  # the body is never read
    router.add("POST", "/files/:filename", create, public=True, streams_body=True)
    router.add("GET", "/files/:appId/metadata/:filename", metadata, public=True)
    router.add("GET", "/files/:appId/:filename", download, public=True)
    router.add("HEAD", "/files/:appId/:filename", download, public=True)
    router.add("DELETE", "/files/:filename", delete)
