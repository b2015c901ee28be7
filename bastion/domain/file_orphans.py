"""Stored files that nothing refers to (``bastion files orphans``).

A file is referred to when an object of any class holds it in a File field, anywhere inside an
Array or Object field (``{"__type": "File", "name": …}``), or when Parse Config's parameters hold
it. A thumbnail is kept exactly when the file it was made of is kept.

The stored names are listed *before* the objects are read, so a file uploaded while the scan runs is
never among the orphans. A file uploaded before it and attached to an object only after the scan
passed that class would be: run the deletion when uploads are quiet, or look at the dry run first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bastion.core.query import ir
from bastion.core.schema import ClassSchema
from bastion.domain.thumbnails import thumbnail_parent
from bastion.ports.files import FilesAdapter
from bastion.ports.storage import MASTER, FindQuery, StorageAdapter

BATCH = 1000  # objects read per statement
Progress = Callable[[str], None]


@dataclass(slots=True)
class OrphanReport:
    stored: int = 0  # files in the backend
    referenced: int = 0  # distinct file names objects and config refer to
    objects: int = 0  # objects read
    orphans: list[str] = field(default_factory=list)


def _file_names(value: Any, out: set[str]) -> None:
    """Every ``{"__type": "File", "name": …}`` inside a JSON value."""
    if isinstance(value, dict):
        if value.get("__type") == "File" and isinstance(value.get("name"), str):
            out.add(value["name"])
            return
        for item in value.values():
            _file_names(item, out)
    elif isinstance(value, list):
        for item in value:
            _file_names(item, out)


async def referenced_files(storage: StorageAdapter, progress: Progress | None = None) -> tuple[set[str], int]:
    """The file names objects and Parse Config refer to, and how many objects were read."""
    names: set[str] = set()
    objects = 0
    config = await storage.get_config()
    if config:
        _file_names(config, names)
    object_id = ir.Field("objectId", "String")
    for doc in await storage.load_schemas():
        schema = ClassSchema.from_storage(doc)
        files = [n for n, ft in schema.fields.items() if ft.type == "File"]
        nested = [n for n, ft in schema.fields.items() if ft.type in ("Array", "Object")]
        if not files and not nested:
            continue
        # Keyset pagination by objectId: constant cost per batch however large the class.
        last: str | None = None
        seen = 0
        while True:
            where = ir.TRUE if last is None else ir.Compare(object_id, ir.GT, last)
            records = await storage.find(schema, FindQuery(
                where, (ir.OrderKey(object_id),), BATCH, columns=("objectId", *files, *nested)), MASTER)
            for record in records:
                for column in files:
                    if isinstance(record.get(column), str):
                        names.add(record[column])
                for column in nested:
                    _file_names(record.get(column), names)
            seen += len(records)
            if progress and records:
                progress(f"{schema.class_name}: {seen} objects read, {len(names)} files referred to")
            if len(records) < BATCH:
                break
            last = records[-1]["objectId"]
        objects += seen
    return names, objects


async def find_orphans(storage: StorageAdapter, files: FilesAdapter,
                       progress: Progress | None = None) -> OrphanReport:
    report = OrphanReport()
    stored: list[str] = []
    async for name in files.names():
        stored.append(name)
        if progress and len(stored) % 10_000 == 0:
            progress(f"{len(stored)} stored files listed")
    report.stored = len(stored)
    if progress:
        progress(f"{len(stored)} stored files; reading objects")
    referenced, report.objects = await referenced_files(storage, progress)
    report.referenced = len(referenced)

    def kept(name: str) -> bool:
        if name in referenced:
            return True
        parent = thumbnail_parent(name)
        return parent is not None and kept(parent)

    report.orphans = sorted(name for name in stored if not kept(name))
    return report
