"""Parse Server 9's rules for files: names, extension ⇄ content type, unique names, fileUpload options.

Parse Server's FilesRouter and FilesController decide what a name may be (``validateFilename``),
which extension a file gets from its content type and which content type from its extension
(``createFile``, with the ``mime`` package), the unique stored name ``<32 hex>_<name>``, and who may
upload what (``fileUpload``: enableForPublic, enableForAnonymousUser, enableForAuthenticatedUser,
fileExtensions). This module holds those rules; ``domain/files.py`` is the service that applies them.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from bastion.errors import Code, ParseError

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


# What can be sent in a header as it is: printable ASCII (a content type, a file name, a trigger's
# header value), and an HTTP token for a header's name.
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]{1,255}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")


def is_header_value(text: str) -> bool:
    return _HEADER_VALUE.match(text) is not None


def is_header_name(text: str) -> bool:
    return _HEADER_NAME.match(text) is not None
