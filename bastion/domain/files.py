"""Files as Parse Server 9 has them: names, upload rules, and the service the files routes call.

Parse Server's FilesRouter and FilesController decide what a name may be (``validateFilename``),
which extension a file gets from its content type and which content type from its extension
(``createFile``, with the ``mime`` package), the unique stored name ``<32 hex>_<name>``, and who may
upload what (``fileUpload``: enableForPublic, enableForAnonymousUser, enableForAuthenticatedUser,
fileExtensions). This module holds those rules; the bytes stream through a FilesAdapter.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bastion.core.auth import Auth
from bastion.core.query import ir
from bastion.domain.schema_registry import SchemaRegistry
from bastion.errors import Code, ParseError, Unauthorized
from bastion.ports.files import FileInfo, FilesAdapter
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

# Parse Server 9.10's default fileUpload.fileExtensions: every extension but those a browser would
# render as a page or run (html and its variants, xhtml, svg, xml and its stylesheets, …).
DEFAULT_FILE_EXTENSIONS: tuple[str, ...] = (
    r"^(?!([xXsS]?[hH][tT][mM][lL]?(\+[xX][mM][lL])?|[xX][hH][tT]|[sS][vV][gG]([zZ]|\+[xX][mM][lL])?|"
    r"[xX][mM][lL]|[xX][sS][lL][tT]?(\+[xX][mM][lL])?|[xX][sS][dD]|[rR][nN][gG]|[rR][dD][fF](\+[xX][mM][lL])?|"
    r"[oO][wW][lL]|[mM][aA][tT][hH][mM][lL](\+[xX][mM][lL])?)$)",
)
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # Parse Server's maxUploadSize "20mb"
MAX_FILENAME_LENGTH = 128
_FILENAME = re.compile(r"^[_a-zA-Z0-9][a-zA-Z0-9@. ~_-]*$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$")  # an RFC 9110 token
_WHITESPACE = re.compile(r"\s+")

# Python's table with the answers of npm's mime 4 (Parse Server's) where the two disagree.
_TYPE_BY_EXTENSION = {"md": "text/markdown", "markdown": "text/markdown", "js": "text/javascript",
                      "mjs": "text/javascript", "xml": "application/xml", "bin": "application/octet-stream",
                      "ts": "video/mp2t", "mp3": "audio/mpeg"}
_EXTENSION_BY_TYPE = {"image/jpeg": "jpg", "text/plain": "txt", "application/octet-stream": "bin",
                      "text/markdown": "md", "text/javascript": "js", "application/javascript": "js",
                      "audio/mpeg": "mpga", "application/xml": "xml", "text/xml": "xml"}
_MIME = mimetypes.MimeTypes()


def type_for_name(name: str) -> str | None:
    """The content type a file name's extension means (npm mime's getType), or None."""
    extension = file_extension(name).lower()
    if not extension:
        return None
    if extension in _TYPE_BY_EXTENSION:
        return _TYPE_BY_EXTENSION[extension]
    return _MIME.guess_type("f." + extension, strict=False)[0]


def extension_for_type(content_type: str) -> str | None:
    """The usual extension of a content type (npm mime's getExtension), or None."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base in _EXTENSION_BY_TYPE:
        return _EXTENSION_BY_TYPE[base]
    found = _MIME.guess_extension(base, strict=False)
    return found[1:] if found else None


def file_extension(name: str) -> str:
    """What follows the last dot (Parse's Utils.getFileExtension); '' without a dot."""
    return name.rsplit(".", 1)[1] if "." in name else ""


def validate_filename(name: str) -> None:
    """Parse Server's validateFilename: 122 for a long name or a character it does not allow
    (so never a slash, a backslash, a control character or a leading dot)."""
    if len(name) > MAX_FILENAME_LENGTH:
        raise ParseError(Code.INVALID_FILE_NAME, "Filename too long.")
    if not _FILENAME.match(name):
        raise ParseError(Code.INVALID_FILE_NAME, "Filename contains invalid characters.")


def is_stored_name(name: str) -> bool:
    """Whether ``name`` could be a stored file's name (anything else is simply not found)."""
    return len(name) <= 255 and bool(_FILENAME.match(name))


def stored_name(name: str, content_type: str | None) -> tuple[str, str | None]:
    """FilesController.createFile: the extension a known content type implies is added to a name
    without one, a name's known extension decides its content type, and a random prefix makes the
    name unique. Returns the stored name and content type."""
    if not file_extension(name) and content_type:
        extension = extension_for_type(content_type)
        if extension:
            name = name + ("" if name.endswith(".") else ".") + extension
    elif file_extension(name):
        content_type = type_for_name(name) or content_type
    return f"{secrets.token_hex(16)}_{name}", content_type


def parse_extension_patterns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``--file-extensions``: a JSON-ish list or comma-separated patterns; None for the default."""
    if value is None:
        return DEFAULT_FILE_EXTENSIONS
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import orjson

            items = orjson.loads(text)
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError("--file-extensions must be a list of strings")
        else:
            items = [part.strip() for part in text.split(",") if part.strip()]
    else:
        items = list(value)
    for pattern in items:
        if pattern != "*":
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"--file-extensions: bad pattern {pattern!r}: {error}") from None
    return tuple(items)


@dataclass(frozen=True, slots=True)
class DownloadRules:
    """Parse Server's fileDownload options (its defaults: everyone may download)."""

    public: bool = True
    anonymous_user: bool = True
    authenticated_user: bool = True

    @property
    def restricted(self) -> bool:
        return not (self.public and self.anonymous_user and self.authenticated_user)


@dataclass(frozen=True, slots=True)
class UploadRules:
    """Parse Server's fileUpload options (with its 9.10 defaults) and maxUploadSize; and the
    fileDownload options."""

    enable_for_public: bool = False
    enable_for_anonymous_user: bool = False
    enable_for_authenticated_user: bool = True
    download: DownloadRules = field(default_factory=DownloadRules)
    file_extensions: tuple[str, ...] = DEFAULT_FILE_EXTENSIONS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(re.compile(p) for p in self.file_extensions if p != "*"))

    @property
    def allows_all_extensions(self) -> bool:
        return "*" in self.file_extensions

    def extension_allowed(self, extension: str) -> bool:
        # JavaScript's RegExp#test: the pattern may match anywhere.
        return self.allows_all_extensions or any(p.search(extension) for p in self._compiled)

    def check_extension(self, name: str, content_type: str | None) -> None:
        """FilesRouter.createHandler's fileExtensions check (not applied to the master key)."""
        extension = _WHITESPACE.sub("", file_extension(name).split(";", 1)[0])
        if extension and not self.extension_allowed(extension):
            raise _refused_extension(extension)
        recognized = bool(extension) and type_for_name(name) is not None
        if recognized or not content_type or self.allows_all_extensions:
            return
        # The stored type is the client's own: it must parse, and its subtype be an allowed extension.
        slash = content_type.find("/")
        kind = content_type[:slash].strip() if slash > 0 else ""
        subtype = content_type[slash + 1:].split(";", 1)[0].strip() if slash > 0 else ""
        if not _TOKEN.match(kind) or not _TOKEN.match(subtype):
            bare = _WHITESPACE.sub("", content_type.split(";", 1)[0] if slash < 0 else kind)
            if bare and not self.extension_allowed(bare):
                raise _refused_extension(bare)
            raise ParseError(Code.FILE_SAVE_ERROR, "Invalid Content-Type.")
        subtype = _WHITESPACE.sub("", subtype)
        if not self.extension_allowed(subtype):
            raise _refused_extension(subtype)


