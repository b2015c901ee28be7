"""Which registry cloud code's decorators fill, and which server its data API calls: context
variables, not module globals, so two Bastion apps in one process keep their code and data apart.

- the registry being loaded: the loader sets it around importing the cloud code (``collecting``);
  outside a load decorators fill a throwaway registry, as importing cloud code in a test does;
- the running runtime: the app sets it for every request it serves (``running``), the runtime for
  every handler it invokes, the job runner for every job; tasks and job threads inherit it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from bastion.cloud._runtime.registry import CloudRegistry

if TYPE_CHECKING:
    from bastion.cloud._runtime.runtime import CloudRuntime
    from bastion.cloud.objects import Object

_loading: ContextVar[CloudRegistry | None] = ContextVar("bastion_cloud_loading", default=None)
_outside_a_load = CloudRegistry()  # what decorators fill when no loader is running
_runtime: ContextVar[CloudRuntime | None] = ContextVar("bastion_cloud_runtime", default=None)


def registry_being_loaded() -> CloudRegistry:
    """The registry decorators register into: the load under way's."""
    registry = _loading.get()
    return registry if registry is not None else _outside_a_load


def object_classes_being_loaded() -> dict[str, type[Object]] | None:
    """Where a ``cloud.Object`` subclass defined now registers: the load under way's registry
    (None outside a load: the built-in classes, and classes a test defines, are process-wide)."""
    registry = _loading.get()
    return registry.object_classes if registry is not None else None


def running_object_classes() -> dict[str, type[Object]]:
    """The ``cloud.Object`` subclasses of the running server's cloud code."""
    runtime = _runtime.get()
    return runtime.code_registry.object_classes if runtime is not None else {}


@contextmanager
def collecting(registry: CloudRegistry) -> Iterator[CloudRegistry]:
    """Decorators used inside the block register into ``registry``."""
    token = _loading.set(registry)
    try:
        yield registry
    finally:
        _loading.reset(token)


def current_runtime() -> CloudRuntime:
    """The runtime of the server whose request, handler or job is running."""
    runtime = _runtime.get()
    if runtime is None:
        raise RuntimeError(
            "the cloud data API (cloud.Object.save, cloud.Query.find, ...) runs inside a Bastion server: "
            "call it from a cloud function, trigger or job, not while the cloud code is being imported")
    return runtime


def enter_running(runtime: CloudRuntime | None) -> Token[CloudRuntime | None]:
    """``running`` without a context manager, for the per-request path (``leave_running`` after)."""
    return _runtime.set(runtime)


def leave_running(token: Token[CloudRuntime | None]) -> None:
    _runtime.reset(token)


@contextmanager
def running(runtime: CloudRuntime | None) -> Iterator[None]:
    """Inside the block the data API acts through ``runtime`` (None: through no server)."""
    token = _runtime.set(runtime)
    try:
        yield
    finally:
        _runtime.reset(token)
