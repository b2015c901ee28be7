"""What the pipelines ask of cloud code: the trigger calls, as a protocol the domain owns.

The reader, the writer and the users service take a ``Triggers`` in their constructor; cloud code's
runtime (``bastion/cloud/_runtime/runtime.py``) is the implementation the server passes, and
``NO_TRIGGERS`` (nothing registered) is the default, so a pipeline never tests for None. ``has``
is asked first on the hot path: a class without triggers costs one set lookup per read or write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from bastion.core.auth import Auth, CallInfo

if TYPE_CHECKING:
    from bastion.domain.read import FindRequest


class Triggers(Protocol):
    def has(self, kind: str, class_name: str) -> bool:
        """Whether a trigger of ``kind`` ("beforeSave", "afterFind", …) is registered for the class."""
        ...

    async def before_save(self, class_name: str, body: dict[str, Any], original: dict[str, Any] | None,
                          auth: Auth, info: CallInfo | None) -> tuple[dict[str, Any], list[str]]: ...

    async def after_save(self, class_name: str, saved: dict[str, Any], original: dict[str, Any] | None,
                         auth: Auth, info: CallInfo | None) -> None: ...

    async def before_delete(self, class_name: str, stored: dict[str, Any], auth: Auth,
                            info: CallInfo | None) -> None: ...

    async def after_delete(self, class_name: str, stored: dict[str, Any], auth: Auth,
                           info: CallInfo | None) -> None: ...

    async def before_find(self, class_name: str, find: FindRequest, auth: Auth, info: CallInfo | None,
                          is_get: bool = False) -> FindRequest: ...

    async def after_find(self, class_name: str, results: list[dict[str, Any]], auth: Auth,
                         info: CallInfo | None, is_get: bool = False) -> list[dict[str, Any]]: ...

    async def login_trigger(self, kind: str, user: dict[str, Any], auth: Auth, info: CallInfo | None) -> None: ...

    async def after_logout(self, session: dict[str, Any], auth: Auth, info: CallInfo | None) -> None: ...


class NoTriggers:
    """No cloud code: ``has`` is always False, so the pipelines never call the others."""

    def has(self, kind: str, class_name: str) -> bool:
        return False

    async def before_save(self, class_name: str, body: dict[str, Any], original: dict[str, Any] | None,
                          auth: Auth, info: CallInfo | None) -> tuple[dict[str, Any], list[str]]:
        return body, []

    async def after_save(self, class_name: str, saved: dict[str, Any], original: dict[str, Any] | None,
                         auth: Auth, info: CallInfo | None) -> None:
        return None

    async def before_delete(self, class_name: str, stored: dict[str, Any], auth: Auth,
                            info: CallInfo | None) -> None:
        return None

    async def after_delete(self, class_name: str, stored: dict[str, Any], auth: Auth,
                           info: CallInfo | None) -> None:
        return None

    async def before_find(self, class_name: str, find: FindRequest, auth: Auth, info: CallInfo | None,
                          is_get: bool = False) -> FindRequest:
        return find

    async def after_find(self, class_name: str, results: list[dict[str, Any]], auth: Auth,
                         info: CallInfo | None, is_get: bool = False) -> list[dict[str, Any]]:
        return results

    async def login_trigger(self, kind: str, user: dict[str, Any], auth: Auth, info: CallInfo | None) -> None:
        return None

    async def after_logout(self, session: dict[str, Any], auth: Auth, info: CallInfo | None) -> None:
        return None


NO_TRIGGERS: Triggers = NoTriggers()
