"""What cloud code registers: functions, jobs and triggers (the decorators are cloud/decorators.py).

Decorators write into the registry being loaded (``context.registry_being_loaded()``): the loader
gives every load a fresh one, so a reload in --dev swaps the whole set at once and a broken reload
changes nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bastion.cloud._runtime.returns import returns_value
from bastion.cloud._runtime.validators import Validator

if TYPE_CHECKING:
    from bastion.cloud.objects import Object

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
    # A function without ``return <value>`` answers ``{}``, as Parse's ``undefined`` (cloud/_runtime/returns.py).
    returns_value: bool = True


@dataclass
class CloudRegistry:
    functions: dict[str, Registered] = field(default_factory=dict)
    jobs: dict[str, Registered] = field(default_factory=dict)
    triggers: dict[tuple[str, str], Registered] = field(default_factory=dict)
    source: str | None = None  # the file or package it was loaded from
    # cloud.Object subclasses the code defines (class_name = "Thing"): what its objects of that class are
    object_classes: dict[str, type[Object]] = field(default_factory=dict)
    # auth adapters by name (``cloud.auth_adapter``): AuthAdapter classes or instances
    auth_adapters: dict[str, Any] = field(default_factory=dict)

    def trigger(self, kind: str, class_name: str) -> Registered | None:
        return self.triggers.get((kind, class_name))

    def has_trigger(self, kind: str, class_name: str) -> bool:
        return (kind, class_name) in self.triggers

    def summary(self) -> str:
        return (f"{len(self.functions)} functions, {len(self.jobs)} jobs, "
                f"{len(self.triggers)} triggers")


def entry(name: str, fn: Handler, options: dict[str, Any]) -> Registered:
    if not callable(fn):
        raise TypeError(f"{name}: cloud code handlers must be functions")
    return Registered(name, fn, inspect.iscoroutinefunction(fn), Validator.from_options(options))


def function_entry(name: str, fn: Handler, options: dict[str, Any]) -> Registered:
    """A cloud function's entry: also whether its code returns a value."""
    registered = entry(name, fn, options)
    registered.returns_value = returns_value(fn)
    return registered
