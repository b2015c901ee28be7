"""Narrow views of the storage for Bastion's own tables: a service that only keeps webhooks, the
push queue, the script log or Parse Config asks for this much of the storage, not all of it.

Every ``StorageAdapter`` provides all four (``ports/storage.py`` declares the methods, each adapter
runs them); the protocols name the part a service depends on.
"""

from __future__ import annotations

from typing import Any, Protocol


class ConfigTable(Protocol):
    """Parse Config's ``_GlobalConfig`` row."""

    async def get_config(self) -> dict[str, Any] | None: ...

    async def set_config(self, params: dict[str, Any], master_key_only: dict[str, Any]) -> None: ...

    async def delete_config(self) -> bool: ...


class HooksTable(Protocol):
    """Parse Server's ``_Hooks`` table: webhook registrations."""

    async def load_hooks(self) -> list[dict[str, Any]]: ...

    async def save_hook(self, hook: dict[str, str]) -> None: ...

    async def delete_hooks(self, hook: dict[str, str]) -> int: ...


class PushQueueTable(Protocol):
    """The durable push queue's ``_PushQueue`` rows, shared by every process."""

    async def push_enqueue(self, rows: list[dict[str, Any]]) -> None: ...

    async def push_claim(self, worker: str, now: int, lease_ms: int, limit: int) -> list[dict[str, Any]]: ...

    async def push_reschedule(self, row_id: str, worker: str, body: str, attempts: int, not_before: int) -> bool: ...

    async def push_done(self, row_id: str, worker: str) -> bool: ...

    async def push_rows(self, push_id: str | None = None) -> list[dict[str, Any]]: ...


class ScriptLogTable(Protocol):
    """The ``_ScriptLog`` rows behind Parse Dashboard's Logs page."""

    async def log_append(self, rows: list[tuple[int, str, str]]) -> None: ...

    async def log_read(self, since: int, until: int, level: str | None, limit: int, descending: bool) -> list[str]: ...

    async def log_trim(self, before: int, keep: int) -> None: ...
