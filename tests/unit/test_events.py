"""Hook[T]: binding, unbinding, synchronous and asynchronous emission, and failing handlers."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from bastion.core.events import Hook, ObjectWritten, SchemaChanged


def test_emit_calls_handlers_in_the_order_bound() -> None:
    hook: Hook[ObjectWritten] = Hook("object written")
    seen: list[tuple[str, str]] = []
    hook.bind(lambda event: seen.append(("a", event.class_name)))
    hook.bind(lambda event: seen.append(("b", event.class_name)))
    hook.emit(ObjectWritten("Post"))
    assert seen == [("a", "Post"), ("b", "Post")]


def test_a_hook_without_handlers_is_falsy() -> None:
    hook: Hook[ObjectWritten] = Hook("object written")
    assert not hook and len(hook) == 0
    unbind = hook.bind(lambda event: None)
    assert hook and len(hook) == 1
    unbind()
    assert not hook
    hook.emit(ObjectWritten("Post"))  # nobody listens: nothing happens


def test_unbind_by_handler_and_by_the_returned_callable() -> None:
    hook: Hook[ObjectWritten] = Hook("object written")
    seen: list[str] = []

    def first(event: ObjectWritten) -> None:
        seen.append("first")

    def second(event: ObjectWritten) -> None:
        seen.append("second")

    hook.bind(first)
    unbind_second = hook.bind(second)
    hook.unbind(first)
    hook.emit(ObjectWritten("Post"))
    assert seen == ["second"]
    unbind_second()
    unbind_second()  # twice, or a handler never bound: ignored
    hook.unbind(first)
    hook.emit(ObjectWritten("Post"))
    assert seen == ["second"]


def test_a_handler_bound_twice_runs_twice_until_unbound_once_each() -> None:
    hook: Hook[ObjectWritten] = Hook("object written")
    seen: list[str] = []

    def handler(event: ObjectWritten) -> None:
        seen.append(event.class_name)

    hook.bind(handler)
    hook.bind(handler)
    hook.emit(ObjectWritten("A"))
    hook.unbind(handler)
    hook.emit(ObjectWritten("B"))
    assert seen == ["A", "A", "B"]


def test_unbinding_during_emit_does_not_skip_the_others() -> None:
    hook: Hook[ObjectWritten] = Hook("object written")
    seen: list[str] = []

    def once(event: ObjectWritten) -> None:
        seen.append("once")
        hook.unbind(once)

    hook.bind(once)
    hook.bind(lambda event: seen.append("always"))
    hook.emit(ObjectWritten("A"))
    hook.emit(ObjectWritten("B"))
    assert seen == ["once", "always", "always"]


def test_a_failing_handler_propagates_by_default_and_stops_the_emission() -> None:
    hook: Hook[ObjectWritten] = Hook("object written")
    seen: list[str] = []

    def broken(event: ObjectWritten) -> None:
        raise RuntimeError("handler bug")

    hook.bind(broken)
    hook.bind(lambda event: seen.append("after"))
    with pytest.raises(RuntimeError, match="handler bug"):
        hook.emit(ObjectWritten("Post"))
    assert seen == []


def test_a_contained_hook_logs_a_failing_handler_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    hook: Hook[ObjectWritten] = Hook("change committed", contain=True)
    seen: list[str] = []

    def broken(event: ObjectWritten) -> None:
        raise RuntimeError("handler bug")

    hook.bind(broken)
    hook.bind(lambda event: seen.append("after"))
    with caplog.at_level(logging.ERROR, logger="bastion.core.events"):
        hook.emit(ObjectWritten("Post"))
    assert seen == ["after"]
    assert "change committed handler failed" in caplog.text and "handler bug" in caplog.text


def test_emit_refuses_an_async_handler() -> None:
    hook: Hook[ObjectWritten] = Hook("object written", contain=True)

    async def handler(event: ObjectWritten) -> None:
        return None

    hook.bind(handler)
    with pytest.raises(TypeError, match="emit_async"):
        hook.emit(ObjectWritten("Post"))


async def test_emit_async_awaits_async_handlers_and_calls_sync_ones_in_order() -> None:
    hook: Hook[SchemaChanged] = Hook("schema changed")
    seen: list[str] = []

    async def later(event: SchemaChanged) -> None:
        seen.append(f"async {event.class_name}")

    hook.bind(lambda event: seen.append(f"sync {event.class_name}"))
    hook.bind(later)
    await hook.emit_async(SchemaChanged("Post"))
    assert seen == ["sync Post", "async Post"]


async def test_emit_async_propagates_or_contains_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(event: SchemaChanged) -> None:
        raise RuntimeError("async bug")

    seen: list[str] = []
    strict: Hook[SchemaChanged] = Hook("schema changed")
    strict.bind(broken)
    strict.bind(lambda event: seen.append("strict after"))
    with pytest.raises(RuntimeError, match="async bug"):
        await strict.emit_async(SchemaChanged("Post"))
    contained: Hook[SchemaChanged] = Hook("pubsub reconnected", contain=True)
    contained.bind(broken)
    contained.bind(lambda event: seen.append("contained after"))
    with caplog.at_level(logging.ERROR, logger="bastion.core.events"):
        await contained.emit_async(SchemaChanged("Post"))
    assert seen == ["contained after"]
    assert "pubsub reconnected handler failed" in caplog.text


def test_events_are_frozen() -> None:
    event = ObjectWritten("Post")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.class_name = "Other"  # type: ignore[misc]