def _refused_extension(extension: str) -> ParseError:
    return ParseError(Code.FILE_SAVE_ERROR, f"File upload of extension {extension} is disabled.")


class Files:
    """What the files routes do, in Parse Server's order of checks."""

    def __init__(self, adapter: FilesAdapter, rules: UploadRules, storage: StorageAdapter,
                 schemas: SchemaRegistry, url_for: Callable[[str], str]) -> None:
        self.adapter = adapter
        self.rules = rules
        self.storage = storage
        self.schemas = schemas
        self.url_for = url_for

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

    def prepare(self, name: str, content_type: str | None, auth: Auth) -> tuple[str, str]:
        """Checks a new file's name and type; its unique stored name and content type."""
        validate_filename(name)
        if not auth.is_master:
            self.rules.check_extension(name, content_type)
        unique, resolved = stored_name(name, content_type)
        return unique, resolved or "application/octet-stream"

    @staticmethod
    def prepare_renamed(name: Any, content_type: Any) -> tuple[str, str]:
        """The stored name and content type of a file cloud code's before_save_file renamed (or
        retyped): the name must still be a valid file name; the extension rules, which apply to
        clients, do not apply to cloud code."""
        if not isinstance(name, str) or not name:
            raise ParseError(Code.INVALID_FILE_NAME, "Filename not provided.")
        if content_type is not None and not isinstance(content_type, str):
            raise ParseError(Code.FILE_SAVE_ERROR, "Invalid Content-Type.")
        validate_filename(name)
        unique, resolved = stored_name(name, content_type or None)
        return unique, resolved or "application/octet-stream"

    async def save(self, name: str, chunks: AsyncIterator[bytes], content_type: str,
                   metadata: dict[str, Any], tags: dict[str, Any]) -> tuple[dict[str, str], int]:
        """Streams an upload into the backend; ``{"url", "name"}`` as Parse Server answers, and
        the number of bytes stored."""
        info = await self.adapter.save(name, chunks, content_type, metadata=metadata, tags=tags,
                                       max_bytes=self.rules.max_upload_bytes)
        return {"url": self.url_for(name), "name": name}, info.size

    async def info(self, name: str) -> FileInfo | None:
        return await self.adapter.info(name) if is_stored_name(name) else None

    async def thumbnail(self, name: str, spec: str, fit: str | None) -> FileInfo | None:
        """The thumbnail of a stored image (made once, domain/thumbnails.py); None without the file."""
        from bastion.domain.thumbnails import thumbnail

        if await self.info(name) is None:
            return None
        return await thumbnail(self.adapter, name, spec, fit)

    async def delete(self, name: str) -> None:
        """The file and its thumbnails; 153 when there is no such file, as Parse Server."""
        from bastion.domain.thumbnails import delete_thumbnails

        if not is_stored_name(name) or not await self.adapter.delete(name):
            raise ParseError(Code.FILE_DELETE_ERROR, "Could not delete file.")
        await delete_thumbnails(self.adapter, name)
