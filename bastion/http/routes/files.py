"""/files: upload (raw body or the JS SDK's JSON with base64), download with ranges, metadata, delete.

As Parse Server's FilesRouter: an upload whose headers name the application carries the file as its
raw body, which streams from ASGI ``receive`` into the backend chunk by chunk; without the header
the body is the JS SDK's JSON (keys, ``base64``, ``_ContentType``, ``fileData``), necessarily read
whole (bounded by ``max_body_bytes``). Downloads need no keys; they stream the backend's chunks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import orjson

from bastion.core.auth import Auth
from bastion.core.names import check_no_denylisted_keys
from bastion.domain.file_downloads import FindRefused, Found
from bastion.domain.file_uploads import Upload, UploadAborted, chunks_of
from bastion.domain.files import Files
from bastion.errors import Code, ParseError, Unauthorized
from bastion.http.context import RequestContext, decode_body, extract_keys, read_body
from bastion.http.ranges import Multipart, Unsatisfiable, content_range, parse_range
from bastion.http.responses import Response, StreamResponse
from bastion.http.router import Router
from bastion.http.routes.common import PERMISSION_DENIED, require_master
from bastion.keys import authenticate
from bastion.ports.files import FilesAdapter, FileTooLarge

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
        # Parse Server's body parser answers this without a code; Parse's code for a file it could
        # not save is added, so SDKs get a Parse error (its streaming mode's code for the same case).
        return Response({"code": Code.FILE_SAVE_ERROR, "error": "request entity too large"}, status=413)


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
    return _Upload(False, content_type, chunks_of(data), file_data.get("metadata"), file_data.get("tags"), data=data)


async def _create(req: RequestContext) -> Response:
    files = _files(req)
    upload = await _read_upload(req, files)
    req.auth = authenticate(req.keys, req.services.settings, req.client_ip)
    if req.keys.session_token and not req.auth.is_master:
        req.auth = await req.services.users.authenticate(req.auth, req.keys.session_token)
    await files.check_upload_allowed(req.auth)
    name, content_type = files.prepare(req.path_params["filename"], upload.content_type, req.auth)
    if upload.raw and req.headers.get("x-parse-upload-mode") == "stream":
        # Parse Server's streaming mode takes metadata and tags from headers.
        upload.metadata = _header_object(req, "x-parse-file-metadata", "X-Parse-File-Metadata")
        upload.tags = _header_object(req, "x-parse-file-tags", "X-Parse-File-Tags")
    length = req.headers.get("content-length", "")
    try:
        answer = await files.upload(
            Upload(given_name=req.path_params["filename"], name=name, content_type=content_type, chunks=upload.chunks,
                   data=upload.data, may_be_empty=upload.may_be_empty,
                   content_length=int(length) if length.isdigit() else None, metadata=upload.metadata,
                   tags=upload.tags),
            req.auth, req.call_info())
    except FileTooLarge:
        raise _too_large(req, files) from None
    return Response(answer, status=201, headers=[(b"location", answer["url"].encode())])


def _too_large(req: RequestContext, files: Files) -> Exception:
    """Parse Server's answers to a file over maxUploadSize: its streaming mode's 130, else the 413
    of the body parser that reads the whole request first."""
    if req.headers.get("x-parse-upload-mode") == "stream":
        return ParseError(Code.FILE_SAVE_ERROR,
                          f"File size exceeds maximum allowed: {files.rules.max_upload_bytes} bytes.")
    return _EntityTooLarge()


class _EntityTooLarge(Exception):
    """Answered as Parse Server's body parser does, 413 "request entity too large", with code 130."""


async def _json_upload(req: RequestContext) -> dict[str, Any]:
    """The JS SDK's form: without keys in the headers the body must be JSON naming the app
    (Parse Server answers anything else 403 unauthorized)."""
    limit = req.services.settings.max_body_bytes
    length = req.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:  # refused unread
        raise _EntityTooLarge()
    try:
        raw = await read_body(req.receive, limit)
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


async def _receive_chunks(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise UploadAborted()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body"):
            return


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
    files = _files(req)
    head = req.method == "HEAD"
    try:
        served = await files.download(req.path_params["filename"], lambda: _download_auth(req), req.call_info(),
                                     thumb=req.query.get("thumb"), fit=req.query.get("fit"),
                                     whole="range" not in req.headers and not head)
    except FindRefused as refused:  # as Parse Server: a find trigger's refusal answers 403
        return Response({"code": refused.error.code, "error": refused.error.message}, status=403)
    if served is None:
        return _not_found()
    info = served.file
    name = info.name
    headers = list(_SAFETY_HEADERS)
    base_type = info.content_type.split(";", 1)[0].strip().lower()
    if not _INLINE_TYPES.match(base_type):
        headers.append((b"content-disposition", b"attachment"))
    found = served.found  # what an after_find on files left
    if found is not None:
        headers = _headers_after_find(found, headers)
        if found.data is not None:
            served_type = found.content_type_given or _with_charset(found.content_type)
            return StreamResponse(None if head else chunks_of(found.data), len(found.data),
                                  headers=headers, content_type=(b"content-type", served_type.encode()),
                                  receive=req.receive)
        if found.content_type_given:
            info = replace(info, content_type=found.content_type_given)
    else:
        direct = files.adapter.direct_url(name)
        if direct is not None:
            return Response(raw=b"", status=302, headers=[(b"location", direct.encode())], content_type=None)
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


def _headers_after_find(found: Found, defaults: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The answer's headers after an after_find on files: Bastion's safety headers, except nosniff
    which the trigger's ``response_headers`` carry (as Parse Server's defaults do), then the
    trigger's. The framing headers stay Bastion's; a Content-Type given there is
    ``content_type_given``."""
    given = {key.lower(): value for key, value in found.response_headers.items()
             if key.lower() not in _FRAMING_HEADERS}
    out = [(k, v) for k, v in defaults
           if k != b"x-content-type-options" and k.decode() not in given
           and not (found.force_download and k == b"content-disposition")]
    if found.force_download:
        out.append((b"content-disposition", f"attachment;filename={found.name}".encode()))
    out += [(key.encode(), value.encode()) for key, value in given.items() if key != "content-type"]
    return out


async def metadata(req: RequestContext) -> Response:
    if req.path_params["appId"] != req.services.settings.app_id:
        return Response({})  # as Parse Server for an application it does not know
    return Response(await _files(req).metadata(req.path_params["filename"]))


# --- delete ---------------------------------------------------------------------------------------


async def delete(req: RequestContext) -> Response:
    require_master(req)
    if req.auth.is_read_only:
        raise Unauthorized(PERMISSION_DENIED)
    await _files(req).delete(req.path_params["filename"], req.auth, req.call_info())
    return Response(raw=b"", content_type=None)  # Parse Server answers 200 with an empty body


def register(router: Router) -> None:
    for path in ("/files", "/files/"):  # Express matches both
        router.add("POST", path, filename_missing, public=True, streams_body=True)  # the body is never read
    router.add("POST", "/files/:filename", create, public=True, streams_body=True)
    router.add("GET", "/files/:appId/metadata/:filename", metadata, public=True)
    router.add("GET", "/files/:appId/:filename", download, public=True)
    router.add("HEAD", "/files/:appId/:filename", download, public=True)
    router.add("DELETE", "/files/:filename", delete)
