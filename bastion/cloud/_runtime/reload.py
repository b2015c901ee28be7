"""``--dev``: cloud code reloads when its files change, without a restart or a dropped connection.

A background task watches the cloud code's directory (``.py`` files, through ``watchfiles``); after
each batch of changes it loads the code into a fresh registry and swaps ``runtime.registry`` in one
assignment, so a request sees either the old code or the new, never a mix. A broken edit logs its
``CloudLoadError`` (file and line) and the previous code keeps running. Only the registry attribute
is swapped: whatever else hangs off the runtime stays as it is.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.cloud._runtime.loader import CloudLoadError, entry_file, load_cloud

if TYPE_CHECKING:
    from bastion.cloud._runtime.runtime import CloudRuntime

log = logging.getLogger("bastion.cloud")


class CloudReloader:
    def __init__(self, runtime: CloudRuntime, path: str | Path, debounce_ms: int = 200) -> None:
        self.runtime = runtime
        self.path = Path(path)
        self.debounce_ms = debounce_ms
        self.reloads = 0  # successful reloads, for the tests and the log
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def directory(self) -> Path:
        return entry_file(self.path)[1]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="cloud-code-reload")

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(task, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
            except Exception:  # noqa: BLE001 - a watcher failure must not fail the shutdown
                log.exception("the cloud code watcher failed")

    def reload(self) -> bool:
        """Load the cloud code anew and swap it in; False (and the old code kept) when it is broken."""
        try:
            registry = load_cloud(self.path)
        except CloudLoadError as exc:
            log.error("cloud code not reloaded, the previous code keeps running: %s", exc)
            return False
        self.runtime.registry = registry  # one assignment: requests see the old code or the new
        self.reloads += 1
        log.warning("cloud code reloaded from %s (%s)", registry.source, registry.summary())
        return True

    async def _watch(self) -> None:
        from watchfiles import PythonFilter, awatch

        directory = self.directory
        try:
            async for changes in awatch(directory, watch_filter=PythonFilter(), stop_event=self._stop,
                                        debounce=self.debounce_ms, recursive=True):
                if self._stop.is_set():
                    return
                log.info("cloud code changed: %s", ", ".join(sorted({Path(p).name for _, p in changes})))
                self.reload()
        except Exception:  # noqa: BLE001 - without the watcher the server still serves the last code
            log.exception("the cloud code watcher stopped; restart the server to pick up changes")
