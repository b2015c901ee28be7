"""The ``request`` a cloud function, trigger or job receives: one class per kind of handler.

Every kind derives from ``Request``, which carries the fields common to all (``user``, ``master``,
``installation_id``, ``session_token``, ``headers``, ``ip``, ``context``, ``log``) and, as before
the kinds had classes of their own, every other field too (None where it does not apply), so code
that reads ``request.object`` in a function, or serves several kinds with one handler, keeps
working. The subclasses name what their kind fills, for readers and type checkers:

    @cloud.before_save("GameScore")
    def check(request: cloud.ObjectTriggerRequest) -> None:
        ...
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.cloud.files import File
    from bastion.cloud.objects import Object
    from bastion.cloud.query import Query
    from bastion.cloud.system_classes import User

log = logging.getLogger("bastion.cloud")


class Request:
    """Who called and with what; the base of every kind of request.

    - ``params``: a function's or job's parameters (decoded: dates, pointers as objects)
    - ``object`` / ``original``: the object of a trigger, and before a change its stored state
    - ``query`` (before_find), ``objects`` (after_find), ``is_get`` and ``count`` of a find
    - ``user``, ``master``, ``installation_id``, ``session_token``, ``headers``, ``ip``, ``context``
    - ``log``: a logger; ``message(text)`` in a job updates its ``_JobStatus``
    """

    def __init__(self, *, trigger_name: str | None = None, function_name: str | None = None,
                 job_name: str | None = None, params: dict[str, Any] | None = None, object: Object | None = None,  # noqa: A002
                 original: Object | None = None, query: Query | None = None, objects: list[Object] | None = None,
                 user: User | None = None, master: bool = False, installation_id: str | None = None,
                 session_token: str | None = None, headers: dict[str, str] | None = None, ip: str | None = None,
                 context: dict[str, Any] | None = None, is_get: bool = False, count: bool = False,
                 **extra: Any) -> None:
        self.trigger_name = trigger_name
        self.function_name = function_name
        self.job_name = job_name
        self.params = params if params is not None else {}
        self.object = object
        self.original = original
        self.query = query
        self.objects = objects
        self.user = user
        self.master = master
        self.installation_id = installation_id
        self.session_token = session_token
        self.headers = headers or {}
        self.ip = ip
        self.context = context if context is not None else {}
        self.is_get = is_get
        self.count = count
        self.log = log
        self.job_id: str | None = None
        self.message: Callable[[str], Any] = _no_message
        for key, value in extra.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        what = self.trigger_name or self.function_name or self.job_name
        return f"<cloud request {what}>"


class FunctionRequest(Request):
    """``@cloud.define``: ``function_name`` and its ``params``."""

    function_name: str


class JobRequest(Request):
    """``@cloud.job``: ``job_name``, ``params``, ``job_id`` (its ``_JobStatus``), ``message(text)``,
    and ``scheduled_at`` (the moment a scheduled run was due; None when started by hand)."""

    job_name: str
    scheduled_at: datetime | None


class ObjectTriggerRequest(Request):
    """before_save, after_save, before_delete, after_delete: ``object``, and before a change of a
    stored object its stored state as ``original``."""

    trigger_name: str
    object: Object


class FindTriggerRequest(Request):
    """before_find (``query``, ``count``) and after_find (``objects``); ``is_get`` for a get by id."""

    trigger_name: str


class AuthTriggerRequest(Request):
    """before_login, after_login (``object`` is the user; after_login's ``user`` and
    ``session_token`` are the new session's) and after_logout (``object`` is the session)."""

    trigger_name: str
    object: Object


class FileTriggerRequest(Request):
    """The file triggers: ``file``, ``file_size`` (bytes, when known); a before_save's
    ``content_length``; an after_find's ``force_download`` and ``response_headers``, which it may change."""

    trigger_name: str
    file: File
    file_size: int | None
    content_length: int | None
    force_download: bool
    response_headers: dict[str, str]


class LiveQueryRequest(Request):
    """before_connect (``event`` "connect", ``use_master_key``, ``clients``, ``subscriptions``),
    before_subscribe (``query``, whose ``watch`` holds the watched fields; ``request_id``) and
    after_event (``event``, ``object``, ``original``, ``clients``, ``subscriptions``; setting
    ``send_event = False`` drops the event)."""

    trigger_name: str
    event: str
    use_master_key: bool
    clients: int
    subscriptions: int
    request_id: Any
    send_event: bool


class EventRequest(Request):
    """``@cloud.track_event``: ``event_name``, ``dimensions``, ``at`` (the event's time, when it
    gave one) and ``params`` (the whole body)."""

    trigger_name: str
    event_name: str
    dimensions: dict[str, Any]
    at: datetime | None


def _no_message(text: str) -> None:
    log.info("%s", text)
