"""What cloud code registers: functions, jobs and triggers, and the decorators that register them.

Decorators write into the registry being loaded (``loading``): the loader gives every load a fresh
one, so a reload in --dev swaps the whole set at once and a broken reload changes nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bastion.cloud.returns import returns_value
from bastion.cloud.validators import Validator

Handler = Callable[..., Any]

# Parse Server's trigger names, keyed by the name of the decorator that registers them.
CLASS_TRIGGERS = {
    "before_save": "beforeSave", "after_save": "afterSave", "before_delete": "beforeDelete",
    "after_delete": "afterDelete", "before_find": "beforeFind", "after_find": "afterFind",
    "before_subscribe": "beforeSubscribe", "after_event": "afterEvent",
}
FILE_CLASS = "@File"  # as Parse Server names the "class" of file triggers
CONNECT_CLASS = "@Connect"
TRACK_EVENT = "trackEvent"  # analytics events (POST /events/<name>): keyed by event name, or EVERY_EVENT
EVERY_EVENT = "*"


@dataclass(slots=True)
class Registered:
    name: str  # the function or job name, or "<trigger> <class>"
    fn: Handler
    is_async: bool
    validator: Validator | None = None
    # A function without ``return <value>`` answers ``{}``, as Parse's ``undefined`` (cloud/returns.py).
    returns_value: bool = True


@dataclass
class CloudRegistry:
    functions: dict[str, Registered] = field(default_factory=dict)
    jobs: dict[str, Registered] = field(default_factory=dict)
    triggers: dict[tuple[str, str], Registered] = field(default_factory=dict)
    source: str | None = None  # the file or package it was loaded from

    def trigger(self, kind: str, class_name: str) -> Registered | None:
        return self.triggers.get((kind, class_name))

    def has_trigger(self, kind: str, class_name: str) -> bool:
        return (kind, class_name) in self.triggers

    def summary(self) -> str:
        return (f"{len(self.functions)} functions, {len(self.jobs)} jobs, "
                f"{len(self.triggers)} triggers")


loading = CloudRegistry()  # decorators register here; the loader swaps in a fresh one per load


@contextmanager
def collecting(registry: CloudRegistry) -> Iterator[CloudRegistry]:
    """Decorators used inside the block register into ``registry``."""
    global loading
    previous, loading = loading, registry
    try:
        yield registry
    finally:
        loading = previous


def _entry(name: str, fn: Handler, options: dict[str, Any]) -> Registered:
    if not callable(fn):
        raise TypeError(f"{name}: cloud code handlers must be functions")
    return Registered(name, fn, inspect.iscoroutinefunction(fn), Validator.from_options(options))


def _function_entry(name: str, fn: Handler, options: dict[str, Any]) -> Registered:
    entry = _entry(name, fn, options)
    entry.returns_value = returns_value(fn)
    return entry


def class_name_of(target: Any) -> str:
    """A class name given as text or as a cloud object class (``cloud.User`` means ``_User``)."""
    if isinstance(target, type) and getattr(target, "class_name", ""):
        return target.class_name
    if isinstance(target, str) and target:
        return target
    raise TypeError("a trigger needs a class name or a cloud object class, such as cloud.User")


def _check_trigger_class(kind: str, class_name: str) -> None:
    """Parse Server's rules on which triggers a system class may have."""
    if kind == "beforeSave" and class_name == "_PushStatus":
        raise ValueError("Only afterSave is allowed on _PushStatus")
    # As Parse Server's validateClassNameForTriggers: _Session takes no object, find or live query
    # trigger, only after_logout. _User and _Installation take every class trigger; log-in triggers
    # are on _User and after_logout on _Session by construction (their decorators take no class).
    if class_name == "_Session" and kind != "afterLogout":
        raise ValueError("Only the after_logout trigger is allowed for the _Session class.")


