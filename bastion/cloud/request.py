"""The ``request`` a cloud function, trigger or job receives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bastion.cloud.objects import Object, User
    from bastion.cloud.query import Query

log = logging.getLogger("bastion.cloud")


class Request:
    """Who called and with what. Every kind of handler gets the same type; fields that do not apply
    to it are None (``object`` in a function, ``params`` in a trigger, …).

    - ``params``: a function's or job's parameters (decoded: dates, pointers as objects)
    - ``object`` / ``original``: the object of a trigger, and before a change its stored state
    - ``query`` (before_find), ``objects`` (after_find), ``is_get`` and ``count`` of a find
    - ``user``, ``master``, ``installation_id``, ``session_token``, ``headers``, ``ip``, ``context``
    - ``log``: a logger; ``message(text)`` in a job updates its ``_JobStatus``
    """

    send_event: bool  # afterEvent's only: False drops the event (set through ``extra``)

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


def _no_message(text: str) -> None:
    log.info("%s", text)
