"""Analytics events (POST /events/<name>) stored by cloud code, for tests/api/test_analytics.py, and
functions whose runs tests/api/test_scriptlog.py finds on the Logs page."""

from __future__ import annotations

import os
from typing import Any

from bastion import cloud


@cloud.track_event
async def store_event(request: cloud.Request) -> None:
    """Every event without a handler of its own, as an app would keep it: a CloudEvent row."""
    event = cloud.Object("CloudEvent")
    event.set({"name": request.event_name, "dimensions": request.dimensions, "master": request.master,
               "installationId": request.installation_id, "hasParams": sorted(request.params)})
    if request.at is not None:
        event.set("at", request.at)
    if request.user is not None:
        event.set("user", request.user)
    await event.save(use_master_key=True)


@cloud.track_event("CloudEventFails")
def failing_event(request: cloud.Request) -> None:
    raise RuntimeError("an analytics handler that fails")


@cloud.track_event("CloudEventRefused")
def refused_event(request: cloud.Request) -> None:
    raise cloud.Error(141, "refused by the handler")


@cloud.define("logLines")
def log_lines(request: cloud.Request) -> dict[str, Any]:
    """Writes request.log lines at the levels asked for, then answers what it was given."""
    for level in request.params.get("levels", ["info"]):
        getattr(request.log, level)("logLines %s says %s", level, request.params.get("text", ""))
    return {"echo": request.params.get("text"), "pid": os.getpid()}


@cloud.define("logFails")
def log_fails(request: cloud.Request) -> None:
    raise cloud.Error(141, "logFails refused: " + str(request.params.get("text", "")))


@cloud.before_save("CloudLogged")
def before_save_logged(request: cloud.Request) -> None:
    request.object.set("seen", True)


@cloud.after_save("CloudLogged")
def after_save_logged(request: cloud.Request) -> None:
    if request.object.get("failAfter"):
        raise cloud.Error(141, "afterSave refused")


@cloud.before_delete("CloudLogged")
def before_delete_logged(request: cloud.Request) -> None:
    if request.object.get("keep"):
        raise cloud.Error(141, "kept by beforeDelete")
