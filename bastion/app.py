"""The ASGI entry point: settings → services (``services.py``) → the REST API and LiveQuery. Nothing else."""

from __future__ import annotations

import logging
from typing import Any

from bastion.cloud._runtime.context import enter_running, leave_running
from bastion.config import Settings
from bastion.http.api import RestApi
from bastion.logs import REQUEST, next_request
from bastion.ports.storage import StorageAdapter
from bastion.services import build_services

log = logging.getLogger("bastion")


class Bastion:
    """The whole server as one ASGI application."""

    def __init__(self, settings: Settings, storage: StorageAdapter | None = None) -> None:
        self.settings = settings
        self.services = build_services(settings, storage)
        self.api = RestApi(self.services)
        self.ready = False

    async def startup(self) -> None:
        await self.services.start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        await self.services.stop()

    # --- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send_fn: Any) -> None:
        # Cloud code's data API, and the tasks started from here (jobs, the scheduler), act
        # through this server, whatever other app runs in the process.
        # (Set and reset by hand: a generator context manager costs a request several calls.)
        token = enter_running(self.services.cloud_server)
        kind = scope["type"]
        # Each request (and LiveQuery connection) is numbered, for the log lines written meanwhile.
        request = REQUEST.set(next_request()) if kind != "lifespan" else None
        try:
            if kind == "http":
                await self.api.handle_http(scope, receive, send_fn)
            elif kind == "websocket":
                await self.services.livequery.serve(scope, receive, send_fn)
            elif kind == "lifespan":
                await self.lifespan(receive, send_fn)
        finally:
            if request is not None:
                REQUEST.reset(request)
            leave_running(token)

    async def lifespan(self, receive: Any, send_fn: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    # One line (the parent process checked the settings and the database already);
                    # the traceback with --log-level debug.
                    log.error("start-up failed: %s: %s", type(exc).__name__, exc, exc_info=log.isEnabledFor(logging.DEBUG))
                    await send_fn({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send_fn({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send_fn({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings) -> Bastion:
    return Bastion(settings)
