"""Cloud functions used by tests/api/test_cloud_functions.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bastion import cloud


@cloud.define("hello")
def hello(request: cloud.Request) -> str:
    return "Hello " + request.params.get("name", "world")


@cloud.define("asyncHello")
async def async_hello(request: cloud.Request) -> dict:
    await asyncio.sleep(0)
    return {"greeting": "hi", "n": request.params.get("n")}


@cloud.define("whoAmI")
def who_am_i(request: cloud.Request) -> dict:
    return {
        "user": request.user.id if request.user else None,
        "username": request.user.get("username") if request.user else None,
        "master": request.master,
        "installationId": request.installation_id,
        "context": request.context,
        "ip": request.ip,
        "header": request.headers.get("x-custom"),
    }


@cloud.define("echoTypes")
def echo_types(request: cloud.Request) -> dict:
    when = request.params.get("when")
    pointer = request.params.get("pointer")
    return {
        "whenIsDatetime": isinstance(when, datetime),
        "when": when,
        "pointerClass": pointer.class_name if isinstance(pointer, cloud.Object) else None,
        "pointerId": pointer.id if isinstance(pointer, cloud.Object) else None,
        "object": cloud.Object.from_json("CloudThing", {"objectId": "thing1", "a": 1}),
        "dirty": cloud.Object.from_json("CloudThing", {"objectId": "thing2", "a": 1}).set("a", 2),
        "now": datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "bytes": b"hi",
    }


@cloud.define("fail")
def fail(request: cloud.Request) -> None:
    raise cloud.Error(cloud.Error.VALIDATION_ERROR if request.params.get("validation") else 141,
                      "custom failure")


@cloud.define("crash")
def crash(request: cloud.Request) -> None:
    raise RuntimeError("secret internals")


@cloud.define("unserializable")
def unserializable(request: cloud.Request) -> object:
    return object()


@cloud.define("nothing")
def nothing(request: cloud.Request) -> None:
    return None  # explicit: {"result": null}, as a JS function returning null


@cloud.define("noReturn")
def no_return(request: cloud.Request) -> None:
    request.log.info("no return statement: {} as a JS function returning undefined")


@cloud.define("bareReturn")
async def bare_return(request: cloud.Request) -> None:
    def helper() -> int:
        return 1  # a nested function's return is not this function's
    if helper():
        return
    await asyncio.sleep(0)


@cloud.define("maybeNone")
def maybe_none(request: cloud.Request) -> int | None:
    if request.params.get("give"):
        return 7
    return None


cloud.define("lambdaNone")(lambda request: None)


@cloud.define("plainError")
def plain_error(request: cloud.Request) -> None:
    raise ValueError("plain message")


@cloud.define("emptyError")
def empty_error(request: cloud.Request) -> None:
    raise RuntimeError()


@cloud.define("typeError")
def type_error(request: cloud.Request) -> None:
    None.missing  # noqa: B018 - a bug, as `null.x` in JavaScript


@cloud.define("plainValidatorError", validator=lambda request: _plain_refusal(request))
def plain_validator_error(request: cloud.Request) -> str:
    return "never"


def _plain_refusal(request: cloud.Request) -> None:
    raise ValueError("validator says no" if request.params.get("say") else "")


@cloud.define("needsUser", require_user=True)
def needs_user(request: cloud.Request) -> str:
    return request.user.id


@cloud.define("needsMaster", require_master=True)
def needs_master(request: cloud.Request) -> str:
    return "ok"


@cloud.define("typed", fields={
    "n": {"type": int, "required": True},
    "size": {"type": str, "options": ["S", "M", "L"]},
    "flag": {"type": bool, "default": True},
    "even": {"type": int, "options": lambda value: value % 2 == 0, "error": "n must be even"},
})
def typed(request: cloud.Request) -> dict:
    return dict(request.params)


@cloud.define("listed", fields=["a", "b"])
def listed(request: cloud.Request) -> str:
    return "ok"


@cloud.define("adminsOnly", require_any_user_roles=["CloudAdmins"])
def admins_only(request: cloud.Request) -> str:
    return "welcome"


@cloud.define("limited", rate_limit={"requests": 2, "window": 60})
def limited(request: cloud.Request) -> str:
    return "ok"


@cloud.define("customValidator", validator=lambda request: _refuse_odd(request))
def custom_validator(request: cloud.Request) -> str:
    return "even"


def _refuse_odd(request: cloud.Request) -> None:
    if request.params.get("n", 0) % 2:
        raise cloud.Error(cloud.Error.VALIDATION_ERROR, "odd numbers are refused")


@cloud.define("recordCall")
async def record_call(request: cloud.Request) -> str:
    """A side effect to count (tests/api/test_idempotency.py): one CloudCall object per run."""
    await cloud.Object("CloudCall").set("marker", request.params.get("marker")).save(use_master_key=True)
    return "recorded"
