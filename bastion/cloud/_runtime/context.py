"""Which registry cloud code's decorators fill, and which server its data API calls: context
variables, not module globals, so two Bastion apps in one process keep their code and data apart.

- the registry being loaded: the loader sets it around importing the cloud code (``collecting``);
  outside a load decorators fill a throwaway registry, as importing cloud code in a test does;
- the running server (its cloud runtime and the pipelines the data API calls): the app sets it for
  every ASGI call it serves (requests, sockets, and the lifespan, so the tasks started at start-up
  inherit it), the job runner for every job; tasks and job threads inherit it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from bastion.cloud._runtime.registry import CloudRegistry

if TYPE_CHECKING:
    from bastion.cloud._runtime.data import CloudServer
    from bastion.cloud.objects import Object

_loading: ContextVar[CloudRegistry | None] = ContextVar("bastion_cloud_loading", default=None)
_outside_a_load = CloudRegistry()  # what decorators fill when no loader is running
_server: ContextVar[CloudServer | None] = ContextVar("bastion_cloud_server", default=None)


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
    server = _server.get()
    return server.runtime.code_registry.object_classes if server is not None else {}


@contextmanager
def collecting(registry: CloudRegistry) -> Iterator[CloudRegistry]:
    """Decorators used inside the block register into ``registry``."""
    token = _loading.set(registry)
    try:
        yield registry
    finally:
        _loading.reset(token)


def current_server() -> CloudServer:
    """The server whose request, handler or job is running."""
    server = _server.get()
    if server is None:
        raise RuntimeError(
            "the cloud data API (cloud.Object.save, cloud.Query.find, ...) runs inside a Bastion server: "
            "call it from a cloud function, trigger or job, not while the cloud code is being imported")
    return server


def enter_running(server: CloudServer | None) -> Token[CloudServer | None]:
    """``running`` without a context manager, for the per-request path (``leave_running`` after)."""
    return _server.set(server)


def leave_running(token: Token[CloudServer | None]) -> None:
    _server.reset(token)


@contextmanager
def running(server: CloudServer | None) -> Iterator[None]:
    """Inside the block the data API acts through ``server`` (None: through no server)."""
    token = _server.set(server)
    try:
        yield
    finally:
        _server.reset(token)