def define(name: str | Handler, **options: Any) -> Any:
    """``@cloud.define("hello")``: a function clients call with POST /functions/hello."""
    if callable(name) and not options:
        fn = name
        loading.functions[fn.__name__] = _function_entry(fn.__name__, fn, {})
        return fn
    if not isinstance(name, str) or not name:
        raise TypeError("cloud.define needs a function name")

    def register(fn: Handler) -> Handler:
        loading.functions[name] = _function_entry(name, fn, options)
        return fn
    return register


def job(name: str | Handler) -> Any:
    """``@cloud.job("cleanup")``: a job the master key starts with POST /jobs/cleanup."""
    if callable(name):
        fn = name
        loading.jobs[fn.__name__] = _entry(fn.__name__, fn, {})
        return fn

    def register(fn: Handler) -> Handler:
        loading.jobs[name] = _entry(name, fn, {})
        return fn
    return register


def _class_trigger(kind: str) -> Callable[..., Any]:
    def decorator(target: Any, **options: Any) -> Callable[[Handler], Handler]:
        class_name = class_name_of(target)
        _check_trigger_class(kind, class_name)

        def register(fn: Handler) -> Handler:
            loading.triggers[(kind, class_name)] = _entry(f"{kind} {class_name}", fn, options)
            return fn
        return register
    decorator.__name__ = kind
    decorator.__doc__ = f"``@cloud.<{kind}>(\"ClassName\")``: Parse's {kind} trigger for that class."
    return decorator


def _fixed_trigger(kind: str, class_name: str) -> Callable[..., Any]:
    """A trigger with no class argument (login, logout, files, connect); usable bare or with options."""
    def decorator(fn: Handler | None = None, **options: Any) -> Any:
        def register(handler: Handler) -> Handler:
            loading.triggers[(kind, class_name)] = _entry(f"{kind} {class_name}", handler, options)
            return handler
        return register(fn) if fn is not None else register
    decorator.__name__ = kind
    return decorator


before_save = _class_trigger("beforeSave")
after_save = _class_trigger("afterSave")
before_delete = _class_trigger("beforeDelete")
after_delete = _class_trigger("afterDelete")
before_find = _class_trigger("beforeFind")
after_find = _class_trigger("afterFind")
before_subscribe = _class_trigger("beforeSubscribe")
after_event = _class_trigger("afterEvent")
before_login = _fixed_trigger("beforeLogin", "_User")
after_login = _fixed_trigger("afterLogin", "_User")
after_logout = _fixed_trigger("afterLogout", "_Session")
before_save_file = _fixed_trigger("beforeSave", FILE_CLASS)
after_save_file = _fixed_trigger("afterSave", FILE_CLASS)
before_delete_file = _fixed_trigger("beforeDelete", FILE_CLASS)
after_delete_file = _fixed_trigger("afterDelete", FILE_CLASS)
before_find_file = _fixed_trigger("beforeFind", FILE_CLASS)  # downloads (GET /files/…)
after_find_file = _fixed_trigger("afterFind", FILE_CLASS)
before_connect = _fixed_trigger("beforeConnect", CONNECT_CLASS)


def track_event(name: str | Handler | None = None, **options: Any) -> Any:
    """``@cloud.track_event("Purchase")``: receives the analytics event a client sends with
    ``POST /events/Purchase`` (``Parse.Analytics.track``), to store it as the app wishes. Bare
    (``@cloud.track_event``) it receives every event that has no handler of its own, AppOpened
    included. The request has ``event_name``, ``dimensions``, ``at``, ``params`` (the whole body),
    ``user`` and ``installation_id``; the client is answered ``{}`` whatever the handler does."""
    if callable(name):
        loading.triggers[(TRACK_EVENT, EVERY_EVENT)] = _entry(f"{TRACK_EVENT} {EVERY_EVENT}", name, options)
        return name
    if name is not None and (not isinstance(name, str) or not name or name == EVERY_EVENT):
        raise TypeError("cloud.track_event needs an event name, or none for every event")
    event = name or EVERY_EVENT

    def register(fn: Handler) -> Handler:
        loading.triggers[(TRACK_EVENT, event)] = _entry(f"{TRACK_EVENT} {event}", fn, options)
        return fn
    return register
