"""cloud/returns.py: which cloud functions answer ``{}`` (no ``return <value>``: Parse's undefined)."""

from __future__ import annotations

import functools
from typing import Any

from bastion.cloud._runtime.returns import returns_value


def no_return(request: Any) -> None:
    request.log.info("side effect only")


def bare_return(request: Any) -> None:
    if request:
        return
    print("unreachable")


def explicit_none(request: Any) -> None:
    return None


def some_paths_return(request: Any) -> int | None:
    if request:
        return 1
    return None


def nested_returns_do_not_count(request: Any) -> None:
    def inner() -> int:
        return 1

    class Helper:
        def method(self) -> int:
            return 2

    request.log.info(inner(), Helper, lambda: 3)


async def async_no_return(request: Any) -> None:
    await request.wait()


async def async_with_value(request: Any) -> str:
    await request.wait()
    return "done"


def decorated(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(request: Any) -> Any:
        return fn(request)
    return wrapper


class Holder:
    @staticmethod
    def indented(request: Any) -> None:
        request.log.info("defined inside a class")


def test_functions_without_a_value_return_answer_nothing() -> None:
    assert returns_value(no_return) is False
    assert returns_value(bare_return) is False
    assert returns_value(nested_returns_do_not_count) is False
    assert returns_value(async_no_return) is False
    assert returns_value(Holder.indented) is False
    assert returns_value(decorated(no_return)) is False  # read through functools.wraps


def test_any_value_return_gives_a_result_null_included() -> None:
    assert returns_value(explicit_none) is True
    assert returns_value(some_paths_return) is True
    assert returns_value(async_with_value) is True
    assert returns_value(decorated(explicit_none)) is True


def test_what_cannot_be_read_keeps_answering_with_a_result() -> None:
    assert returns_value(lambda request: None) is True  # an expression: always its value
    assert returns_value(print) is True  # a builtin: no source
    namespace: dict[str, Any] = {}
    exec("def made(request):\n    pass\n", namespace)  # noqa: S102 - code without a source file
    assert returns_value(namespace["made"]) is True
    assert returns_value(functools.partial(no_return)) is True  # a callable object
