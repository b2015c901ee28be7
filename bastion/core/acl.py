"""ACLs: the REST ``ACL`` object, its storage as ``_rperm``/``_wperm``, and who may do what.

A missing ACL (``_rperm`` null) means public, as in Parse Server. The permission a request carries
is the list of ACL entries it acts as: ``*``, the user's id and ``role:Name`` for each of its roles;
the master key carries None, which means "everything".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.errors import Code, ParseError

PUBLIC = "*"


@dataclass(slots=True)
class Access:
    """Whose rows a statement may touch: None for the master key, else the ACL entries acted as."""

    acting_as: list[str] | None = None

    @property
    def is_master(self) -> bool:
        return self.acting_as is None


MASTER = Access(None)


def acl_to_perms(acl: Any) -> tuple[list[str], list[str]]:
    """Split a REST ACL into the (read, write) entry lists stored as ``_rperm``/``_wperm``."""
    if not isinstance(acl, dict):
        raise ParseError(Code.INVALID_ACL, "Invalid ACL.")
    read: list[str] = []
    write: list[str] = []
    for entry, grant in acl.items():
        if not isinstance(entry, str) or not entry or len(entry) > 256:
            raise ParseError(Code.INVALID_ACL, "Invalid ACL.")
        if not isinstance(grant, dict):
            raise ParseError(Code.INVALID_ACL, "Invalid ACL.")
        for perm, allowed in grant.items():
            if perm not in ("read", "write") or not isinstance(allowed, bool):
                raise ParseError(Code.INVALID_ACL, "Invalid ACL.")
            if allowed:
                (read if perm == "read" else write).append(entry)
    return read, write


def perms_to_acl(read: list[str] | None, write: list[str] | None) -> dict[str, dict[str, bool]] | None:
    if read is None and write is None:
        return None
    acl: dict[str, dict[str, bool]] = {}
    for entry in read or ():
        acl.setdefault(entry, {})["read"] = True
    for entry in write or ():
        acl.setdefault(entry, {})["write"] = True
    return acl


def allows(perm_list: list[str] | None, acting_as: list[str] | None) -> bool:
    """Whether an object's ``_rperm`` or ``_wperm`` admits a request acting as ``acting_as``."""
    if acting_as is None or perm_list is None:
        return True
    return any(entry in perm_list for entry in acting_as)
