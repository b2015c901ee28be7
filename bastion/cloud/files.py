"""``cloud.File``: the file a file trigger sees, and the running of file triggers.

    @cloud.before_save_file
    def stamp(request):
        request.file.add_metadata("uploadedBy", request.user.id if request.user else None)

As Parse Server's ``beforeSave(Parse.File)`` family: ``request.file`` (name, url, content type,
metadata, tags, and the bytes only when the upload was the SDK's JSON with base64, which is read
whole anyway: a raw upload streams into the store after the trigger, so its bytes are not there
yet), ``request.file_size`` (bytes, when known: the decoded base64, or the Content-Length of a raw
upload). ``cloud.before_save(cloud.File)`` is the same trigger as ``cloud.before_save_file``.
The triggers run in cloud/_runtime/file_triggers.py.
"""

from __future__ import annotations

from typing import Any

from bastion.cloud._runtime.registry import FILE_CLASS


class File:
    """A file as a file trigger sees it. Before it is saved ``url`` is None and ``name`` is the
    name the client gave; after, ``name`` is the stored (unique) name and ``url`` its address.

    A before_save_file trigger may change ``metadata`` and ``tags`` (and ``name``, ``content_type``,
    ``data``) in place, or return another ``cloud.File``: one with a ``url`` is taken as stored
    already (the upload is not kept, the client gets that name and url), one with ``data`` is
    stored instead of the upload."""

    class_name = FILE_CLASS  # so that cloud.before_save(cloud.File) registers the file trigger

    def __init__(self, name: str, data: bytes | None = None, content_type: str | None = None, *,
                 metadata: dict[str, Any] | None = None, tags: dict[str, Any] | None = None,
                 url: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("cloud.File needs a name")
        self.name = name
        self.data = bytes(data) if data is not None else None
        self.content_type = content_type
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.tags: dict[str, Any] = dict(tags or {})
        self.url = url

    # The Parse SDK's setters, for code ported from JavaScript.
    def set_metadata(self, metadata: dict[str, Any]) -> None:
        self.metadata = dict(metadata)

    def add_metadata(self, key: str, value: Any) -> None:
        self.metadata[key] = value

    def set_tags(self, tags: dict[str, Any]) -> None:
        self.tags = dict(tags)

    def add_tag(self, key: str, value: Any) -> None:
        self.tags[key] = value

    def to_json(self) -> dict[str, Any]:
        """The REST form of a file value (``{"__type": "File", "name", "url"}``)."""
        out: dict[str, Any] = {"__type": "File", "name": self.name}
        if self.url:
            out["url"] = self.url
        return out

    def __repr__(self) -> str:
        return f"<cloud.File {self.name!r}{' (saved)' if self.url else ''}>"
