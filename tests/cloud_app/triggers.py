"""Object and find triggers used by tests/api/test_cloud_triggers.py (classes named Cloud*)."""

from __future__ import annotations

from bastion import cloud


@cloud.before_save("CloudScore")
def check_score(request: cloud.Request) -> None:
    obj = request.object
    if obj.get("score", 0) < 0:
        raise cloud.Error(142, "score must be >= 0")
    obj.set("checked", True)
    if obj.get("name") == "shout":
        obj["name"] = "SHOUT"
    if obj.get("dropMe") is not None:
        obj.unset("dropMe")
    if obj.get("bump"):
        obj.increment("bumps", 10)
    obj.set("sawOriginal", request.original.get("score") if request.original else None)
    obj.set("existed", obj.existed())
    obj.set("sawMaster", request.master)
    if request.context.get("tag"):
        obj.set("contextTag", request.context["tag"])
    if obj.get("crash"):
        raise RuntimeError("boom")


@cloud.after_save("CloudScore")
async def after_score(request: cloud.Request) -> None:
    if request.object.get("failAfter"):
        raise cloud.Error(141, "after save failure is only logged")


@cloud.before_delete("CloudScore")
def keep_protected(request: cloud.Request) -> None:
    if request.object.get("protected"):
        raise cloud.Error(cloud.Error.OPERATION_FORBIDDEN, "this score is protected")


@cloud.before_find("CloudScore")
def hide_secret(request: cloud.Request) -> None:
    query = request.query
    query.where["hidden"] = {"$ne": True}
    if query.limit is None or query.limit > 50:
        query.limit = 50


@cloud.after_find("CloudScore")
def decorate(request: cloud.Request) -> list[cloud.Object]:
    for obj in request.objects:
        obj.set("decorated", True)
    return request.objects


@cloud.before_save("CloudValidated", fields={"title": {"type": str, "required": True},
                                             "status": {"type": str, "default": "draft", "constant": True}})
def validated(request: cloud.Request) -> None:
    return None


@cloud.after_delete("CloudScore")
def after_delete(request: cloud.Request) -> None:
    # As Parse Server: an after_delete failure reaches the client, after the object is gone.
    if request.object.get("failAfterDelete"):
        raise cloud.Error(141, "after delete failure")
