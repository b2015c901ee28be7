"""The decorators cloud code registers its functions, jobs and triggers with (``cloud.define``,
``cloud.before_save``, ...). Each registers into the registry of the load under way (the loader's
context), so two servers in one process keep their cloud code apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.cloud._runtime.context import registry_being_loaded
from bastion.cloud._runtime.registry import (
    CONNECT_CLASS,
    EVERY_EVENT,
    FILE_CLASS,
    TRACK_EVENT,
    Handler,
    entry,
    function_entry,
)
from bastion.core.system_classes import PUSH_STATUS, SESSION, USER
from bastion.domain.auth_providers import AuthAdapter
from bastion.domain.auth_providers.base import PROVIDER_NAME


def class_name_of(target: Any) -> str:
    """A class name given as text or as a cloud object class (``cloud.User`` means ``_User``)."""
    class_name = getattr(target, "class_name", "") if isinstance(target, type) else ""
    if class_name:
        return class_name
    if isinstance(target, str) and target:
        return target
    raise TypeError("a trigger needs a class name or a cloud object class, such as cloud.User")


def _check_trigger_class(kind: str, class_name: str) -> None:
    """Parse Server's rules on which triggers a system class may have."""
    if kind == "beforeSave" and class_name == PUSH_STATUS:
        raise ValueError("Only afterSave is allowed on _PushStatus")
    # As Parse Server's validateClassNameForTriggers: _Session takes no object, find or live query
    # trigger, only after_logout. _User and _Installation take every class trigger; log-in triggers
    # are on _User and after_logout on _Session by construction (their decorators take no class).
    if class_name == SESSION and kind != "afterLogout":
        raise ValueError("Only the after_logout trigger is allowed for the _Session class.")


def define(name: str | Handler, **options: Any) -> Any:
    """``@cloud.define("hello")``: a function clients call with POST /functions/hello."""
    if callable(name) and not options:
        fn = name
        registry_being_loaded().functions[fn.__name__] = function_entry(fn.__name__, fn, {})
        return fn
    if not isinstance(name, str) or not name:
        raise TypeError("cloud.define needs a function name")

    def register(fn: Handler) -> Handler:
        registry_being_loaded().functions[name] = function_entry(name, fn, options)
        return fn
    return register


def auth_adapter(name: str) -> Callable[[Any], Any]:
    """``@cloud.auth_adapter("corp")`` on a ``cloud.AuthAdapter`` subclass (or ``cloud.auth_adapter("corp")(
    instance)``): a provider clients sign in with as ``authData.corp``. It is on with no options;
    an entry ``{"corp": {"module": "corp", …}}`` in the auth config gives it options."""
    if not isinstance(name, str) or not PROVIDER_NAME.fullmatch(name):
        raise TypeError("cloud.auth_adapter needs a provider name of letters, digits and _")

    def register(adapter: Any) -> Any:
        is_class = isinstance(adapter, type) and issubclass(adapter, AuthAdapter)
        if not is_class and not isinstance(adapter, AuthAdapter):
            raise TypeError(f"cloud.auth_adapter({name!r}) takes a cloud.AuthAdapter subclass or instance")
        registry_being_loaded().auth_adapters[name] = adapter
        return adapter
    return register


def job(name: str | Handler) -> Any:
    """``@cloud.job("cleanup")``: a job the master key starts with POST /jobs/cleanup."""
    if callable(name):
        fn = name
        registry_being_loaded().jobs[fn.__name__] = entry(fn.__name__, fn, {})
        return fn

    def register(fn: Handler) -> Handler:
        registry_being_loaded().jobs[name] = entry(name, fn, {})
        return fn
    return register


def _class_trigger(kind: str) -> Callable[..., Any]:
    def decorator(target: Any, **options: Any) -> Callable[[Handler], Handler]:
        class_name = class_name_of(target)
        _check_trigger_class(kind, class_name)

        def register(fn: Handler) -> Handler:
            registry_being_loaded().triggers[(kind, class_name)] = entry(f"{kind} {class_name}", fn, options)
            return fn
        return register
    decorator.__name__ = kind
    decorator.__doc__ = f"``@cloud.<{kind}>(\"ClassName\")``: Parse's {kind} trigger for that class."
    return decorator


def _fixed_trigger(kind: str, class_name: str) -> Callable[..., Any]:
    """A trigger with no class argument (login, logout, files, connect); usable bare or with options."""
    def decorator(fn: Handler | None = None, **options: Any) -> Any:
        def register(handler: Handler) -> Handler:
            registry_being_loaded().triggers[(kind, class_name)] = entry(f"{kind} {class_name}", handler, options)
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
before_login = _fixed_trigger("beforeLogin", USER)
after_login = _fixed_trigger("afterLogin", USER)
after_logout = _fixed_trigger("afterLogout", SESSION)
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
        every = f"{TRACK_EVENT} {EVERY_EVENT}"
        registry_being_loaded().triggers[(TRACK_EVENT, EVERY_EVENT)] = entry(every, name, options)
        return name
    if name is not None and (not isinstance(name, str) or not name or name == EVERY_EVENT):
        raise TypeError("cloud.track_event needs an event name, or none for every event")
    event = name or EVERY_EVENT

    def register(fn: Handler) -> Handler:
        registry_being_loaded().triggers[(TRACK_EVENT, event)] = entry(f"{TRACK_EVENT} {event}", fn, options)
        return fn
    return register
