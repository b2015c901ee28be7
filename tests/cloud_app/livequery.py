"""LiveQuery triggers used by tests/livequery/test_cloud_hooks.py (classes named LiveCloud*; the
connect trigger only refuses installation ids that name it)."""

from __future__ import annotations

from bastion import cloud


@cloud.before_connect
def refuse_blocked(request: cloud.Request) -> None:
    if request.installation_id == "live-cloud-blocked":
        raise cloud.Error(cloud.Error.OPERATION_FORBIDDEN, "this installation may not connect")
    if request.installation_id == "live-cloud-user-only" and request.user is None:
        raise cloud.Error(209, "log in first")


@cloud.before_subscribe("LiveCloudRoom")
def narrow_rooms(request: cloud.Request) -> None:
    query = request.query
    if "secret" in query.where:
        raise cloud.Error(cloud.Error.OPERATION_FORBIDDEN, "no subscriptions on secret")
    query.not_equal_to("hidden", True)  # nobody watches hidden rooms


@cloud.after_event("LiveCloudRoom")
def decorate_events(request: cloud.Request) -> None:
    obj = request.object
    if obj.get("drop"):
        request.send_event = False
        return
    obj.set("event", request.event)
    obj.set("sawOriginal", request.original is not None)
