"""``cloud.ACL``: an object's access control list, as Parse.ACL has it (REST form underneath)."""

from __future__ import annotations

from typing import Any


def _entry(who: Any, role: bool = False) -> str:
    """The ACL key for a user id, a user object, a role name or a role object."""
    if role:
        name = who.get("name") if hasattr(who, "class_name") else who
        if not isinstance(name, str) or not name:
            raise ValueError("a role must be a cloud.Role with a name, or a role name")
        return "role:" + name
    if hasattr(who, "class_name"):
        who = who.id
        if not who:
            raise ValueError("cannot give access to an unsaved user")
    if not isinstance(who, str) or not who:
        raise ValueError("a user must be a cloud.User or a user id")
    return who


class ACL:
    def __init__(self, value: dict[str, dict[str, bool]] | Any = None) -> None:
        self._perms: dict[str, dict[str, bool]] = {}
        if value is None:
            return
        if hasattr(value, "class_name"):  # ACL(user): that user may read and write
            self.set_read_access(value, True)
            self.set_write_access(value, True)
            return
        if not isinstance(value, dict):
            raise TypeError("ACL() takes a REST ACL dict, a cloud.User or nothing")
        for key, perms in value.items():
            if isinstance(perms, dict):
                self._perms[key] = {k: True for k in ("read", "write") if perms.get(k) is True}

    def _set(self, key: str, kind: str, allowed: bool) -> None:
        perms = self._perms.setdefault(key, {})
        if allowed:
            perms[kind] = True
        else:
            perms.pop(kind, None)
        if not perms:
            del self._perms[key]

    def set_public_read_access(self, allowed: bool) -> None:
        self._set("*", "read", allowed)

    def set_public_write_access(self, allowed: bool) -> None:
        self._set("*", "write", allowed)

    def get_public_read_access(self) -> bool:
        return self._perms.get("*", {}).get("read", False)

    def get_public_write_access(self) -> bool:
        return self._perms.get("*", {}).get("write", False)

    def set_read_access(self, user: Any, allowed: bool) -> None:
        self._set(_entry(user), "read", allowed)

    def set_write_access(self, user: Any, allowed: bool) -> None:
        self._set(_entry(user), "write", allowed)

    def get_read_access(self, user: Any) -> bool:
        return self._perms.get(_entry(user), {}).get("read", False)

    def get_write_access(self, user: Any) -> bool:
        return self._perms.get(_entry(user), {}).get("write", False)

    def set_role_read_access(self, role: Any, allowed: bool) -> None:
        self._set(_entry(role, role=True), "read", allowed)

    def set_role_write_access(self, role: Any, allowed: bool) -> None:
        self._set(_entry(role, role=True), "write", allowed)

    def get_role_read_access(self, role: Any) -> bool:
        return self._perms.get(_entry(role, role=True), {}).get("read", False)

    def get_role_write_access(self, role: Any) -> bool:
        return self._perms.get(_entry(role, role=True), {}).get("write", False)

    def to_json(self) -> dict[str, dict[str, bool]]:
        return {key: dict(perms) for key, perms in self._perms.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ACL) and other._perms == self._perms

    def __repr__(self) -> str:
        return f"ACL({self._perms!r})"
