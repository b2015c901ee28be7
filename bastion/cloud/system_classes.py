"""The system classes as cloud code sees them: ``cloud.User`` (sign-up, log-in, sessions),
``cloud.Role`` (its users and roles), ``cloud.Session`` and ``cloud.Installation``.

Defining them registers them as the classes ``cloud.Object.from_json`` builds for their class names."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.cloud.acl import ACL
from bastion.cloud.objects import Object
from bastion.core.system_classes import INSTALLATION, ROLE, SESSION, USER

if TYPE_CHECKING:
    from bastion.cloud.relation import Relation


class User(Object):
    class_name = USER

    @property
    def username(self) -> str | None:
        username: str | None = self.get("username")
        return username

    @property
    def email(self) -> str | None:
        email: str | None = self.get("email")
        return email

    def get_session_token(self) -> str | None:
        return self._server.get("sessionToken")

    @property
    def session_token(self) -> str | None:
        return self.get_session_token()

    @classmethod
    async def sign_up(cls, username: str, password: str, **fields: Any) -> User:
        """A new user, signed up as a client would (with a session: ``user.session_token``)."""
        user = cls({"username": username, "password": password, **fields})
        await user.save()
        return user

    @classmethod
    async def log_in(cls, username: str, password: str) -> User:
        """The user with these credentials, with a new session (``user.session_token``)."""
        from bastion.cloud._runtime import data

        return _as_user(await data.log_in(username, password))

    @classmethod
    async def become(cls, session_token: str) -> User:
        """The user of a session token (209 when it is not a live session)."""
        from bastion.cloud._runtime import data

        return _as_user(await data.become(session_token))

    async def log_out(self) -> None:
        """Ends the session this user object carries."""
        from bastion.cloud._runtime import data

        await data.log_out(self.get_session_token())
        self._server.pop("sessionToken", None)


def _as_user(data: dict[str, Any]) -> User:
    user = Object.from_json(USER, data)
    assert isinstance(user, User)
    return user


class Role(Object):
    class_name = ROLE

    def __init__(self, name: str | None = None, acl: ACL | None = None, **kwargs: Any) -> None:
        super().__init__(ROLE, **kwargs)
        if name is not None:
            self.set("name", name)
        if acl is not None:
            self.set_acl(acl)

    @property
    def name(self) -> str | None:
        name: str | None = self.get("name")
        return name

    @property
    def users(self) -> Relation:
        """The users holding the role: ``role.users.add(user)``, then ``await role.save(...)``."""
        return self.relation("users", USER)

    @property
    def roles(self) -> Relation:
        """The roles whose members hold this role too (Parse's role inheritance)."""
        return self.relation("roles", ROLE)

    def get_users(self) -> Relation:
        return self.users

    def get_roles(self) -> Relation:
        return self.roles


class Session(Object):
    class_name = SESSION


class Installation(Object):
    class_name = INSTALLATION
