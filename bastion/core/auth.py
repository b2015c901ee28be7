"""Who a request acts as: the master key, a user with roles, or the public."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bastion.core.acl import Access


@dataclass(slots=True)
class Auth:
    is_master: bool = False
    is_read_only: bool = False
    is_maintenance: bool = False  # the maintenance key: is_master too, but refused on master-only routes
    user: dict[str, Any] | None = None
    roles: list[str] = field(default_factory=list)
    installation_id: str | None = None
    session_token: str | None = None  # the token that made ``user`` (None for master and public)

    @property
    def user_id(self) -> str | None:
        return self.user.get("objectId") if self.user else None

    def acting_as(self) -> list[str] | None:
        """The ACL entries this request acts as; None for the master key (everything)."""
        if self.is_master:
            return None
        entries = ["*"]
        if self.user_id:
            entries.append(self.user_id)
        entries.extend("role:" + name for name in self.roles)
        return entries

    def access(self) -> Access:
        return Access(self.acting_as())


MASTER_AUTH = Auth(is_master=True)
PUBLIC_AUTH = Auth()


@dataclass(slots=True)
class CallInfo:
    """What cloud code may want to know of the request beside who made it."""

    headers: dict[str, str] = field(default_factory=dict)
    ip: str | None = None
    context: dict[str, Any] = field(default_factory=dict)  # the client's X-Parse-Cloud-Context / _context
