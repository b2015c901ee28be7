"""The log lines of cloud code runs, in Parse Server's words (FunctionsRouter, triggers.js), so that
Parse Dashboard's Logs page reads as it does with Parse Server:

    Ran cloud function hello for user Ab3dE with:
      Input: {"name":"x"}
      Result: "Hello x"
    beforeSave triggered for GameScore for user undefined:
      Input: {"score":3}
      Result: {"object":{"score":3}}

Each line carries Parse's fields (functionName, params, className, triggerType, user, error) as the
``parse`` attribute of its record, which ``domain/script_log.py`` keeps beside the message. Inputs and
results have their secrets masked and are cut at 1000 characters, as Parse Server's
truncateLogMessage. Nothing is built unless INFO (or, for failures, ERROR) is logged at all.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from bastion.core.redaction import redact_value

if TYPE_CHECKING:
    from bastion.cloud.request import Request
    from bastion.errors import ParseError

log = logging.getLogger("bastion.cloud")

TRUNCATE = 1000  # Parse Server's LOG_STRING_TRUNCATE_LENGTH
TRUNCATED = "... (truncated)"
# Triggers Parse Server logs; it does not log beforeFind nor LiveQuery's (one afterEvent per event and
# subscriber would flood the log).
LOGGED_TRIGGERS = frozenset({"beforeSave", "afterSave", "beforeDelete", "afterDelete", "afterFind",
                             "beforeLogin", "afterLogin", "afterLogout"})
_CLASS_NAMES = {"@File": "Parse.File"}  # as Parse Server names the "class" of file triggers


def _json(value: Any) -> str:
    if value is None:
        return "undefined"  # what JSON.stringify gives for nothing, as Parse Server's lines read
    try:
        text = orjson.dumps(redact_value(value), default=str).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= TRUNCATE else text[:TRUNCATE] + TRUNCATED


def _user(request: Request) -> str | None:
    user = request.user
    return user.id if user is not None and getattr(user, "id", None) else None


def _error(exc: ParseError) -> dict[str, Any]:
    return {"message": exc.message, "code": int(exc.code)}


# --- functions --------------------------------------------------------------------------------------

def function_ran(name: str, request: Request, params: Any, result: Any) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    user = _user(request)
    log.info("Ran cloud function %s for user %s with:\n  Input: %s\n  Result: %s", name, user or "undefined",
             _json(params), _json(result),
             extra={"parse": _fields(functionName=name, params=redact_value(params), user=user)})


def function_failed(name: str, request: Request, params: Any, exc: ParseError) -> None:
    if not log.isEnabledFor(logging.ERROR):
        return
    user = _user(request)
    log.error("Failed running cloud function %s for user %s with:\n  Input: %s\n  Error: %s", name,
              user or "undefined", _json(params), _json(_error(exc)),
              extra={"parse": _fields(functionName=name, error={"code": int(exc.code), "message": exc.message},
                                      params=redact_value(params), user=user)})


# --- triggers ---------------------------------------------------------------------------------------

def runs_logged() -> bool:
    """Whether successful runs are logged (INFO); failures are logged at ERROR."""
    return log.isEnabledFor(logging.INFO)


def trigger_input(request: Request) -> Any:
    """What the trigger was given, as Parse Server logs it (taken before the handler runs)."""
    file = getattr(request, "file", None)
    if file is not None and hasattr(file, "to_json"):
        return {"file": file.to_json(), "fileSize": getattr(request, "file_size", None)}
    if request.objects is not None:
        return [f"{obj.id}:{obj.class_name}" for obj in request.objects]
    if request.object is not None:
        return request.object.to_json()
    return None


def trigger_ran(kind: str, class_name: str, request: Request, given: Any, result: Any) -> None:
    user = _user(request)
    name = _CLASS_NAMES.get(class_name, class_name)
    fields = _fields(className=name, triggerType=kind, user=user)
    if kind.startswith("before"):
        if kind == "beforeSave" and request.object is not None and result is None:
            result = {"object": request.object.to_json()}
        log.info("%s triggered for %s for user %s:\n  Input: %s\n  Result: %s", kind, name, user or "undefined",
                 _json(given), _json(_plain(result)), extra={"parse": fields})
    else:
        log.info("%s triggered for %s for user %s:\n  Input: %s", kind, name, user or "undefined", _json(given),
                 extra={"parse": fields})


def trigger_failed(kind: str, class_name: str, request: Request, given: Any, exc: ParseError) -> None:
    if not log.isEnabledFor(logging.ERROR):
        return
    user = _user(request)
    name = _CLASS_NAMES.get(class_name, class_name)
    log.error("%s failed for %s for user %s:\n  Input: %s\n  Error: %s", kind, name, user or "undefined",
              _json(given), _json(_error(exc)),
              extra={"parse": _fields(className=name, triggerType=kind,
                                      error={"code": int(exc.code), "message": exc.message}, user=user)})


def _plain(value: Any) -> Any:
    """A handler's return value as JSON can show it (cloud objects by their REST JSON)."""
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _fields(**fields: Any) -> dict[str, Any]:
    """Parse's fields, without those that are undefined (JSON leaves them out)."""
    return {key: value for key, value in fields.items() if value is not None}
